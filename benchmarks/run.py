#!/usr/bin/env python3
"""Depot side by side with nginx and moto on this machine: one table of medians (min–max) over
ROUNDS runs and the ratio Depot/peer measured in the same run. Writes benchmarks/RESULTS.md and
benchmarks/ratios.png. Every process it starts is stopped at the end (by PID).

  benchmarks/run.py [--smoke] [--rounds N] [--depot PATH]

Run through scripts/bench, which builds Depot and installs the peers and tools first.
"""
import argparse
from http.client import HTTPConnection
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PEERS_SRC = os.environ.get("PEERS_SRC") or os.path.join(REPO, "benchmarks", "peers")
PEERS = os.environ["PEERS"]
PY = os.environ["PY"]
DATA = os.path.join(PEERS, "data")
DEPOT_PORT = int(os.environ.get("DEPOT_PORT", "18084"))
SECRET = "bench-secret-0123456789-0123456789-0123"
MIB = 1024 * 1024
# The pause of each of the 32 connections after an answer in the paced hot-URL load (ms).
PACED_MS = 2


def sh(cmd, timeout=120, check=True, env=None):
    r = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, **(env or {})})
    if check and r.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    return r.stdout.strip()


def http(method, url, body=None, headers=None, timeout=60):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


class Sampler:
    """RSS of the given PIDs, sampled every 10 ms (the peers' rss_sampler.py)."""

    def __init__(self, pids, seconds):
        self.p = subprocess.Popen([sys.executable, os.path.join(PEERS_SRC, "rss_sampler.py"), "--interval", "0.01",
                                   "--max-seconds", str(seconds)] + [str(p) for p in pids], stdout=subprocess.PIPE, text=True)
        time.sleep(0.05)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        out, _ = self.p.communicate(timeout=10)
        j = json.loads(out)
        return (j["rss_peak_kb"] - j["rss_baseline_kb"]) / 1024, j["rss_peak_kb"] / 1024


def curl_speed(args, expect_codes=("200",), timeout=60):
    out = sh(["curl", "-s", "-o", "/dev/null", "--max-time", str(timeout), "-H", "Expect:", "-w",
              "%{http_code} %{size_download} %{size_upload} %{time_total}"] + args, timeout=timeout + 5)
    code, down, up, t = out.split()
    if code not in expect_codes:
        raise RuntimeError(f"curl {args[-1][:80]} → {code}")
    size = max(float(down), float(up))
    return size / float(t) / 1e6


def cpu_times():
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(fields), fields[3] + fields[4]  # total, idle + iowait


def wait_idle(limit=0.10, longest=20.0):
    """Waits (at most `longest` seconds) until the machine is quiet: under `limit` of the CPU busy
    over half a second. Every load measurement starts this way, whoever ran before it — a peer
    measured while the one before it still writes back its uploads or finishes its queue (moto
    does, for seconds) would be measured on a busier machine than the others."""
    end = time.monotonic() + longest
    while time.monotonic() < end:
        t0, i0 = cpu_times()
        time.sleep(0.5)
        t1, i1 = cpu_times()
        if t1 > t0 and 1 - (i1 - i0) / (t1 - t0) < limit:
            return


def wrk(url, duration, script=None, script_args=(), peer_errors_ok=False):
    """Closed-loop wrk load: (requests/s, p99 ms). Any non-2xx answer from Depot fails the run;
    a peer's rare error (moto has been seen to answer one PUT of 1,000s with an error) is printed
    and tolerated up to 1 % of its requests: its figure is still its throughput."""
    wait_idle()
    cmd = ["wrk", "-t2", "-c32", f"-d{duration}", "--latency"]
    if script:
        cmd += ["-s", script]
    cmd += [url]
    if script_args:
        cmd += ["--"] + list(script_args)
    out = sh(cmd, timeout=int(duration.rstrip("s")) + 30)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    total = int(re.search(r"(\d+) requests in", out).group(1))
    if errors > 0:
        if not peer_errors_ok or errors * 100 > total:
            raise RuntimeError(f"wrk saw {errors} non-2xx responses of {total} on {url[:80]}")
        print(f"    note: the peer answered {errors} of {total} requests with an error on {url[:80]}")
    return rps, p99


def to_ms(v):
    n = float(re.match(r"[\d.]+", v).group(0))
    unit = v[len(re.match(r"[\d.]+", v).group(0)):]
    return n * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def cpu_name():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


# MARK: - Depot

class Depot:
    def __init__(self, binary, name="depot", port=DEPOT_PORT, env=None):
        self.binary = binary
        self.name = name
        self.dir = os.path.join(PEERS, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(os.path.join(PEERS, f"{name}.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--data-dir", self.dir, "--port", str(port), "--max-file-size", str(2 * 1024 * MIB),
             "--log-level", "warning", "--gc-interval", "0",
             # The quota and rate-limit checks run (their cost is measured) but never refuse: one
             # benchmark user uploads far more, far faster, than a tenant's defaults allow.
             "--quota-bytes", str(1 << 50), "--quota-objects", "1000000000", "--max-open-uploads", "1000000000",
             "--rate-limit", "1000000", "--rate-burst", "1000000"],
            # No image variants: the peers make none, and the benchmark's images are random bytes
            # behind a signature (their variant jobs would only end as dead letters).
            # Access rules on (benchmarks/rules.yaml): the Storage API's checks are measured with them.
            env={**os.environ, "DEPOT_JWT_SECRET": SECRET, "DEPOT_VARIANTS": "none", "DEPOT_POLICIES": os.path.join(HERE, "rules.yaml"),
                 **(env or {})}, stdout=self.log, stderr=self.log)
        for _ in range(200):
            try:
                http("GET", self.base + "/health", timeout=1)
                break
            except Exception:
                time.sleep(0.05)
        self.token = sh([binary, "token", "--sub", "bench", "--ttl", "86400"], env={"DEPOT_JWT_SECRET": SECRET})
        self.auth = {"Authorization": f"Bearer {self.token}"}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def put(self, path, file):
        out = sh(["curl", "-s", "-H", "Expect:", "-X", "PUT", "-H", "Content-Type: image/png", "-H", f"Authorization: Bearer {self.token}",
                  "--data-binary", f"@{file}", f"{self.base}/v1/assets/{path}"], timeout=300)
        return json.loads(out)

    def signed(self, paths, expires=86400):
        _, body = http("POST", self.base + "/v1/signed-urls", json.dumps({"paths": paths, "expiresIn": expires}).encode(),
                       {**self.auth, "Content-Type": "application/json"})
        return json.loads(body)["urls"]

    def upload_huge(self, sampler_seconds, timeout):
        """Uploads huge.bin through a presigned URL while sampling RSS; returns (RSS growth MiB, path)."""
        huge = os.path.join(DATA, "huge.bin")
        s = Sampler([self.proc.pid], sampler_seconds)
        url = self.presign(os.path.getsize(huge))
        curl_speed(["-T", huge, "-H", "Content-Type: image/png", url], ("201",), timeout)
        rss, _ = s.stop()
        return rss, url.split("/upload/sign/assets/")[1].split("?")[0]

    def presign(self, size):
        _, body = http("POST", self.base + "/v1/presigned-uploads",
                       json.dumps({"jobId": "bench", "contentType": "image/png", "size": size}).encode(),
                       {**self.auth, "Content-Type": "application/json"})
        return json.loads(body)["uploadUrl"]


def peer_url(peer, method, name):
    return sh([PY, os.path.join(PEERS_SRC, "urls.py"), peer, method, name])


def peer_pids(peer, depot):
    if peer == "depot":
        return [depot.proc.pid]
    if peer == "nginx":
        m = open(os.path.join(PEERS, "nginx", "master.pid")).read().strip()
        kids = sh(f"pgrep -P {m}", check=False).split()
        return [int(m)] + [int(k) for k in kids]
    return [int(open(os.path.join(PEERS, "moto", "moto.pid")).read().strip())]


# MARK: - Measurements

def measure_round(cfg, depot, results):
    large = os.path.join(DATA, "large.bin")
    large_size = os.path.getsize(large)
    small = os.path.join(DATA, "small.bin")
    peers = ["nginx", "moto", "depot"] if "peers" in cfg.only else []

    for peer in peers:
        # Signed 4 KiB GET under load.
        url = depot.small_url if peer == "depot" else peer_url(peer, "get", "small.bin")
        if peer != "moto" or not cfg.skip_moto_load:
            rps, p99 = wrk(url, cfg.duration)
            results.add("small_get_rps", peer, rps)
            results.add("small_get_p99_ms", peer, p99)
            if peer != "moto":
                # The same URL at one request rate for both (each connection paced: PACED_MS
                # between an answer and its next request), well below either's throughput.
                rps, p99 = wrk(url, cfg.duration, os.path.join(HERE, "paced.lua"), (str(PACED_MS),))
                results.add("small_get_paced_rps", peer, rps)
                results.add("small_get_paced_p99_ms", peer, p99)

        # Large signed GET.
        url = depot.large_url if peer == "depot" else peer_url(peer, "get", "large.bin")
        s = Sampler(peer_pids(peer, depot), 120)
        speeds = [curl_speed([url], timeout=cfg.transfer_timeout) for _ in range(3)]
        rss, _ = s.stop()
        results.add("large_get_mb_s", peer, statistics.median(speeds))
        results.add("large_get_rss_mib", peer, rss)

        # Large upload (hashed, fsynced, committed for Depot). Every peer starts with no dirty pages
        # left behind by the one before it (nginx never fsyncs: its uploads are still being
        # written back when the next peer's upload starts).
        os.sync()
        if peer == "depot":
            # The physical peer of Depot's uploads: dd of the same file, same size, to the same
            # file system, flushed (conv=fdatasync), no dirty pages before each (like for like).
            results.add("large_put_dd_mb_s", "disk", statistics.median(dd_same_size(large) for _ in range(3)))
            # And the simplest receivers of the same upload (floor_receivers): what any server
            # that hashes what it stores does with this client on this machine.
            for mode, metric in (("floor-overlap", "large_put_floor_mb_s"), ("floor-no-hash", "large_put_floor_nohash_mb_s")):
                speeds = []
                for _ in range(3):
                    os.sync()
                    speeds.append(curl_speed(["-T", large, floor_receiver(mode)], ("201",), cfg.transfer_timeout))
                results.add(metric, "disk", statistics.median(speeds))
            os.sync()
        s = Sampler(peer_pids(peer, depot), 120)
        speeds = []
        for i in range(3):
            url = depot.presign(large_size) if peer == "depot" else peer_url(peer, "put", f"large-up-{i}.bin")
            speeds.append(curl_speed(["-T", large, "-H", "Content-Type: image/png", url], ("200", "201", "204"), cfg.transfer_timeout))
        rss, _ = s.stop()
        results.add("large_put_mb_s", peer, statistics.median(speeds))
        results.add("large_put_rss_mib", peer, rss)

        # 4 KiB uploads, 32 concurrent clients.
        os.sync()
        if peer == "depot":
            rps, p99 = wrk(depot.base, cfg.duration, os.path.join(HERE, "put_auth.lua"), (depot.token, small, "1000"))
        else:
            urls = os.path.join(PEERS, f"put-urls-{peer}.txt")
            sh([PY, os.path.join(PEERS_SRC, "urls.py"), peer, "put-list", "small-put/", "1000", urls])
            first = open(urls).readline().strip()
            rps, p99 = wrk(first, cfg.duration, os.path.join(PEERS_SRC, "put.lua"), (urls, small), peer_errors_ok=True)
        results.add("small_put_rps", peer, rps)
        results.add("small_put_p99_ms", peer, p99)

    if "depot" not in cfg.only:
        if "tus" in cfg.only:  # the resumable upload alone (`--only tus`), on a quieter machine
            measure_resumable(cfg, depot, results)
        return
    # Depot alone: batch signing, flips, memory with very large objects.
    # The server's answer time: the body is encoded once, outside the clock, and sent over one
    # kept-alive connection (as a backend's HTTP client does), so Python's own JSON encoding and
    # TCP set-up are not counted; the 200 KB reply is read in full inside the clock.
    # No dirty pages left by the uploads just measured (their write-back is not this measure's).
    # The Storage API's batch (`/object/sign/{bucket}`) asks the access rules for every name.
    os.sync()
    body = json.dumps({"paths": depot.batch_paths, "expiresIn": 3600}).encode()
    for key, route in (("sign_1000_p50_ms", "/v1/signed-urls"), ("storage_sign_1000_p50_ms", "/storage/v1/object/sign/assets")):
        conn = HTTPConnection(urllib.parse.urlsplit(depot.base).netloc, timeout=60)
        times = []
        for _ in range(cfg.batch_requests):
            t0 = time.perf_counter()
            conn.request("POST", route, body, {**depot.auth, "Content-Type": "application/json"})
            reply = conn.getresponse()
            answer = reply.read()
            times.append((time.perf_counter() - t0) * 1000)
            assert reply.status == 200, reply.status
        conn.close()
        signed = json.loads(answer)
        signed = list(signed["urls"].values()) if isinstance(signed, dict) else [e.get("signedURL") for e in signed]
        assert len(signed) == len(depot.batch_paths) and all(signed), f"{route}: not every name was signed"
        results.add(key, "depot", statistics.median(times))
    for label, path in (("flip_big_ms", depot.flip_big), ("flip_small_ms", depot.flip_small)):
        times = []
        for i in range(cfg.flips):
            vis = "public" if i % 2 == 0 else "private"
            t0 = time.perf_counter()
            http("PATCH", f"{depot.base}/v1/assets/{path}", json.dumps({"visibility": vis}).encode(),
                 {**depot.auth, "Content-Type": "application/json"})
            times.append((time.perf_counter() - t0) * 1000)
        results.add(label, "depot", statistics.median(times))

    rss, path = depot.upload_huge(300, cfg.transfer_timeout * 4)
    results.add("huge_put_rss_mib", "depot", rss)
    get = depot.signed([path])[path]
    s = Sampler([depot.proc.pid], 300)
    curl_speed([get], timeout=cfg.transfer_timeout * 4)
    rss, _ = s.stop()
    results.add("huge_get_rss_mib", "depot", rss)
    http("DELETE", f"{depot.base}/v1/assets/{path}", headers=depot.auth)

    measure_resumable(cfg, depot, results)

    # Physical limits of this disk, measured in the same run (from a clean page cache, as the uploads).
    os.sync()
    disk = json.loads(sh(["bash", os.path.join(PEERS_SRC, "limits_disk.sh")], timeout=60))
    results.add("disk_fdatasync_mb_s", "disk", disk["write_fdatasync_mb_s"])
    files = json.loads(sh([sys.executable, os.path.join(PEERS_SRC, "limits_smallfiles.py")], timeout=60))
    results.add("smallfiles_fsync_per_s", "disk", files["create_fsync_rename_fsyncdir_per_s"])


def measure_resumable(cfg, depot, results):
    """The large file through TUS in 8 MiB PATCHes (each acknowledged only once durable) against one
    streamed Storage API upload of the same file, alternating which goes first, page cache flushed
    before each; Depot's RSS growth during the TUS uploads."""
    import base64
    large = os.path.join(DATA, "large.bin")
    size = os.path.getsize(large)
    chunk = 8 * MIB if not cfg.smoke else MIB
    conn = HTTPConnection(urllib.parse.urlsplit(depot.base).netloc, timeout=cfg.transfer_timeout * 4)
    auth = depot.auth["Authorization"]

    def single(i):
        os.sync()
        t0 = time.perf_counter()
        with open(large, "rb") as f:
            conn.request("POST", f"/storage/v1/object/assets/bench/tus-single-{i}.png", f,
                         {"Authorization": auth, "Content-Type": "image/png", "Content-Length": str(size), "x-upsert": "true"})
            r = conn.getresponse()
            r.read()
        assert r.status == 200, r.status
        return size / (time.perf_counter() - t0) / 1e6

    def resumable(i):
        os.sync()
        t0 = time.perf_counter()
        meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in
                        (("bucketName", "assets"), ("objectName", f"bench/tus-{i}.png"), ("contentType", "image/png")))
        conn.request("POST", "/storage/v1/upload/resumable", None, {"Authorization": auth, "Tus-Resumable": "1.0.0",
                     "Upload-Length": str(size), "Upload-Metadata": meta, "x-upsert": "true"})
        r = conn.getresponse()
        r.read()
        assert r.status == 201, r.status
        url = urllib.parse.urlsplit(r.getheader("Location")).path
        offset = 0
        with open(large, "rb") as f:
            while offset < size:
                data = f.read(chunk)
                conn.request("PATCH", url, data, {"Authorization": auth, "Tus-Resumable": "1.0.0", "Upload-Offset": str(offset),
                                                  "Content-Type": "application/offset+octet-stream"})
                r = conn.getresponse()
                r.read()
                assert r.status == 204, r.status
                offset += len(data)
        return size / (time.perf_counter() - t0) / 1e6

    singles, tus, rss = [], [], []
    for i in range(3):
        if i % 2 == 0:
            singles.append(single(i))
        s = Sampler([depot.proc.pid], 120)
        tus.append(resumable(i))
        rss.append(s.stop()[0])
        if i % 2 == 1:
            singles.append(single(i))
    conn.close()
    results.add("storage_put_mb_s", "depot", statistics.median(singles))
    results.add("tus_put_mb_s", "depot", statistics.median(tus))
    results.add("tus_put_rss_mib", "depot", max(rss))


# MARK: - Gallery: many distinct objects

def make_gallery(depot, n):
    """n distinct 4 KiB objects: the same bytes as files under nginx's data directory and as
    Depot objects (bench/gallery/{i}.png). Returns (Depot URL list file, nginx URL list file), the
    URLs in a shuffled order (the same order for both)."""
    import random
    from concurrent.futures import ThreadPoolExecutor
    sys.path.insert(0, PEERS_SRC)
    import urls as peer_urls
    gdir = os.path.join(os.environ["NGINX_DATA"], "gallery")
    os.makedirs(gdir, exist_ok=True)
    for i in range(n):
        f = os.path.join(gdir, f"{i}.png")
        if not os.path.exists(f):
            with open(f, "wb") as out:
                out.write(b"\x89PNG\r\n\x1a\n" + os.urandom(4096 - 8))
    host = urllib.parse.urlsplit(depot.base).netloc
    have = getattr(depot, "gallery_size", 0)

    def upload(chunk):
        conn = HTTPConnection(host, timeout=60)
        for i in chunk:
            conn.request("PUT", f"/v1/assets/bench/gallery/{i}.png", open(os.path.join(gdir, f"{i}.png"), "rb").read(),
                         {**depot.auth, "Content-Type": "image/png"})
            r = conn.getresponse()
            r.read()
            assert r.status in (200, 201), r.status
        conn.close()
    todo = list(range(have, n))
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(upload, [todo[k::16] for k in range(16)]))
    depot.gallery_size = max(have, n)
    order = list(range(n))
    random.Random(n).shuffle(order)
    depot_list = os.path.join(PEERS, f"gallery-depot-{depot.name}-{n}.txt")
    nginx_list = os.path.join(PEERS, f"gallery-nginx-{n}.txt")
    signed = {}
    for k in range(0, n, 1000):
        signed.update(depot.signed([f"bench/gallery/{i}.png" for i in range(k, min(n, k + 1000))]))
    with open(depot_list, "w") as out:
        out.writelines(signed[f"bench/gallery/{i}.png"] + "\n" for i in order)
    with open(nginx_list, "w") as out:
        out.writelines(peer_urls.nginx_url("get", f"gallery/{i}.png", 86400) + "\n" for i in order)
    return depot_list, nginx_list


def gallery_wrk(list_file, duration):
    first = open(list_file).readline().strip()
    return wrk(first, duration, os.path.join(HERE, "gallery.lua"), (list_file,))


def measure_gallery(cfg, depot, results, sizes, key="gallery", peers=("nginx", "depot")):
    """Signed 4 KiB GETs over many distinct objects, each URL asked about once a second or less.
    Recorded as {key}_small_… / {key}_large_… for cfg.gallery_sizes' two sizes."""
    for n in sizes:
        tag = "small" if n == cfg.gallery_sizes[0] else "large"
        depot_list, nginx_list = make_gallery(depot, n)
        for peer in peers:
            lst = depot_list if peer == "depot" else nginx_list
            gallery_wrk(lst, "2s")  # warm-up: both serve their steady state, not a first pass
            rps, p99 = gallery_wrk(lst, cfg.duration)
            results.add(f"{key}_{tag}_rps", peer, rps)
            results.add(f"{key}_{tag}_p99_ms", peer, p99)


FLOOR_URLS = {}


def floor_receiver(mode):
    """The URL of the simplest receiver of `mode` (floor_receivers), started on first use: a thread
    of this process, answering on a loopback port, storing in the peers' folder."""
    if mode not in FLOOR_URLS:
        import floor_receivers
        folder = os.path.join(PEERS, "floor-receivers")
        os.makedirs(folder, exist_ok=True)
        port = 19420 + floor_receivers.MODES.index(mode)
        floor_receivers.serve(port, mode, folder)
        FLOOR_URLS[mode] = f"http://127.0.0.1:{port}/large.bin"
    return FLOOR_URLS[mode]


def dd_same_size(source):
    """MB/s of `dd if=source of=<file on the peers' file system> bs=1M conv=fdatasync`, after a sync."""
    out = os.path.join(PEERS, "dd-same-size.bin")
    os.sync()
    t0 = time.perf_counter()
    sh(["dd", f"if={source}", f"of={out}", "bs=1M", "conv=fdatasync", "status=none"], timeout=300)
    seconds = time.perf_counter() - t0
    os.remove(out)
    return os.path.getsize(source) / seconds / 1e6


def measure_rclone_round(cfg, depot_rc, results):
    """Depot with its blobs in `rclone serve s3`, against the same rclone server used directly
    (presigned PUT and GET of the same file): the S3 rows' Go peer (moto is Python, itself the
    bottleneck)."""
    large = os.path.join(DATA, "large.bin")
    size = os.path.getsize(large)
    direct_put, depot_put, direct_get, depot_get = [], [], [], []
    for i in range(3):
        direct_put.append(curl_speed(["-T", large, peer_url("rclone", "put", f"direct-{i}.bin")], ("200",), cfg.transfer_timeout * 2))
        depot_put.append(curl_speed(["-T", large, "-H", "Content-Type: image/png", depot_rc.presign(size)], ("201",), cfg.transfer_timeout * 2))
        direct_get.append(curl_speed([peer_url("rclone", "get", f"direct-{i}.bin")], timeout=cfg.transfer_timeout * 2))
        depot_get.append(curl_speed([depot_rc.large_url], timeout=cfg.transfer_timeout * 2))
    results.add("rclone_large_put_mb_s", "rclone", statistics.median(direct_put))
    results.add("rclone_large_put_mb_s", "depot", statistics.median(depot_put))
    results.add("rclone_large_get_mb_s", "rclone", statistics.median(direct_get))
    results.add("rclone_large_get_mb_s", "depot", statistics.median(depot_get))


class Results:
    def __init__(self):
        self.v = {}

    def add(self, metric, peer, value):
        self.v.setdefault((metric, peer), []).append(value)

    def med(self, metric, peer):
        vals = self.v.get((metric, peer))
        return statistics.median(vals) if vals else None

    def cell(self, metric, peer, nd=0):
        vals = self.v.get((metric, peer))
        if not vals:
            return "—"
        f = f"{{:,.{nd}f}}"
        return f"{f.format(statistics.median(vals))} ({f.format(min(vals))}–{f.format(max(vals))})"


def measure_s3_round(cfg, depot_s3, results):
    """Depot with its blobs in S3 (the moto peer), against moto used directly: large uploads and
    downloads, and the memory of a HUGE upload (it must stay flat as the object grows)."""
    large = os.path.join(DATA, "large.bin")
    speeds = []
    for _ in range(3):
        speeds.append(curl_speed(["-T", large, "-H", "Content-Type: image/png", depot_s3.presign(os.path.getsize(large))],
                                 ("201",), cfg.transfer_timeout * 2))
    results.add("s3_large_put_mb_s", "depot", statistics.median(speeds))
    speeds = [curl_speed([depot_s3.large_url], timeout=cfg.transfer_timeout * 2) for _ in range(3)]
    results.add("s3_large_get_mb_s", "depot", statistics.median(speeds))
    rss, path = depot_s3.upload_huge(600, cfg.transfer_timeout * 20)
    results.add("s3_huge_put_rss_mib", "depot", rss)
    http("DELETE", f"{depot_s3.base}/v1/assets/{path}", headers=depot_s3.auth)


# MARK: - Report

ROWS = [
    # metric, label, peer for the ratio, target ratio, higher is better, decimals, target text
    ("small_get_rps", "signed 4 KiB GET, one hot URL, req/s (wrk -t2 -c32)", "nginx", 1.0, True, 0, "≥ 1.0× nginx"),
    ("small_get_p99_ms", "signed 4 KiB GET, one hot URL, p99 ms (each at its own saturation: the faster answers more requests in the same time)", "nginx", 1.0, False, 2, "≤ 1.0× nginx"),
    ("small_get_paced_p99_ms", "signed 4 KiB GET, one hot URL, p99 ms at the same request rate (32 connections, each pausing PACED ms after an answer)", "nginx", 1.0, False, 2, "≤ 1.0× nginx"),
    ("small_get_paced_rps", "the same, requests/s (the rate both were loaded at)", "nginx", None, True, 0, ""),
    ("large_get_mb_s", "large signed GET, MB/s", "nginx", 1.0, True, 0, "≥ 1.0× nginx"),
    ("gallery_small_rps", "gallery: signed 4 KiB GETs over SMALLG distinct objects, req/s", "nginx", 1.0, True, 0, "≥ 1.0× nginx"),
    ("gallery_small_p99_ms", "gallery over SMALLG objects, p99 ms", "nginx", None, False, 2, ""),
    ("gallery_large_rps", "gallery: signed 4 KiB GETs over LARGEG distinct objects, req/s", "nginx", 0.8, True, 0, "≥ 0.8× nginx"),
    ("gallery_large_p99_ms", "gallery over LARGEG objects, p99 ms", "nginx", None, False, 2, ""),
    # Depot with its rows in PostgreSQL (cached, kept right by LISTEN/NOTIFY); the peer is the
    # SQLite Depot's figure of the same run.
    ("pg_gallery_large_rps", "rows in PostgreSQL: signed GETs over LARGEG distinct objects, req/s (peer: the same on SQLite)", "depot:gallery_large_rps", 0.8, True, 0, "≥ 0.8× SQLite"),
    ("large_put_mb_s", "large upload, MB/s (Depot: hashed, fsynced, committed; disk: dd conv=fdatasync of the same file)", "disk:large_put_dd_mb_s", 0.85, True, 0, "≥ 0.85× dd fdatasync, same size"),
    ("large_put_mb_s", "the same large upload against the simplest receiver that hashes it (Python: SHA-256 on a second thread, write, fdatasync, rename; benchmarks/floor_receivers.py): what any hashing server does with this client on this machine", "disk:large_put_floor_mb_s:simplest receiver", None, True, 0, ""),
    ("small_put_rps", "4 KiB uploads/s, 32 clients (Depot: durable before 201)", "disk:smallfiles_fsync_per_s", 1.0, True, 0, "≥ 1.0× write+rename+fsyncs"),
    ("large_get_rss_mib", "RSS growth during the large GETs, MiB", None, None, False, 0, ""),
    ("large_put_rss_mib", "RSS growth during the large uploads, MiB", None, None, False, 0, ""),
    ("huge_put_rss_mib", "RSS growth during a HUGE upload, MiB", None, 64, False, 0, "≤ 64 MiB"),
    ("huge_get_rss_mib", "RSS growth during a HUGE download, MiB", None, 64, False, 0, "≤ 64 MiB"),
    ("sign_1000_p50_ms", "POST /v1/signed-urls with 1,000 paths, p50 ms", None, 10, False, 1, "≤ 10 ms"),
    ("storage_sign_1000_p50_ms", "POST /storage/v1/object/sign/assets with 1,000 paths (5 access rules, benchmarks/rules.yaml), p50 ms", None, 10, False, 1, "≤ 10 ms"),
    ("tus_put_mb_s", "resumable (TUS) upload of the large file in 8 MiB PATCHes, MB/s (peer: one streamed Storage API upload of it)", "depot:storage_put_mb_s:one upload", 0.8, True, 0, "≥ 0.8× one upload"),
    ("tus_put_rss_mib", "RSS growth during the TUS uploads, MiB", None, 64, False, 0, "≤ 64 MiB"),
    ("flip_big_ms", "visibility flip of a 100 MiB object, ms", None, 5, False, 2, "≤ 5 ms"),
    ("flip_small_ms", "visibility flip of a 1 KiB object, ms", None, 5, False, 2, "≤ 5 ms"),
    # Depot with --blob-store s3 over the moto peer; moto's column is moto used directly (same run).
    ("s3_large_put_mb_s", "blobs in S3: large upload through Depot, MB/s (moto: PUT straight to moto)", "moto:large_put_mb_s", None, True, 0, ""),
    ("s3_large_get_mb_s", "blobs in S3: large signed GET through Depot, MB/s (moto: GET straight from moto)", "moto:large_get_mb_s", None, True, 0, ""),
    ("s3_huge_put_rss_mib", "blobs in S3: RSS growth during a HUGE upload, MiB", None, None, False, 0, "flat as the object grows"),
    # Depot with --blob-store s3 over `rclone serve s3`; the peer column is rclone used directly.
    ("rclone_large_put_mb_s", "blobs in rclone serve s3: large presigned upload through Depot (one streamed PutObject, as over https), MB/s (peer: presigned PUT straight to rclone)", "rclone", 0.8, True, 0, "≥ 0.8× rclone"),
    ("rclone_large_get_mb_s", "blobs in rclone serve s3: large signed GET through Depot, MB/s (peer: presigned GET from rclone)", "rclone", 0.9, True, 0, "≥ 0.9× rclone"),
]


def report(cfg, res, env_info):
    huge = f"{os.path.getsize(os.path.join(DATA, 'huge.bin')) // MIB} MiB"
    large = f"{os.path.getsize(os.path.join(DATA, 'large.bin')) // MIB} MiB"
    lines = [
        "# Benchmark results",
        "",
        f"Date: {env_info['date']}. Machine: {env_info['cpu']}, {env_info['mem']} GiB RAM, kernel {env_info['kernel']}. "
        f"Versions: Depot {env_info['depot']} ({cfg.build} build), nginx {env_info['nginx']}, moto {env_info['moto']}, "
        f"wrk {env_info['wrk']}, curl {env_info['curl']}, Swift {env_info['swift']}.",
        "",
        f"Mode: {'SMOKE (tiny sizes, 1 s per measurement: proves the script works, the figures mean nothing)' if cfg.smoke else 'full'}; "
        f"{cfg.rounds} round(s); large object {large}, huge object {huge}, small object 4 KiB. "
        "Each cell: median (min–max) over rounds. Ratios use the medians of the same run. Command: `scripts/bench`"
        + (" --smoke" if cfg.smoke else "") + ".",
        "",
        "| measure | Depot | nginx | moto | rclone | Depot / peer | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    ratios = []
    for metric, label, ref, target, higher, nd, ttext in ROWS:
        label = label.replace("PACED", str(PACED_MS)).replace("HUGE", huge).replace("SMALLG", f"{cfg.gallery_sizes[0]:,}").replace("LARGEG", f"{cfg.gallery_sizes[1]:,}")
        d = res.med(metric, "depot")
        ratio_txt, met = "", ""
        if ref and d is not None:
            if ref.startswith("disk:"):
                # disk:METRIC[:NAME]: a physical limit measured in the same run.
                r = res.med(ref.split(":")[1], "disk")
                refname = ref.split(":")[2] if ref.count(":") > 1 else "disk"
            elif ref.startswith("moto:"):
                r = res.med(ref[5:], "moto")
                refname = "moto"
            elif ref.startswith("depot:"):
                # depot:METRIC[:NAME]: another of Depot's own figures of the same run.
                r = res.med(ref.split(":")[1], "depot")
                refname = ref.split(":")[2] if ref.count(":") > 1 else "SQLite"
            else:
                r = res.med(metric, ref)
                refname = ref
            if r:
                ratio = d / r
                ratio_txt = f"{ratio:.2f}× {refname}"
                if target is not None:
                    ratios.append((label, ratio, target, higher))
                    met = "yes" if (ratio >= target if higher else ratio <= target) else "**no**"
        elif target is not None and d is not None:
            met = "yes" if (d >= target if higher else d <= target) else "**no**"
        moto_cell = res.cell(ref[5:], "moto", nd) if ref and ref.startswith("moto:") else res.cell(metric, "moto", nd)
        nginx_cell, rclone_cell = res.cell(metric, "nginx", nd), res.cell(metric, "rclone", nd)
        if ref and ref.startswith("depot:"):
            peer_name = ref.split(":")[2] if ref.count(":") > 1 else "SQLite Depot"
            moto_cell = f"{peer_name}: {res.cell(ref.split(':')[1], 'depot', nd)}"
        elif ref and ref.startswith("disk:") and ref.count(":") > 1:
            # A named physical peer: its figure alone beside Depot's (the row repeats Depot's).
            nginx_cell, rclone_cell = "—", "—"
            moto_cell = f"{ref.split(':')[2]}: {res.cell(ref.split(':')[1], 'disk', nd)}"
        lines.append(f"| {label} | {res.cell(metric, 'depot', nd)} | {nginx_cell} | "
                     f"{moto_cell} | {rclone_cell} | {ratio_txt} | {ttext} | {met} |")
    lines += micro_section(cfg.micro)
    lines += [
        "",
        "Physical limits measured in the same run: disk write with fdatasync "
        f"{res.cell('disk_fdatasync_mb_s', 'disk')} MB/s (1 GiB of zeros), "
        f"{res.cell('large_put_dd_mb_s', 'disk')} MB/s (dd of the large upload's file); the simplest receivers of that upload "
        f"(benchmarks/floor_receivers.py, same client): {res.cell('large_put_floor_mb_s', 'disk')} MB/s hashing, "
        f"{res.cell('large_put_floor_nohash_mb_s', 'disk')} MB/s not hashing; 4 KiB write + rename + file and directory fsync "
        f"{res.cell('smallfiles_fsync_per_s', 'disk')} files/s.",
        "",
        "![ratios](ratios.png)",
        "",
    ]
    # A partial run (--only) never overwrites the full results.
    suffix = ("-smoke" if cfg.smoke else "") + ("-partial" if cfg.only != ALL_GROUPS else "")
    lines = [l.replace("ratios.png", f"ratios{suffix}.png") for l in lines]
    out = os.path.join(HERE, f"RESULTS{suffix}.md")
    open(out, "w").write("\n".join(lines))
    chart(ratios, f"ratios{suffix}.png")
    print("\n".join(lines))
    print(f"\nwrote {out}")


MICRO = [
    # benchmark name (as ordo-one/benchmark exports it), label, unit scale, unit, target per second
    ("mint_download_token", "mint a download token", 1000, "/s", 1_000_000),
    ("verify_download_token", "verify a download token", 1000, "/s", None),
    ("parse_+_validate_a_URL_path", "parse + validate an ASCII URL path", 1000, "/s", None),
    ("parse_+_validate_a_non-ASCII_URL_path", "parse + validate a non-ASCII URL path", 1000, "/s", None),
    ("sniff_a_16-byte_prefix", "sniff a 16-byte prefix", 1000, "/s", None),
    ("SHA-256_of_1_MiB", "SHA-256, MB/s", 1.048576, " MB/s", None),
]


def micro_section(path):
    """The in-process micro-benchmarks (benchmarks/micro, ordo-one/benchmark), p50 of its samples."""
    if not path:
        return ["", "In-process micro-benchmarks: not run in this mode (`scripts/bench` without `--smoke` runs them)."]
    results = {}
    for entry in json.load(open(path)):
        name = entry["benchmark"].rsplit(".", 1)[-1]
        results[name] = entry["primaryMetric"]["scorePercentiles"]["50.0"]
    lines = ["", "In-process micro-benchmarks (`benchmarks/micro`, ordo-one/benchmark, one core, p50 of the samples):", "",
             "| micro-benchmark | p50 | target | met |", "| --- | --- | --- | --- |"]
    for name, label, scale, unit, target in MICRO:
        if name not in results:
            continue
        value = results[name] * scale
        met = "" if target is None else ("yes" if value >= target else "**no**")
        ttext = "" if target is None else f"≥ {target:,} {unit.strip()}"
        lines.append(f"| {label} | {value:,.0f}{unit} | {ttext} | {met} |")
    return lines


def chart(ratios, name):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no chart", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(ratios) + 1.5))
    labels = [r[0][:60] for r in ratios]
    vals = [r[1] for r in ratios]
    colors = ["tab:green" if ((v >= t) if h else (v <= t)) else "tab:red" for (_, v, t, h) in ratios]
    ax.barh(labels, vals, color=colors)
    for i, (_, v, t, h) in enumerate(ratios):
        ax.plot([t, t], [i - 0.4, i + 0.4], color="black", linewidth=2)
    ax.set_xlabel("Depot / peer (black bar: target)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, name), dpi=100)


ALL_GROUPS = {"peers", "depot", "gallery", "s3", "pg", "rclone"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--depot", required=True)
    ap.add_argument("--build", default="release")
    ap.add_argument("--micro", help="ordo-one/benchmark JMH JSON of benchmarks/micro")
    ap.add_argument("--only", help="comma-separated groups to measure (peers, depot, gallery, s3, pg, rclone; tus: the resumable "
                    "upload alone, which depot includes); default all")
    cfg = ap.parse_args()
    cfg.only = set(cfg.only.split(",")) if cfg.only else ALL_GROUPS
    cfg.gallery_sizes = (200, 1000) if cfg.smoke else (5000, 40000)
    cfg.rounds = cfg.rounds or (1 if cfg.smoke else 3)
    cfg.duration = "1s" if cfg.smoke else "10s"
    cfg.transfer_timeout = 30
    cfg.batch_requests = 5 if cfg.smoke else 30
    cfg.flips = 4 if cfg.smoke else 20
    cfg.skip_moto_load = False

    started = []
    started_depots = []
    depot = None
    try:
        for peer in ("nginx", "moto"):
            sh(["bash", os.path.join(PEERS_SRC, f"{peer}_start.sh")], timeout=300)
            started.append(peer)
        depot = Depot(cfg.depot)
        small = os.path.join(DATA, "small.bin")
        large = os.path.join(DATA, "large.bin")
        depot.put("bench/small.png", small)
        depot.put("bench/large.png", large)
        urls = depot.signed(["bench/small.png", "bench/large.png"])
        depot.small_url, depot.large_url = urls["bench/small.png"], urls["bench/large.png"]
        # 1,000 objects for batch signing; a big and a small object to flip.
        batch = []
        for i in range(1000):
            batch.append(f"bench/batch/{i}.png")
        tiny = os.path.join(DATA, "tiny.bin")
        sh(f"curl -s -Z --parallel-max 16 -H 'Content-Type: image/png' -H 'Authorization: Bearer {depot.token}' "
           + " ".join(f"-T {tiny} {depot.base}/v1/assets/{p}" for p in batch) + " -o /dev/null", timeout=300)
        depot.batch_paths = batch
        depot.put("bench/flip-big.png", os.path.join(DATA, "flip-big.bin"))
        depot.put("bench/flip-small.png", tiny)
        depot.flip_big, depot.flip_small = "bench/flip-big.png", "bench/flip-small.png"

        # A second Depot with its blobs in the moto peer's bucket (rows in its own SQLite).
        depot_s3 = Depot(cfg.depot, name="depot-s3", port=DEPOT_PORT + 10, env={
            "DEPOT_BLOB_STORE": "s3", "DEPOT_S3_ENDPOINT": f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '18082')}",
            "DEPOT_S3_BUCKET": os.environ.get("MOTO_BUCKET", "bench"), "DEPOT_S3_PREFIX": "depot-bench",
            "DEPOT_S3_ACCESS_KEY": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            "DEPOT_S3_SECRET_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")})
        started_depots = [depot_s3]
        depot_s3.put("bench/large.png", large)
        depot_s3.large_url = depot_s3.signed(["bench/large.png"])["bench/large.png"]

        # A Depot with its rows in PostgreSQL (a new database each run; files on local disk).
        depot_pg = None
        pg_url = os.environ.get("DEPOT_BENCH_DATABASE_URL")
        if "pg" in cfg.only and pg_url:
            db = "depot_bench"
            sh(["psql", pg_url, "-qc", f"DROP DATABASE IF EXISTS {db}"])
            sh(["psql", pg_url, "-qc", f"CREATE DATABASE {db}"])
            parts = urllib.parse.urlsplit(pg_url)
            depot_pg = Depot(cfg.depot, name="depot-pg", port=DEPOT_PORT + 20,
                             env={"DEPOT_DATABASE_URL": urllib.parse.urlunsplit(parts._replace(path="/" + db))})
            started_depots.append(depot_pg)
        elif "pg" in cfg.only:
            print("DEPOT_BENCH_DATABASE_URL unset: no PostgreSQL rows", file=sys.stderr)

        # A Depot with its blobs in `rclone serve s3`.
        depot_rc = None
        if "rclone" in cfg.only:
            sh(["bash", os.path.join(PEERS_SRC, "rclone_start.sh")], timeout=60)
            started.append("rclone")
            depot_rc = Depot(cfg.depot, name="depot-rclone", port=DEPOT_PORT + 30, env={
                "DEPOT_BLOB_STORE": "s3", "DEPOT_S3_ENDPOINT": f"http://127.0.0.1:{os.environ.get('RCLONE_PORT', '18085')}",
                "DEPOT_S3_BUCKET": os.environ.get("MOTO_BUCKET", "bench"), "DEPOT_S3_PREFIX": "depot-bench",
                "DEPOT_S3_ACCESS_KEY": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
                "DEPOT_S3_SECRET_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
                # A presigned upload goes as one streamed PutObject, as it does by default over
                # https (here plain http on loopback, whose default is hashed parts): like the
                # peer's presigned PUT, its body is not hashed into the signature.
                "DEPOT_S3_STREAMED_PUT_MAX": str(1 << 30)})
            started_depots.append(depot_rc)
            depot_rc.put("bench/large.png", large)
            depot_rc.large_url = depot_rc.signed(["bench/large.png"])["bench/large.png"]

        res = Results()
        for r in range(cfg.rounds):
            print(f"--- round {r + 1}/{cfg.rounds} (load {open('/proc/loadavg').read().split()[:3]})", file=sys.stderr)
            measure_round(cfg, depot, res)
            if "gallery" in cfg.only:
                measure_gallery(cfg, depot, res, cfg.gallery_sizes)
            if "s3" in cfg.only:
                measure_s3_round(cfg, depot_s3, res)
            if depot_pg:
                measure_gallery(cfg, depot_pg, res, cfg.gallery_sizes[-1:], key="pg_gallery", peers=("depot",))
                if "gallery" not in cfg.only:  # its SQLite peer, in the same run
                    measure_gallery(cfg, depot, res, cfg.gallery_sizes[-1:], peers=("depot",))
            if depot_rc:
                measure_rclone_round(cfg, depot_rc, res)
        env_info = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "cpu": cpu_name() + f" ×{os.cpu_count()}",
            "mem": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "kernel": platform.release(),
            "depot": (sh("git -C " + REPO + " rev-parse --short HEAD", check=False) or "?")
                     + ("+uncommitted changes" if sh("git -C " + REPO + " status --porcelain --untracked-files=no", check=False) else ""),
            "nginx": sh("nginx -v 2>&1 | cut -d/ -f2"),
            "moto": sh([PY, "-c", "import moto;print(moto.__version__)"]),
            "wrk": sh("wrk -v 2>&1 | head -1 | cut -d' ' -f2", check=False),
            "curl": sh("curl --version | head -1 | cut -d' ' -f2"),
            "swift": sh("swift --version 2>&1 | grep -o 'Swift version [0-9.]*' | cut -d' ' -f3", check=False),
        }
        report(cfg, res, env_info)
    finally:
        if depot:
            depot.stop()
        for d in started_depots:
            d.stop()
        for peer in started:
            sh(["bash", os.path.join(PEERS_SRC, f"{peer}_stop.sh")], check=False)
        shutil.rmtree(os.path.join(PEERS, "floor-receivers"), ignore_errors=True)


if __name__ == "__main__":
    main()
