"""Starts a real `depot serve` (embedded default: files + SQLite in a temporary directory) on a
free loopback port and hands the tests storage3 clients for its keys. The server binary is
$DEPOT_BIN, else .build/debug/depot."""

import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from storage3 import SyncStorageClient

ROOT = Path(__file__).resolve().parents[2]
SECRET = "compat-suite-secret-0123456789abcdef0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Depot:
    def __init__(self, binary: Path, data: Path, port: int, extra: tuple[str, ...] = ()):
        self.binary, self.data, self.port = binary, data, port
        self.base = f"http://127.0.0.1:{port}"
        self.storage_url = f"{self.base}/storage/v1"
        env = dict(os.environ, DEPOT_JWT_SECRET=SECRET)
        self.log = open(data / "server.log", "wb")
        self.process = subprocess.Popen(
            [str(binary), "serve", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(port),
             "--public-url", self.base, "--max-file-size", str(5 * 1024 * 1024), *extra],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{self.base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"depot serve did not start; log: {(data / 'server.log').read_text()}")
            time.sleep(0.1)
        keys = self.cli("keys").splitlines()
        self.anon_key = next(l.split()[1] for l in keys if l.startswith("anon:"))
        self.service_key = next(l.split()[1] for l in keys if l.startswith("service_role:"))

    def cli(self, *args: str) -> str:
        env = dict(os.environ, DEPOT_JWT_SECRET=SECRET)
        return subprocess.run([str(self.binary), *args, "--data-dir", str(self.data)],
                              env=env, check=True, capture_output=True, text=True).stdout

    def user_token(self, sub: str) -> str:
        return self.cli("token", "--sub", sub).strip()

    def client(self, key: str, bearer: str | None = None) -> SyncStorageClient:
        """A storage3 client as supabase-py builds it: apikey plus a bearer token."""
        return SyncStorageClient(self.storage_url + "/", {"apikey": key, "Authorization": f"Bearer {bearer or key}"})

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="session")
def depot():
    binary = Path(os.environ.get("DEPOT_BIN", ROOT / ".build" / "debug" / "depot"))
    if not binary.exists():
        pytest.fail(f"{binary} does not exist: build Depot first (swift build) or set DEPOT_BIN")
    with tempfile.TemporaryDirectory(prefix="depot-compat-") as tmp:
        signers, jwks = signing_keys()
        (Path(tmp) / "jwks.json").write_text(json.dumps(jwks))
        data = Path(tmp) / "data"
        data.mkdir()
        server = Depot(binary, data, _free_port(), ("--jwks", str(Path(tmp) / "jwks.json")))
        server.signers = signers
        server.admin_key = server.service_key
        try:
            yield server
        finally:
            server.stop()


ANON_MAY_DO_EVERYTHING = """\
# Supabase's own client tests run against policies that let the anon role do everything.
rules:
  - name: anon may do everything to objects
    buckets: "*"
    roles: [anon]
    allow: all
    paths: "**"
  - name: and to buckets
    buckets: "*"
    roles: [anon]
    allow: bucket_admin
"""


@pytest.fixture(scope="session")
def anon_rules_depot():
    """A second server whose access rules (--policies) let the anon key do everything; its
    `admin_key` is the anon key."""
    binary = Path(os.environ.get("DEPOT_BIN", ROOT / ".build" / "debug" / "depot"))
    with tempfile.TemporaryDirectory(prefix="depot-compat-rules-") as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(ANON_MAY_DO_EVERYTHING)
        data = Path(tmp) / "data"
        data.mkdir()
        server = Depot(binary, data, _free_port(), ("--policies", str(rules)))
        server.admin_key = server.anon_key
        try:
            yield server
        finally:
            server.stop()


def signing_keys():
    """Supabase Auth's asymmetric keys, made here: RS256, ES256 and EdDSA private keys by `kid`,
    and the JWKS of their public halves (what `--jwks` reads)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

    made = {
        "RS256": ("rsa-1", rsa.generate_private_key(public_exponent=65537, key_size=2048), RSAAlgorithm),
        "ES256": ("ec-1", ec.generate_private_key(ec.SECP256R1()), ECAlgorithm),
        "EdDSA": ("ed-1", ed25519.Ed25519PrivateKey.generate(), OKPAlgorithm),
    }
    keys = []
    for alg, (kid, private, algorithm) in made.items():
        jwk = json.loads(algorithm.to_jwk(private.public_key()))
        jwk.update({"kid": kid, "use": "sig"})
        if alg != "EdDSA":
            jwk["alg"] = alg
        keys.append(jwk)
    return {alg: (kid, private) for alg, (kid, private, _) in made.items()}, {"keys": keys}


@pytest.fixture(scope="session")
def service(depot):
    return depot.client(depot.service_key)


@pytest.fixture(scope="session")
def anon(depot):
    return depot.client(depot.anon_key)


def api_error(fn):
    """The StorageApiError storage3 raises for `fn`, which must fail."""
    from storage3.exceptions import StorageApiError
    with pytest.raises(StorageApiError) as info:
        fn()
    return info.value


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + bytes(500)
PDF = b"%PDF-1.7\n" + b"1 0 obj\n<<>>\nendobj\n" * 20
