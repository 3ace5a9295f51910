"""The web console in a real browser: sign in, upload (presigned PUT and resumable pieces, with
progress under throttling, pause and resume), thumbnails, visibility, links, delete, names shown as
text, keyboard only, accessibility (axe), a phone-sized viewport."""

import json
import os
import time
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from conftest import SHOTS, fresh, full_page_shot, png, severe_console_entries, sign_in, wait

AXE = Path(__import__("axe_playwright_python").__file__).parent / "axe.min.js"


def state_of(d, name):
    return d.execute_script("return document.querySelector(`#transfers li[data-name='${arguments[0]}']`)?.dataset.state", name)


def card(d, path):
    return d.find_element("css selector", f"li.card[data-path='{path}']")


def thumbnail_decoded(d, path):
    return d.execute_script(
        "const i = document.querySelector(`li.card[data-path='${arguments[0]}'] img`);"
        "return !!i && i.complete && i.naturalWidth > 0", path)


def throttle(d, bytes_per_second):
    d.execute_cdp_cmd("Network.emulateNetworkConditions",
                      {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_second})


def test_upload_thumbnails_visibility_links_and_delete(driver, server, tmp_path):
    d = driver
    sign_in(d, server, "alice")
    small = tmp_path / "small.png"
    small.write_bytes(png(320, 240, 300_000))
    large = tmp_path / "large.png"
    large.write_bytes(png(640, 480, 10 * 1024 * 1024))
    throttle(d, 4 * 1024 * 1024)
    d.find_element("id", "job").clear()
    d.find_element("id", "job").send_keys("trip")
    d.find_element("id", "files").send_keys(f"{small}\n{large}")

    # The large file goes in resumable pieces: pause it mid-way, then resume.
    wait(d, lambda d: (d.execute_script("return (window.__progressLog['large.png'] || []).slice(-1)[0] || 0") or 0) >= 15)
    d.find_element("css selector", "button[aria-label='Pause large.png']").click()
    wait(d, lambda d: state_of(d, "large.png") == "paused")
    paused_at = d.execute_script("return document.querySelector(`#transfers li[data-name='large.png'] progress`).value")
    assert 0 < paused_at < 100 or d.execute_script(
        "return document.querySelector(`#transfers li[data-name='large.png'] progress`).hidden")
    wait(d, lambda d: state_of(d, "small.png") == "done", 60)
    d.find_element("css selector", "button[aria-label='Resume large.png']").click()
    wait(d, lambda d: state_of(d, "large.png") == "done", 90)
    throttle(d, -1)

    log = d.execute_script("return window.__progressLog")
    for name in ("small.png", "large.png"):
        values = log[name]
        assert values[-1] == 100 and values == sorted(values), (name, values)
    assert len([v for v in log["large.png"] if 0 < v < 100]) >= 5, log["large.png"]
    d.save_screenshot(str(SHOTS / "upload.png"))

    token = server.token("alice")
    listed = server.api("GET", "/v1/assets?prefix=trip/", token).json()["items"]
    originals = [a for a in listed if "_112x112" not in a["path"] and "_56x56" not in a["path"]]
    assert len(originals) == 2, listed
    for asset in originals:
        wait(d, lambda d: thumbnail_decoded(d, asset["path"]))
    # Once the variants exist, the gallery shows them as thumbnails.
    first = originals[0]["path"]
    deadline = time.time() + 60
    while "_112x112" not in (d.execute_script(
            "return document.querySelector(`li.card[data-path='${arguments[0]}'] img`).src", first) or ""):
        assert time.time() < deadline, "no 112x112 thumbnail appeared"
        time.sleep(1)
        d.find_element("css selector", "#search-form button").click()
        wait(d, lambda d: len(d.find_elements("css selector", "li.card")) >= 2)
    wait(d, lambda d: thumbnail_decoded(d, first))
    full_page_shot(d, "gallery.png")

    # Public ⇄ private: the public URL answers only while public.
    toggle = card(d, first).find_element("css selector", "button.visibility")
    assert toggle.get_attribute("aria-pressed") == "false"
    toggle.click()
    wait(d, lambda d: card(d, first).find_element("css selector", "button.visibility").get_attribute("aria-pressed") == "true")
    public = server.api("GET", f"/v1/assets/{first}", token).json()
    assert public["visibility"] == "public" and httpx.get(public["url"]).status_code == 200
    card(d, first).find_element("css selector", "button.visibility").click()
    wait(d, lambda d: card(d, first).find_element("css selector", "button.visibility").get_attribute("aria-pressed") == "false")
    assert httpx.get(public["url"]).status_code != 200

    # Copy link: the clipboard holds a link that works.
    card(d, first).find_element("xpath", ".//button[text()='Copy link']").click()
    wait(d, lambda d: "copied" in d.find_element("id", "status").text)
    copied = d.execute_async_script("navigator.clipboard.readText().then(arguments[0])")
    assert httpx.get(copied).status_code == 200

    # Select both, sign their links in one call.
    for asset in originals:
        card(d, asset["path"]).find_element("css selector", "input[type=checkbox]").click()
    d.find_element("id", "sign-selected").click()
    wait(d, lambda d: d.find_element("id", "signed-links").is_displayed())
    lines = d.find_element("id", "signed-links").get_attribute("value").splitlines()
    assert len(lines) == 2 and all(httpx.get(line.split("\t")[1]).status_code == 200 for line in lines)

    # Delete, after confirming: gone from the page and from the server.
    card(d, first).find_element("xpath", ".//button[text()='Delete']").click()
    d.switch_to.alert.accept()
    wait(d, lambda d: not d.find_elements("css selector", f"li.card[data-path='{first}']"))
    assert server.api("GET", f"/v1/assets/{first}", token).status_code == 404
    assert severe_console_entries(d) == []


def test_refusals_are_shown_clearly(driver, server, tmp_path):
    d = driver
    sign_in(d, server, "carol")
    text = tmp_path / "notes.txt"
    text.write_bytes(b"just text\n")
    too_big = tmp_path / "huge.png"
    too_big.write_bytes(png(16, 16, 13 * 1024 * 1024))
    d.find_element("id", "files").send_keys(f"{text}\n{too_big}")
    wait(d, lambda d: state_of(d, "notes.txt") == "error" and state_of(d, "huge.png") == "error")
    messages = {name: d.find_element("css selector", f"#transfers li[data-name='{name}'] .transfer-status").text
                for name in ("notes.txt", "huge.png")}
    assert messages["notes.txt"].startswith("Type refused"), messages
    assert messages["huge.png"].startswith("Too large"), messages
    assert server.api("GET", "/v1/assets", server.token("carol")).json()["items"] == []


def test_names_are_text_never_markup(driver, server):
    d = driver
    token = server.token("mallory")
    name = "<img src=x onerror=window.__pwned=1>.png"
    put = server.api("PUT", "/v1/assets/mallory/xss/" + httpx.URL("/" + name).raw_path.decode()[1:], token,
                     content=png(8, 8, 200), headers={"Content-Type": "image/png"})
    assert put.status_code == 201, put.text
    sign_in(d, server, token=token)
    wait(d, lambda d: d.find_elements("css selector", "li.card"))
    shown = d.find_element("css selector", "li.card .name").text
    assert shown == name
    assert d.find_elements("css selector", "img[src='x']") == []
    assert d.execute_script("return window.__pwned") is None


def test_keyboard_only(driver, server):
    d = driver
    token = server.token("kate")
    server.api("PUT", "/v1/assets/kate/k/one.png", token, content=png(32, 32, 500),
               headers={"Content-Type": "image/png"})
    fresh(d, server)
    keys = ActionChains(d)

    def tab_to(predicate, limit=40):
        for _ in range(limit):
            if d.execute_script(predicate):
                return
            keys.send_keys(Keys.TAB).perform()
        raise AssertionError(f"focus never reached: {predicate}")

    tab_to("return document.activeElement.id === 'token'")
    keys.send_keys(token).perform()
    tab_to("return document.activeElement.type === 'submit'")
    keys.send_keys(Keys.ENTER).perform()
    wait(d, lambda d: d.execute_script("return document.body.dataset.state") == "ready")
    wait(d, lambda d: d.find_elements("css selector", "li.card"))
    tab_to("return document.activeElement.classList.contains('visibility')", 80)
    keys.send_keys(Keys.SPACE).perform()
    wait(d, lambda d: d.execute_script("return document.activeElement.getAttribute('aria-pressed')") == "true")
    assert server.api("GET", "/v1/assets/kate/k/one.png", token).json()["visibility"] == "public"


def axe_violations(d):
    d.execute_script(AXE.read_text())
    result = d.execute_async_script(
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
        ".then(r => arguments[0](JSON.stringify(r.violations)))")
    return [v for v in json.loads(result) if v["impact"] in ("serious", "critical")]


def test_accessibility_and_phone_viewport(driver, server):
    d = driver
    fresh(d, server)
    assert axe_violations(d) == []
    d.save_screenshot(str(SHOTS / "sign-in.png"))
    token = server.token("alice")
    sign_in(d, server, token=token)
    wait(d, lambda d: d.find_elements("css selector", "li.card"))
    assert axe_violations(d) == []
    # The axe check itself works: a nameless button is reported.
    d.execute_script("document.body.append(Object.assign(document.createElement('button'), {id: 'nameless'}))")
    assert any(v["id"] == "button-name" for v in axe_violations(d))
    d.execute_script("document.getElementById('nameless').remove()")

    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    try:
        d.get(server.base + "/console/")
        wait(d, lambda d: d.find_elements("css selector", "li.card"))
        assert d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        d.save_screenshot(str(SHOTS / "phone.png"))
    finally:
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_the_console_pages_are_locked_down(server):
    page = httpx.get(server.base + "/console/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    again = httpx.get(server.base + "/console/", headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304
    assert httpx.get(server.base + "/", follow_redirects=False).headers["location"] == "/console/"
    assert httpx.get(server.base + "/console/../openapi.json").status_code in (200, 404)
    assert httpx.get(server.base + "/console/nothing.js").status_code == 404


def test_drop_files_and_delete_several(driver, server, tmp_path):
    d = driver
    sign_in(d, server, "dora")
    paths = []
    for i in range(2):
        f = tmp_path / f"dropped-{i}.png"
        f.write_bytes(png(64, 48, 5_000))
        paths.append(f)
    # Headless chromium cannot drag from the desktop: the drop event carries real files instead.
    for path in paths:
        hidden = d.execute_script("const i = document.createElement('input'); i.type = 'file'; i.hidden = true;"
                                  "document.body.append(i); return i;")
        hidden.send_keys(str(path))
        d.execute_script("""const dt = new DataTransfer(); dt.items.add(arguments[0].files[0]);
            for (const t of ['dragenter', 'dragover', 'drop'])
              document.querySelector('#drop').dispatchEvent(new DragEvent(t, {bubbles: true, cancelable: true, dataTransfer: dt}));
            arguments[0].remove();""", hidden)
    for path in paths:
        wait(d, lambda d: state_of(d, path.name) == "done", 60)
    wait(d, lambda d: len(d.find_elements("css selector", "li.card")) == 2)
    usage = d.find_element("id", "usage").text  # variants count as files too, once made
    assert usage.startswith("dora: ") and " of 10 GiB stored, " in usage and " files" in usage, usage
    for checkbox in d.find_elements("css selector", "li.card input[type=checkbox]"):
        checkbox.click()
    d.find_element("id", "delete-selected").click()
    d.switch_to.alert.accept()
    wait(d, lambda d: not d.find_elements("css selector", "li.card"))
    assert server.api("GET", "/v1/assets", server.token("dora")).json()["items"] == []


def test_the_service_role_view(driver, server):
    d = driver
    key = server.service_key()
    made = server.api("POST", "/storage/v1/bucket", key, json={"name": "team-docs"})
    assert made.status_code == 200, made.text
    sign_in(d, server, token=key)
    wait(d, lambda d: any("team-docs" in li.text for li in d.find_elements("css selector", "#buckets li")))
    d.find_element("css selector", "#buckets button[aria-label='Make public: team-docs']").click()
    wait(d, lambda d: server.api("GET", "/storage/v1/bucket/team-docs", key).json()["public"] is True)
    # The list is drawn again after the flip: its new rows, not the old ones, take the settings.
    wait(d, lambda d: d.find_elements("css selector", "#buckets button[aria-label='Make private: team-docs']"))
    limit = d.find_element("css selector", "#buckets input[aria-label='Size limit of team-docs']")
    limit.clear()
    limit.send_keys("1mb")
    d.find_element("css selector", "#buckets input[aria-label='Allowed types of team-docs']").send_keys("image/png, image/webp")
    d.find_element("css selector", "#buckets button[aria-label='Save settings of team-docs']").click()
    wait(d, lambda d: "saved" in d.find_element("id", "admin-status").text)
    saved = server.api("GET", "/storage/v1/bucket/team-docs", key).json()
    assert saved["file_size_limit"] == 1_000_000 and saved["allowed_mime_types"] == ["image/png", "image/webp"], saved
    d.find_element("id", "usage-user").send_keys("alice")
    d.find_element("css selector", "#usage-form button").click()
    wait(d, lambda d: d.find_element("id", "usage-result").text.startswith("alice:"))
    assert d.find_element("id", "job-counts").text != ""
    assert axe_violations(d) == []
    full_page_shot(d, "service.png")


def test_a_lost_connection_resumes_and_a_refusal_holds_nothing(driver, server, tmp_path):
    d = driver
    sign_in(d, server, "erin")
    token = server.token("erin")
    big = tmp_path / "video.png"
    big.write_bytes(png(200, 100, 11 * 1024 * 1024))
    throttle(d, 3 * 1024 * 1024)
    d.find_element("id", "files").send_keys(str(big))
    wait(d, lambda d: (d.execute_script("return (window.__progressLog['video.png'] || []).slice(-1)[0] || 0") or 0) >= 20)
    d.execute_cdp_cmd("Network.emulateNetworkConditions",
                      {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    wait(d, lambda d: state_of(d, "video.png") == "error")
    resume = d.find_element("css selector", "button[aria-label='Resume video.png']")
    assert resume.is_displayed(), "a lost connection can be resumed"
    throttle(d, -1)
    resume.click()
    wait(d, lambda d: state_of(d, "video.png") == "done", 90)
    listed = server.api("GET", "/v1/assets?prefix=console/", token).json()["items"]
    import hashlib
    assert [a["checksum"] for a in listed if "variantOf" not in a] == [hashlib.sha256(big.read_bytes()).hexdigest()]

    # Bytes that are not the declared type: refused at the first piece, and the upload is ended on
    # the server (it holds no quota), with no Resume offered.
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png" * (1024 * 1024))
    d.find_element("id", "files").send_keys(str(junk))
    wait(d, lambda d: state_of(d, "junk.png") == "error", 60)
    assert not d.find_element("css selector", "button[aria-label='Resume junk.png']").is_displayed()
    wait(d, lambda d: server.api("GET", "/v1/usage", token).json()["resumableUploads"] == 0)


def test_a_name_like_a_variant_is_still_a_file(driver, server):
    d = driver
    token = server.token("finn")
    for name in ("photo.png", "photo_1920x1080.png"):
        r = server.api("PUT", f"/v1/assets/finn/pics/{name}", token, content=png(40, 30, 600), headers={"Content-Type": "image/png"})
        assert r.status_code == 201, r.text
    sign_in(d, server, token=token)
    wait(d, lambda d: len(d.find_elements("css selector", "li.card")) >= 2)
    names = [e.text for e in d.find_elements("css selector", "li.card .name")]
    assert "photo_1920x1080.png" in names and "photo.png" in names, names


def progress_of(d, name):
    return d.execute_script("return (window.__progressLog[arguments[0]] || []).slice(-1)[0] || 0", name) or 0


def test_resume_at_once_after_a_pause_and_after_the_token_expired(driver, server, tmp_path):
    d = driver
    # Resume pressed at once: the paused PATCH may still be stored (409 for the next one), which
    # the console waits out instead of ending the upload.
    sign_in(d, server, "gina")
    quick = tmp_path / "quick.png"
    quick.write_bytes(png(64, 48, 10 * 1024 * 1024))
    throttle(d, 3 * 1024 * 1024)
    d.find_element("id", "files").send_keys(str(quick))
    for at_least in (10, 30, 50):
        wait(d, lambda d: progress_of(d, "quick.png") >= at_least, 60)
        d.find_element("css selector", "button[aria-label='Pause quick.png']").click()
        wait(d, lambda d: state_of(d, "quick.png") == "paused")
        d.find_element("css selector", "button[aria-label='Resume quick.png']").click()
    wait(d, lambda d: state_of(d, "quick.png") in ("done", "error"), 90)
    assert state_of(d, "quick.png") == "done", d.find_element("css selector", "#transfers li[data-name='quick.png']").text

    # The token expires mid-upload: the sign-in form comes back, saying so; signed in again in the
    # same tab, Resume goes on from where the server has the upload.
    sign_in(d, server, "gina", token=server.token("gina", ttl=6))
    slow = tmp_path / "slow.png"
    slow.write_bytes(png(64, 48, 9 * 1024 * 1024))
    throttle(d, 512 * 1024)
    d.find_element("id", "files").send_keys(str(slow))
    wait(d, lambda d: state_of(d, "slow.png") == "error", 60)
    assert d.find_element("id", "sign-in").is_displayed()
    assert "Sign in again" in d.find_element("id", "sign-in-error").text
    throttle(d, -1)
    field = d.find_element("id", "token")
    field.send_keys(server.token("gina"))
    d.find_element("css selector", "#sign-in-form button[type=submit]").click()
    wait(d, lambda d: not d.find_element("id", "sign-in").is_displayed())
    d.find_element("css selector", "button[aria-label='Resume slow.png']").click()
    wait(d, lambda d: state_of(d, "slow.png") == "done", 60)
    import hashlib
    listed = server.api("GET", "/v1/assets?prefix=console/", server.token("gina")).json()["items"]
    sums = {a["checksum"] for a in listed if "variantOf" not in a}
    assert hashlib.sha256(slow.read_bytes()).hexdigest() in sums and hashlib.sha256(quick.read_bytes()).hexdigest() in sums


def test_videos_large_images_and_files_named_otherwise(driver, server, tmp_path):
    """A video (allowed by the operator) goes up in resumable pieces and shows as a placeholder; an
    image too large to be its own thumbnail whose variants fail is never loaded by the gallery; a
    PNG without an extension, or named .jpg, is sent as what its bytes are."""
    d = driver
    sign_in(d, server, "victor")
    severe_console_entries(d)  # what the tests before left (refusals they caused on purpose)
    film = tmp_path / "film.mp4"
    film.write_bytes(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41\x00\x90\x00\x08mdat" + os.urandom(9 * 1024 * 1024))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2 * 1024 * 1024))  # a PNG's magic, then noise: no decoder takes it
    noext = tmp_path / "noext"
    noext.write_bytes(png(64, 48, 20_000))
    named = tmp_path / "named.jpg"
    named.write_bytes(png(64, 48, 30_000))
    d.find_element("id", "job").clear()
    d.find_element("id", "job").send_keys("mixed")
    d.find_element("id", "files").send_keys("\n".join(str(p) for p in (film, broken, noext, named)))
    for name in ("film.mp4", "broken.png", "noext", "named.jpg"):
        wait(d, lambda d: state_of(d, name) in ("done", "error"), 90)
        assert state_of(d, name) == "done", d.find_element(
            "css selector", f"#transfers li[data-name='{name}'] .transfer-status").text

    token = server.token("victor")
    items = server.api("GET", "/v1/assets?prefix=mixed/", token).json()["items"]
    originals = [a for a in items if "_112x112" not in a["path"] and "_56x56" not in a["path"]]
    assert sorted(a["path"].rsplit(".", 1)[1] for a in originals) == ["mp4", "png", "png", "png"], items
    video = next(a for a in items if a["contentType"] == "video/mp4")
    big = next(a for a in items if a["fileSize"] > 2 * 1024 * 1024 and a["contentType"] == "image/png")

    def placeholder(path):
        return d.execute_script(
            "const c = document.querySelector(`li.card[data-path='${arguments[0]}']`);"
            "if (!c) return null; const p = c.querySelector('.placeholder'), i = c.querySelector('img');"
            "return { text: p.hidden ? '' : p.textContent, img: !i.hidden, src: i.getAttribute('src') };", path)

    wait(d, lambda d: (placeholder(video["path"]) or {}).get("text") == "MP4")
    assert placeholder(video["path"])["src"] is None
    # The broken image's variants fail: the card says so, and its 2 MiB original was never fetched.
    wait(d, lambda d: (placeholder(big["path"]) or {}).get("text") == "PNG · no preview", 60)
    assert placeholder(big["path"])["src"] is None and not placeholder(big["path"])["img"]
    full_page_shot(d, "placeholders.png")

    # A file named as a variant of a large image, itself large: not loaded as the thumbnail either.
    noise = b"\x89PNG\r\n\x1a\n" + os.urandom(2 * 1024 * 1024)
    for name in ("big.png", "big_112x112.png"):
        assert server.api("PUT", f"/v1/assets/victor/zz/{name}", token, content=noise,
                          headers={"Content-Type": "image/png"}).status_code in (200, 201)
    d.find_element("id", "search").clear()
    d.find_element("id", "search").send_keys("zz/")
    d.find_element("css selector", "#search-form button").click()
    wait(d, lambda d: (placeholder("victor/zz/big.png") or {}).get("text") == "PNG · no preview", 60)
    images = d.execute_script(
        "return performance.getEntriesByType('resource').filter((e) => e.initiatorType === 'img').map((e) => e.name)")
    assert not [u for u in images if "/zz/big" in u], images
    images = d.execute_script(
        "return performance.getEntriesByType('resource').filter((e) => e.initiatorType === 'img').map((e) => e.name)")
    assert images, "the small PNGs' thumbnails are loaded as images (the filter sees image loads)"
    assert not [u for u in images if big["path"] in u or video["path"] in u], images
    shown = server.api("GET", f"/v1/assets/{big['path']}", token).json()
    assert shown["variants"] and all(v["state"] == "failed" for v in shown["variants"]), shown
    entries = severe_console_entries(d)
    assert entries == [], [e["message"] for e in entries]
