"""Browser tests of the web console (scripts/browser-test): Debian's chromium and chromedriver driven
by selenium, headless, kept off the network, against a real `depot serve` on loopback."""

import os
import socket
import struct
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
SECRET = "browser-test-secret-0123456789abcdefghij"
SHOTS = ROOT / "tests" / "browser" / "screenshots"
# No request leaves the machine: Chromium asks Google's services for component updates, autofill
# and network time even under chromedriver's defaults; these flags stop that, and every DNS lookup.
HERMETIC = [
    "--disable-component-update",
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,AutofillServerCommunication,MediaRouter,PreconnectToSearch",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png(width: int, height: int, size: int) -> bytes:
    """A valid PNG (a gradient) padded to `size` bytes with a private chunk decoders skip."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 160))
                    for y in range(height))
    head = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    body = chunk(b"IDAT", zlib.compress(rows))
    tail = chunk(b"IEND", b"")
    padding = max(0, size - len(head) - len(body) - len(tail) - 12)
    return head + chunk(b"prVt", os.urandom(padding)) + body + tail


class Server:
    def __init__(self, data: Path):
        binary = Path(os.environ.get("DEPOT_BIN", ROOT / ".build" / "debug" / "depot"))
        self.binary, self.data, self.port = binary, data, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, DEPOT_JWT_SECRET=SECRET)
        self.log = open(data / "server.log", "wb")
        self.process = subprocess.Popen(
            [str(binary), "serve", "--data-dir", str(data / "depot"), "--host", "127.0.0.1", "--port", str(self.port),
             "--public-url", self.base, "--max-file-size", str(12 * 1024 * 1024), "--rate-limit", "0",
             "--allowed-types", "image/png,image/jpeg,image/webp,image/gif,video/mp4,video/quicktime,video/webm"],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(self.base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"depot serve did not start: {(data / 'server.log').read_text()}")
            time.sleep(0.1)

    def token(self, sub: str, ttl: int = 3600) -> str:
        return subprocess.run([str(self.binary), "token", "--sub", sub, "--ttl", str(ttl)], env=self.env, check=True,
                              capture_output=True, text=True).stdout.strip()

    def service_key(self) -> str:
        keys = subprocess.run([str(self.binary), "keys", "--data-dir", str(self.data / "depot")], env=self.env,
                              check=True, capture_output=True, text=True).stdout.splitlines()
        return next(line.split()[1] for line in keys if line.startswith("service_role:"))

    def api(self, method: str, path: str, token: str, headers=None, **kwargs) -> httpx.Response:
        return httpx.request(method, self.base + path, headers={"Authorization": f"Bearer {token}", **(headers or {})},
                             timeout=30, **kwargs)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="session")
def server():
    with tempfile.TemporaryDirectory(prefix="depot-browser-") as tmp:
        s = Server(Path(tmp))
        yield s
        s.stop()


@pytest.fixture(scope="session")
def driver(server):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/lib/chromium/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,900", "--disable-gpu", *HERMETIC]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))
    d.execute_cdp_cmd("Network.enable", {})
    d.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": server.base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield d
    d.quit()


def full_page_shot(d, name):
    """A screenshot of the whole page (Selenium's own covers the viewport only)."""
    import base64
    shot = d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
    (SHOTS / name).write_bytes(base64.b64decode(shot["data"]))


def wait(d, condition, timeout=30):
    return WebDriverWait(d, timeout, poll_frequency=0.05).until(condition)


def fresh(d, server):
    """The console, signed out (the tab's session storage cleared)."""
    # Cleared on another page of the origin: a console page could still be signing in.
    d.get(server.base + "/health")
    d.execute_script("sessionStorage.clear()")
    d.get(server.base + "/console/")
    wait(d, lambda d: d.execute_script("return document.body.dataset.state") == "signed-out")


def sign_in(d, server, sub="alice", token=None):
    fresh(d, server)
    field = d.find_element("id", "token")
    field.clear()
    field.send_keys(token or server.token(sub))
    d.find_element("css selector", "#sign-in-form button[type=submit]").click()
    wait(d, lambda d: d.execute_script("return document.body.dataset.state") == "ready")


def severe_console_entries(d):
    # The browser asks for /favicon.ico on pages that name no icon (/health, visited by `fresh`).
    return [e for e in d.get_log("browser") if e["level"] == "SEVERE" and "/favicon.ico" not in e["message"]]
