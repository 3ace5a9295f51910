"""The backend flow through storage3 (supabase-py's storage client) unmodified: every bucket
method and every file method, results and error paths — run twice: with the service_role key,
and with the anon key against a server whose access rules (--policies) let anon do everything,
as Supabase's own client tests are set up."""

import hashlib

import httpx
import pytest
from storage3.exceptions import StorageApiError
from storage3.types import CreateSignedUploadUrlOptions

from conftest import api_error, JPEG, PDF, PNG


@pytest.fixture(scope="module", params=["depot", "anon_rules_depot"], ids=["service_role key", "anon key under rules"])
def server(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def service(server):
    """The client of this run: the service_role key, or the anon key under anon-may-do-everything rules."""
    return server.client(server.admin_key)


@pytest.fixture(scope="module")
def buckets(service):
    service.create_bucket("media", options={"public": False, "file_size_limit": "1mb", "allowed_mime_types": ["image/*"]})
    service.create_bucket("site", options={"public": True})
    yield service
    for b in ("media", "site"):
        try:
            service.empty_bucket(b)
            service.delete_bucket(b)
        except StorageApiError:
            pass


def test_bucket_methods(buckets):
    service = buckets
    names = {b.name for b in service.list_buckets()}
    assert {"media", "site"} <= names

    media = service.get_bucket("media")
    assert (media.id, media.public, media.file_size_limit, media.allowed_mime_types) == ("media", False, 1_000_000, ["image/*"])
    assert media.owner == "" and media.created_at.tzinfo is not None

    assert service.update_bucket("media", {"public": False, "file_size_limit": 2_000_000, "allowed_mime_types": ["image/png", "image/jpeg"]}) \
        == {"message": "Successfully updated"}
    media = service.get_bucket("media")
    assert (media.file_size_limit, media.allowed_mime_types) == (2_000_000, ["image/png", "image/jpeg"])

    e = api_error(lambda: service.create_bucket("media"))
    assert (str(e.status), e.code) == ("409", "Duplicate")
    e = api_error(lambda: service.get_bucket("no-such-bucket"))
    assert (str(e.status), e.code) == ("404", "Bucket not found")
    e = api_error(lambda: service.create_bucket("big", options={"file_size_limit": "1gb"}))
    assert str(e.status) == "413"
    assert "big" not in {b.name for b in service.list_buckets()}
    e = api_error(lambda: service.create_bucket("bad/name"))
    assert str(e.status) == "400"


def test_upload_download_info_exists(buckets):
    files = buckets.from_("media")
    r = files.upload("docs/logo.png", PNG, {"content-type": "image/png", "cache-control": "120"})
    assert (r.path, r.full_path) == ("docs/logo.png", "media/docs/logo.png")
    assert files.download("docs/logo.png") == PNG

    info = files.info("docs/logo.png")
    assert (info["name"], info["bucket_id"], info["size"], info["content_type"], info["cache_control"]) == \
        ("docs/logo.png", "media", len(PNG), "image/png", "max-age=120")
    assert files.exists("docs/logo.png") is True
    assert files.exists("docs/missing.png") is False

    # create-only by default; upsert replaces; update() always replaces
    e = api_error(lambda: files.upload("docs/logo.png", JPEG, {"content-type": "image/jpeg"}))
    assert (str(e.status), e.code) == ("409", "Duplicate")
    assert files.download("docs/logo.png") == PNG
    files.upload("docs/logo.png", JPEG, {"content-type": "image/jpeg", "upsert": "true"})
    assert files.download("docs/logo.png") == JPEG
    files.update("docs/logo.png", PNG, {"content-type": "image/png", "metadata": {"alt": "logo"}})
    assert files.download("docs/logo.png") == PNG
    assert files.info("docs/logo.png")["metadata"] == {"alt": "logo"}


def test_bytes_decide_the_type_and_refusals_store_nothing(buckets):
    files = buckets.from_("media")
    # A PDF renamed and declared image/png: the bytes say otherwise.
    e = api_error(lambda: files.upload("docs/fake.png", PDF, {"content-type": "image/png"}))
    assert (str(e.status), e.code) == ("415", "invalid_mime_type")
    assert files.exists("docs/fake.png") is False
    # Declared text/plain (storage3's default) but really a PNG: stored as what it is.
    files.upload("docs/untyped.png", PNG)
    assert files.info("docs/untyped.png")["content_type"] == "image/png"
    # Over the bucket's limit (2 MB).
    e = api_error(lambda: files.upload("docs/huge.png", PNG + bytes(2_100_000), {"content-type": "image/png"}))
    assert (str(e.status), e.code) == ("413", "Payload too large")
    assert files.exists("docs/huge.png") is False
    # No such bucket.
    e = api_error(lambda: buckets.from_("nope").upload("a.png", PNG, {"content-type": "image/png"}))
    assert (str(e.status), e.code) == ("404", "Bucket not found")


def test_list_v1_and_v2(buckets):
    files = buckets.from_("site")
    for name in ["list/a.txt", "list/b.txt", "list/c.txt", "list/sub/d.txt", "list/sub/deep/e.txt", "list/Zed.txt"]:
        files.upload(name, name.encode(), {"content-type": "text/plain"})

    top = files.list("list")
    assert [e["name"] for e in top] == ["Zed.txt", "a.txt", "b.txt", "c.txt", "sub"]
    sub = next(e for e in top if e["name"] == "sub")
    assert sub["id"] is None and sub["metadata"] is None
    a = next(e for e in top if e["name"] == "a.txt")
    assert a["metadata"]["size"] == len(b"list/a.txt") and a["metadata"]["mimetype"] == "text/plain"

    assert [e["name"] for e in files.list("list", {"limit": 2, "offset": 1})] == ["a.txt", "b.txt"]
    assert [e["name"] for e in files.list("list", {"search": "b"})] == ["b.txt"]
    assert [e["name"] for e in files.list("list/sub")] == ["d.txt", "deep"]
    by_date = files.list("list", {"sortBy": {"column": "created_at", "order": "desc"}})
    assert by_date[0]["name"] == "sub" and by_date[1]["name"] == "Zed.txt"

    # v2: full names, cursor pages, folders collapsed on request
    seen, cursor = [], None
    while True:
        options = {"prefix": "list/", "limit": 2}
        if cursor:
            options["cursor"] = cursor
        page = files.list_v2(options)
        seen += [o.name for o in page.objects]
        if not page.hasNext:
            break
        cursor = page.nextCursor
    assert seen == ["list/Zed.txt", "list/a.txt", "list/b.txt", "list/c.txt", "list/sub/d.txt", "list/sub/deep/e.txt"]
    page = files.list_v2({"prefix": "list/", "with_delimiter": True})
    assert [f.name for f in page.folders] == ["list/sub/"]
    assert [o.name for o in page.objects] == ["list/Zed.txt", "list/a.txt", "list/b.txt", "list/c.txt"]
    # upstream's formats: `key` is the entry's own segment at the level; flat listings have none
    assert [f.key for f in page.folders] == ["sub"] and [o.key for o in page.objects][:2] == ["Zed.txt", "a.txt"]
    assert all(o.key is None for o in files.list_v2({"prefix": "list/"}).objects)
    # sorted by time, either way round, paged with the cursor (the order rides in it)
    newest = files.list_v2({"prefix": "list/", "limit": 2, "sortBy": {"column": "created_at", "order": "desc"}})
    rest = files.list_v2({"prefix": "list/", "cursor": newest.nextCursor})
    by_time = [o.name for o in newest.objects + rest.objects]
    assert sorted(by_time) == sorted(seen) and len(by_time) == len(seen)
    stamps = [o.created_at for o in newest.objects + rest.objects]
    assert stamps == sorted(stamps, reverse=True)


def test_signed_urls_one_and_many(buckets, server):
    files = buckets.from_("media")
    files.upload("signed/one.png", PNG, {"content-type": "image/png"})
    url = files.create_signed_url("signed/one.png", 60)["signedURL"]
    assert url.startswith(server.storage_url + "/object/sign/media/signed/one.png?token=")
    got = httpx.get(url)  # a browser: no headers at all
    assert got.status_code == 200 and got.content == PNG and got.headers["content-type"] == "image/png"

    dl = files.create_signed_url("signed/one.png", 60, {"download": "photo.png"})["signedURL"]
    assert httpx.get(dl).headers["content-disposition"] == "attachment; filename=photo.png; filename*=UTF-8''photo.png"
    named = httpx.get(url + "&download=my%20photo.png").headers["content-disposition"]
    assert named == "attachment; filename=\"my photo.png\"; filename*=UTF-8''my%20photo.png"
    # An empty name names nothing: a plain `attachment` (upstream's `attachment;` is not valid RFC 6266).
    assert httpx.get(url + "&download=").headers["content-disposition"] == "attachment"

    many = files.create_signed_urls(["signed/one.png", "signed/missing.png"], 60)
    assert [m["path"] for m in many] == ["signed/one.png", "signed/missing.png"]
    assert many[0]["error"] is None and httpx.get(many[0]["signedURL"]).content == PNG
    assert many[1]["error"] and many[1]["signedURL"] is None

    # a tampered token is refused; moving the object revokes its links
    assert httpx.get(url[:-3] + "AAA").status_code in (400, 403)
    files.move("signed/one.png", "signed/moved.png")
    assert httpx.get(url).status_code in (400, 403, 404)
    e = api_error(lambda: files.create_signed_url("signed/missing.png", 60))
    assert str(e.status) == "404"


def test_signed_upload_url_is_single_use(buckets):
    files = buckets.from_("media")
    signed = files.create_signed_upload_url("direct/photo.png")
    assert signed["token"] and signed["path"] == "direct/photo.png"
    r = files.upload_to_signed_url("direct/photo.png", signed["token"], PNG, {"content-type": "image/png"})
    assert r.full_path == "media/direct/photo.png"
    assert files.download("direct/photo.png") == PNG
    e = api_error(lambda: files.upload_to_signed_url("direct/photo.png", signed["token"], JPEG, {"content-type": "image/jpeg"}))
    assert str(e.status) == "409"
    assert files.download("direct/photo.png") == PNG

    # exists already → refused when the URL is made, unless upsert
    e = api_error(lambda: files.create_signed_upload_url("direct/photo.png"))
    assert str(e.status) == "409"
    again = files.create_signed_upload_url("direct/photo.png", CreateSignedUploadUrlOptions(upsert="true"))
    files.upload_to_signed_url("direct/photo.png", again["token"], JPEG, {"content-type": "image/jpeg"})
    assert files.download("direct/photo.png") == JPEG

    # the bucket's rules apply to signed uploads too, checked on the bytes
    bad = files.create_signed_upload_url("direct/fake.png")
    e = api_error(lambda: files.upload_to_signed_url("direct/fake.png", bad["token"], PDF, {"content-type": "image/png"}))
    assert str(e.status) == "415"
    assert files.exists("direct/fake.png") is False

    # a token for one name does not upload another
    other = files.create_signed_upload_url("direct/a.png")
    e = api_error(lambda: files.upload_to_signed_url("direct/b.png", other["token"], PNG, {"content-type": "image/png"}))
    assert str(e.status) == "400"
    assert files.exists("direct/b.png") is False


def test_public_url_move_copy_remove(buckets, server):
    site, media = buckets.from_("site"), buckets.from_("media")
    site.upload("pub/page.txt", b"hello", {"content-type": "text/plain", "cache-control": "300"})
    url = site.get_public_url("pub/page.txt")
    assert url == f"{server.storage_url}/object/public/site/pub/page.txt"
    got = httpx.get(url)
    assert got.content == b"hello" and got.headers["cache-control"] == "max-age=300"
    assert httpx.get(media.get_public_url("docs/logo.png")).status_code in (400, 404)  # private bucket

    assert site.move("pub/page.txt", "pub/renamed.txt") == {"message": "Successfully moved"}
    assert site.exists("pub/page.txt") is False and site.download("pub/renamed.txt") == b"hello"
    assert httpx.get(url).status_code in (400, 404)

    copied = site.copy("pub/renamed.txt", "pub/copy.txt")
    assert copied["Key"] == "site/pub/copy.txt"
    assert site.download("pub/copy.txt") == b"hello"
    e = api_error(lambda: site.copy("pub/renamed.txt", "pub/copy.txt"))
    assert str(e.status) == "409"

    # move between buckets (destinationBucket; storage3 has no argument for it, so the raw call)
    media.upload("cross/a.png", PNG, {"content-type": "image/png"})
    r = httpx.post(f"{server.storage_url}/object/move", headers={"Authorization": f"Bearer {server.admin_key}"},
                   json={"bucketId": "media", "sourceKey": "cross/a.png", "destinationBucket": "site", "destinationKey": "cross/a.png"})
    assert r.status_code == 200
    assert media.exists("cross/a.png") is False and site.download("cross/a.png") == PNG
    assert httpx.get(site.get_public_url("cross/a.png")).content == PNG

    # flipping the whole bucket private is one metadata change: its public URLs stop at once
    public_url = site.get_public_url("cross/a.png")
    service = buckets
    service.update_bucket("site", {"public": False})
    assert httpx.get(public_url).status_code in (400, 404)
    assert site.download("cross/a.png") == PNG
    service.update_bucket("site", {"public": True})
    assert httpx.get(public_url).content == PNG

    removed = site.remove(["pub/renamed.txt", "pub/copy.txt", "pub/never-existed.txt"])
    assert sorted(r["name"] for r in removed) == ["pub/copy.txt", "pub/renamed.txt"]
    assert all(r["bucket_id"] == "site" for r in removed)
    assert site.exists("pub/copy.txt") is False
    assert site.remove(["pub/copy.txt"]) == []


def test_empty_and_delete_bucket(service):
    service.create_bucket("scratch")
    files = service.from_("scratch")
    for i in range(3):
        files.upload(f"f{i}.txt", b"x", {"content-type": "text/plain"})
    e = api_error(lambda: service.delete_bucket("scratch"))
    assert (str(e.status), e.code) == ("409", "ResourceNotEmpty")
    assert "message" in service.empty_bucket("scratch")
    assert files.list() == []
    assert service.delete_bucket("scratch") == {"message": "Successfully deleted"}
    e = api_error(lambda: service.get_bucket("scratch"))
    assert str(e.status) == "404"


def test_checksum_of_what_was_stored(buckets):
    files = buckets.from_("site")
    data = bytes(range(256)) * 1000
    files.upload("sum/blob.bin", data, {"content-type": "application/octet-stream"})
    assert hashlib.sha256(files.download("sum/blob.bin")).digest() == hashlib.sha256(data).digest()


def test_unicode_and_spaces_in_names(buckets):
    files = buckets.from_("site")
    name = "intl/灯泡 ä + copy.txt"
    files.upload(name, "grüße".encode(), {"content-type": "text/plain;charset=UTF-8"})
    assert files.download(name) == "grüße".encode()
    assert files.info(name)["content_type"] == "text/plain;charset=UTF-8"
    assert [e["name"] for e in files.list("intl")] == ["灯泡 ä + copy.txt"]
    url = files.create_signed_url(name, 60)["signedURL"]
    assert httpx.get(url).content == "grüße".encode()
    assert httpx.get(files.get_public_url(name)).content == "grüße".encode()
    assert [r["name"] for r in files.remove([name])] == [name]
