"""Checks the OpenAPI description against a real `depot serve` with schemathesis (scripts/api-check).

Starts the server (embedded default, a temporary data directory, a free loopback port, rate
limiting off), seeds the objects the description's examples name, then runs schemathesis on the
document the server itself serves (`GET /openapi.json`) once per caller:

  - user:          `Authorization: Bearer <depot token --sub alice>` (the Assets API's errors on object URLs);
  - service_role:  the service_role key as `Authorization` and `apikey`, as supabase-py sends it
                   (Supabase's envelope on object URLs).

Checks: no 5xx (`not_a_server_error`), and every answer conforms to the description: a documented
status (`status_code_conformance`), content type, body schema and required headers. Any failure
fails the run; schemathesis prints a curl command that reproduces it.

Environment: DEPOT_BIN (the server binary, default .build/debug/depot), API_CHECK_MAX_EXAMPLES
(per operation and phase, default 25), API_CHECK_MAX_TIME (seconds per caller, default 60),
API_CHECK_SEED (default 14), API_CHECK_WORKERS (default 1: CPython 3.11 parses in threads unsafely,
which hypothesis does when it describes strategies).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECRET = "api-check-secret-0123456789abcdef0123456789abcdef"
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
])
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Depot:
    def __init__(self, binary: Path, data: Path):
        self.binary, self.data = binary, data
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, DEPOT_JWT_SECRET=SECRET)
        self.log_path = data / "server.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(binary), "serve", "--data-dir", str(data / "depot"), "--host", "127.0.0.1", "--port", str(self.port),
             "--public-url", self.base, "--rate-limit", "0"],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                if self.request("GET", "/health")[0] == 200:
                    break
            except OSError:
                pass
            if self.process.poll() is not None or time.time() > deadline:
                self.stop()
                raise SystemExit(f"api-check: depot serve did not start; log:\n{self.log_path.read_text()}")
            time.sleep(0.1)

    def cli(self, *args: str) -> str:
        return subprocess.run([str(self.binary), *args, "--data-dir", str(self.data / "depot")],
                              env=self.env, check=True, capture_output=True, text=True).stdout

    def request(self, method: str, path: str, headers=None, body: bytes | None = None):
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def seed(depot: Depot, service_key: str, user_token: str):
    """The objects and buckets the description's examples name (again before each run: the previous
    one may have moved or deleted them)."""
    svc = {"Authorization": f"Bearer {service_key}", "apikey": service_key}
    user = {"Authorization": f"Bearer {user_token}"}

    def expect(result, *ok):
        status, body = result
        if status not in ok:
            raise SystemExit(f"api-check: seeding failed: HTTP {status} {body[:300]!r}")

    as_json = dict(svc, **{"Content-Type": "application/json"})
    status, body = depot.request("POST", "/storage/v1/bucket", as_json, json.dumps({"name": "avatars", "public": True}).encode())
    if status != 200:  # it exists: undo what the previous run changed
        reset = {"public": True, "file_size_limit": None, "allowed_mime_types": None}
        expect(depot.request("PUT", "/storage/v1/bucket/avatars", as_json, json.dumps(reset).encode()), 200)
    for name in ["alice/me.png", "alice/old.png", "alice/move-me.png"]:
        expect(depot.request("PUT", f"/storage/v1/object/avatars/{name}", dict(svc, **{"Content-Type": "image/png"}), PNG), 200)
    expect(depot.request("PUT", "/v1/assets/alice/job-1/me.png", dict(user, **{"Content-Type": "image/png"}), PNG), 200, 201)


def schemathesis(depot: Depot, label: str, headers: dict[str, str], work: Path) -> int:
    venv_bin = Path(sys.executable).parent
    max_examples = os.environ.get("API_CHECK_MAX_EXAMPLES", "25")
    max_time = os.environ.get("API_CHECK_MAX_TIME", "60")
    command = [
        str(venv_bin / "schemathesis"), "run", f"{depot.base}/openapi.json", "--url", depot.base,
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", max_examples,
        "--max-time", max_time,
        "--seed", os.environ.get("API_CHECK_SEED", "14"),
        "--workers", os.environ.get("API_CHECK_WORKERS", "1"),
        "--request-timeout", "30",
        "--generation-database", "none",
        "--no-color",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    env = dict(os.environ, SCHEMATHESIS_HOOKS="hooks")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent) + os.pathsep + env.get("PYTHONPATH", "")
    print(f"api-check: schemathesis as {label} (max {max_examples} examples per operation and phase, {max_time} s)",
          flush=True)
    started = time.time()
    code = subprocess.run(command, env=env, cwd=work).returncode
    print(f"api-check: {label}: {'passed' if code == 0 else 'FAILED'} in {time.time() - started:.0f} s", flush=True)
    return code


def answers(depot: Depot, service_key: str) -> str:
    """What the server answered, by route and status (its own `depot_http_requests_total`): shows
    which operations were reached past their checks, not only refused."""
    status, body = depot.request("GET", "/metrics", {"Authorization": f"Bearer {service_key}"})
    if status != 200:
        return f"(GET /metrics answered {status})"
    by_route: dict[str, dict[str, int]] = {}
    for line in body.decode().splitlines():
        if not line.startswith("depot_http_requests_total{"):
            continue
        labels, value = line[len("depot_http_requests_total{"):].rsplit("} ", 1)
        fields = dict(item.split("=", 1) for item in labels.split('",') if "=" in item)
        route = fields.get("route", "").strip('"')
        code = fields.get("status", "").strip('"')
        by_route.setdefault(route, {})[code] = by_route.setdefault(route, {}).get(code, 0) + int(float(value))
    return "\n".join(f"  {route:52} " + " ".join(f"{code}×{n}" for code, n in sorted(codes.items()))
                     for route, codes in sorted(by_route.items()))


def main() -> int:
    binary = Path(os.environ.get("DEPOT_BIN", ROOT / ".build" / "debug" / "depot"))
    if not binary.exists():
        print(f"api-check: {binary} does not exist: build Depot first (swift build) or set DEPOT_BIN", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="depot-api-check-") as tmp:
        work = Path(tmp)
        depot = Depot(binary, work)
        failed = []
        try:
            served = depot.request("GET", "/openapi.json")[1]
            committed = (ROOT / "docs" / "openapi.json").read_bytes()
            if served != committed:
                print("api-check: GET /openapi.json differs from docs/openapi.json (run scripts/openapi-sync and rebuild)",
                      file=sys.stderr)
                return 1
            user_token = depot.cli("token", "--sub", "alice").strip()
            keys = depot.cli("keys").splitlines()
            service_key = next(l.split()[1] for l in keys if l.startswith("service_role:"))
            runs = [
                ("user alice", {"Authorization": f"Bearer {user_token}"}),
                ("service_role", {"Authorization": f"Bearer {service_key}", "apikey": service_key}),
            ]
            for label, headers in runs:
                seed(depot, service_key, user_token)
                if schemathesis(depot, label, headers, work) != 0:
                    failed.append(label)
            print("api-check: answers by route and status:\n" + answers(depot, service_key), flush=True)
        finally:
            depot.stop()
        if depot.process.returncode not in (0, -15):
            print(f"api-check: depot serve exited with {depot.process.returncode}; log:\n{depot.log_path.read_text()[-4000:]}",
                  file=sys.stderr)
            failed.append("server exit")
        if failed:
            print(f"api-check: FAILED ({', '.join(failed)}); server log tail:\n{depot.log_path.read_text()[-4000:]}",
                  file=sys.stderr)
            return 1
    print("api-check: the description and the server agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
