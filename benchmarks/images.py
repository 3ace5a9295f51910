#!/usr/bin/env python3
"""Depot's image work side by side with its peers, in one run: medians (min–max) over ROUNDS and
the ratio Depot/peer of the same run. Writes benchmarks/RESULTS-images.md (-smoke for --smoke).

  benchmarks/images.py --depot PATH [--smoke] [--rounds N]

Run through scripts/bench (it installs wrk and libvips-tools, builds Depot and runs this after the
transfer benchmarks). Measures:
- variants/s: 1024 x 1024 JPEGs made into 112 x 112 JPEGs by one Depot job worker
  (`--job-workers 1`; the uploads are stored first, then a restarted server works through the
  queue, timed by the jobs' own history from first claim to last success) against libvips' own
  `vipsthumbnail` on the same files, one thread each (VIPS_CONCURRENCY=1, centre crop, Q80,
  metadata stripped), and Depot's RSS growth meanwhile;
- a cached rendition's GET (`/render/image/sign/…`, wrk -t2 -c32) against a plain signed GET of an
  object of exactly the rendition's bytes (like for like: same size, same server, same run);
- RSS growth while every render slot is busy with distinct transformations of a 16 MiB-pixel image.
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("PEERS", os.path.join(tempfile.gettempdir(), "depot-bench"))
os.environ.setdefault("PY", sys.executable)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import Results, Sampler, cpu_name, http, sh, wrk  # noqa: E402  (the transfer benchmarks' helpers)

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = "bench-secret-0123456789-0123456789-0123"
PORT = int(os.environ.get("DEPOT_IMAGES_PORT", "18094"))


def sample(pids):
    """An RSS sampler (run.py's), and a stop that gives it time to start first (a tiny run can be
    over before the sampler's Python is up, and a sampler stopped then prints nothing)."""
    sampler, started = Sampler(pids, 600), time.time()

    def stop():
        time.sleep(max(0.0, 0.5 - (time.time() - started)))
        return sampler.stop()[0]
    return stop


class Server:
    """`depot serve` on a data directory of its own, with image work on."""

    def __init__(self, binary, workdir, args, fresh=True):
        self.dir = os.path.join(workdir, "depot")
        if fresh:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.base = f"http://127.0.0.1:{PORT}"
        self.log = open(os.path.join(workdir, "depot.log"), "w" if fresh else "a")
        self.proc = subprocess.Popen(
            [binary, "serve", "--data-dir", self.dir, "--port", str(PORT), "--log-level", "warning", "--gc-interval", "0",
             "--rate-limit", "0", "--quota-bytes", "0", "--quota-objects", "0", "--max-open-uploads", "0",
             "--max-file-size", str(64 << 20)] + args,
            env={**os.environ, "DEPOT_JWT_SECRET": SECRET, "VIPS_CONCURRENCY": "1"}, stdout=self.log, stderr=self.log)
        for _ in range(300):
            try:
                http("GET", self.base + "/health", timeout=1)
                break
            except Exception:
                time.sleep(0.05)
        self.token = sh([binary, "token", "--sub", "bench", "--ttl", "86400"], env={"DEPOT_JWT_SECRET": SECRET})
        self.auth = {"Authorization": f"Bearer {self.token}"}

    def put(self, path, file, content_type="image/jpeg"):
        with open(file, "rb") as f:
            http("PUT", f"{self.base}/v1/assets/{path}", f.read(), {**self.auth, "Content-Type": content_type})

    def sign(self, path, transform=None):
        body = {"expiresIn": 86400, **({"transform": transform} if transform else {})}
        _, out = http("POST", f"{self.base}/storage/v1/object/sign/assets/{path}", json.dumps(body).encode(),
                      {**self.auth, "Content-Type": "application/json"})
        return self.base + "/storage/v1" + json.loads(out)["signedURL"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def make_sources(workdir, count, side):
    """`count` distinct photo-like JPEGs (blurred colour noise, Q90), side x side pixels (made once)."""
    out = []
    for i in range(count):
        path = os.path.join(workdir, f"src{side}_{i}.jpg")
        if not os.path.exists(path):
            bands = []
            for b in range(3):
                band = os.path.join(workdir, f"n{i}_{b}.v")
                sh(["vips", "gaussnoise", band, str(side), str(side), "--sigma", "60", "--seed", str(i * 3 + b + 1)])
                bands.append(band)
            sh(["vips", "bandjoin", " ".join(bands), os.path.join(workdir, "rgb.v")])
            sh(["vips", "gaussblur", os.path.join(workdir, "rgb.v"), os.path.join(workdir, "blur.v"), "2"])
            sh(["vips", "cast", os.path.join(workdir, "blur.v"), os.path.join(workdir, "cast.v"), "uchar"])
            sh(["vips", "copy", os.path.join(workdir, "cast.v"), path + "[Q=90]"])
            for f in bands + [os.path.join(workdir, n) for n in ("rgb.v", "blur.v", "cast.v")]:
                os.remove(f)
        out.append(path)
    return out


def variants_round(cfg, binary, workdir, sources, res):
    """Depot: one job worker makes a 112x112 variant of each upload; peer: vipsthumbnail on the same files.

    Like for like: the uploads are not measured. They go to a first server, stopped (gracefully:
    its job in flight is queued again) once they are stored; a second server on the same data
    then works through the queue with nothing else to do, and its jobs' history gives the rate."""
    args = ["--variants", "112x112", "--job-workers", "1"]
    first = Server(binary, workdir, args)
    try:
        # Eight at a time: stored long before one worker has made their variants.
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda item: first.put(f"bench/v/img{item[0]}.jpg", item[1]), enumerate(sources)))
    finally:
        first.stop()
    db = os.path.join(first.dir, "depot.sqlite")
    with sqlite3.connect(db) as c:
        left = c.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
    started = time.time()
    server = Server(binary, workdir, args, fresh=False)
    try:
        stop_sampler = sample([server.proc.pid])
        deadline = time.time() + 600
        while time.time() < deadline:
            with sqlite3.connect(db) as c:
                open_jobs = c.execute("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')").fetchone()[0]
            if open_jobs == 0:
                break
            time.sleep(0.1)
        growth = stop_sampler()
        with sqlite3.connect(db) as c:
            first_claim, last, done = c.execute(
                "SELECT min(at), max(at), sum(state = 'succeeded') FROM job_events WHERE at >= ? AND state IN ('running', 'succeeded')",
                (started,)).fetchone()
            total = c.execute("SELECT count(*) FROM jobs WHERE state = 'succeeded'").fetchone()[0]
        if total != len(sources) or not done or done < left or done < 2:
            raise RuntimeError(f"{total} of {len(sources)} variants made ({done} of {left} by the measured server); see {workdir}/depot.log")
        print(f"variants: {done} of {len(sources)} made by the measured server", file=sys.stderr)
        res.add("variants_per_s", "depot", done / (last - first_claim))
        res.add("variants_rss_mib", "depot", growth)
    finally:
        server.stop()
    out = os.path.join(workdir, "thumbs")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    t0 = time.time()
    sh(["vipsthumbnail", "--size", "112x112", "--smartcrop", "centre", "-o", os.path.join(out, "%s_tn.jpg[Q=80,strip]")] + sources,
       env={"VIPS_CONCURRENCY": "1"}, timeout=600)
    res.add("variants_per_s", "vipsthumbnail", len(sources) / (time.time() - t0))


def render_round(cfg, binary, workdir, sources, big, res):
    """A cached rendition's GET against a plain signed GET of the same bytes; RSS with every render slot busy."""
    server = Server(binary, workdir, ["--variants", "none", "--render-concurrency", "2"])
    try:
        server.put("bench/r/src.jpg", sources[0])
        render = server.sign("bench/r/src.jpg", {"width": 112, "height": 112, "format": "origin"})
        _, rendition = http("GET", render)
        same = os.path.join(workdir, "same.jpg")
        with open(same, "wb") as f:
            f.write(rendition)
        server.put("bench/r/same.jpg", same)
        plain = server.sign("bench/r/same.jpg")
        _, check = http("GET", plain)
        assert len(check) == len(rendition)
        rps, p99 = wrk(render, cfg.duration)
        res.add("rendition_get_rps", "depot", rps)
        res.add("rendition_get_p99", "depot", p99)
        rps, p99 = wrk(plain, cfg.duration)
        res.add("rendition_get_rps", "signed GET", rps)
        res.add("rendition_get_p99", "signed GET", p99)

        # Every render slot busy (and the queue behind them full) with distinct transformations.
        server.put("bench/r/big.jpg", big)
        stop_sampler = sample([server.proc.pid])
        widths = list(range(100, 100 + cfg.renders))
        urls = [f"{server.base}/storage/v1/render/image/authenticated/assets/bench/r/big.jpg?width={w}&format=jpeg" for w in widths]
        statuses = []

        def fetch(chunk):
            for u in chunk:
                try:
                    statuses.append(http("GET", u, headers=server.auth, timeout=300)[0])
                except Exception as e:  # a 503 (too many waiting) counts as an answer
                    statuses.append(getattr(e, "code", 0))
        threads = [threading.Thread(target=fetch, args=(urls[i::16],)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        growth = stop_sampler()
        if statuses.count(200) == 0 or any(s not in (200, 503) for s in statuses):
            raise RuntimeError(f"renders answered {sorted(set(statuses))}")
        res.add("render_busy_rss_mib", "depot", growth)
    finally:
        server.stop()


ROWS = [
    # metric, label, peer, target, higher is better, decimals, target text
    ("variants_per_s", "variants/s, SIDE² JPEG → 112² JPEG, one core", "vipsthumbnail", 0.8, True, 1, "≥ 0.8× vipsthumbnail"),
    ("rendition_get_rps", "cached rendition GET, req/s", "signed GET", 0.8, True, 0, "≥ 0.8× signed GET"),
    ("rendition_get_p99", "cached rendition GET, p99 ms", "signed GET", None, False, 2, ""),
    ("variants_rss_mib", "RSS growth while variants are made, MiB", None, 256, False, 0, "≤ 256 MiB"),
    ("render_busy_rss_mib", "RSS growth with every render slot busy, MiB", None, 256, False, 0, "≤ 256 MiB"),
]


def report(cfg, res):
    lines = [
        "# Image benchmark results",
        "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {cpu_name()} ×{os.cpu_count()}. "
        f"Depot {sh('git -C ' + os.path.dirname(HERE) + ' rev-parse --short HEAD', check=False)} ({cfg.build} build), "
        f"libvips {sh('vips --version', check=False)}.",
        "",
        f"Mode: {'SMOKE (few images, 1 s per measurement: proves the script works, the figures mean nothing)' if cfg.smoke else 'full'}; "
        f"{cfg.rounds} round(s); {cfg.count} source images of {cfg.side} × {cfg.side}; {cfg.renders} distinct renders of a "
        f"{cfg.big_side} × {cfg.big_side} image for the busy pool. Each cell: median (min–max) over rounds; ratios of the medians "
        "of the same run. Command: `scripts/bench`" + (" --smoke" if cfg.smoke else "") + ".",
        "",
        "| measure | Depot | peer | Depot / peer | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for metric, label, peer, target, higher, nd, text in ROWS:
        label = label.replace("SIDE", str(cfg.side))
        d = res.med(metric, "depot")
        ratio, met = "", ""
        if peer and d is not None and res.med(metric, peer):
            r = d / res.med(metric, peer)
            ratio = f"{r:.2f}× {peer}"
            if target is not None:
                met = "yes" if (r >= target if higher else r <= target) else "**no**"
        elif target is not None and d is not None:
            met = "yes" if (d >= target if higher else d <= target) else "**no**"
        lines.append(f"| {label} | {res.cell(metric, 'depot', nd)} | {res.cell(metric, peer, nd) if peer else ''} | {ratio} | {text} | {met} |")
    out = os.path.join(HERE, "RESULTS-images" + ("-smoke" if cfg.smoke else "") + ".md")
    open(out, "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwrote {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--depot", required=True)
    ap.add_argument("--build", default="release")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--rounds", type=int)
    cfg = ap.parse_args()
    cfg.rounds = cfg.rounds or (1 if cfg.smoke else 3)
    cfg.count, cfg.side = (6, 256) if cfg.smoke else (60, 1024)
    cfg.big_side = 512 if cfg.smoke else 4096
    cfg.renders = 8 if cfg.smoke else 48
    cfg.duration = "1s" if cfg.smoke else "10s"
    if not shutil.which("vipsthumbnail") or not shutil.which("wrk"):
        sys.exit("images.py needs vipsthumbnail (libvips-tools) and wrk; scripts/bench installs them")
    workdir = os.path.join(os.environ["PEERS"], "images")
    os.makedirs(workdir, exist_ok=True)
    sources = make_sources(workdir, cfg.count, cfg.side)
    big = make_sources(workdir, 1, cfg.big_side)[0]
    res = Results()
    for r in range(cfg.rounds):
        print(f"--- images round {r + 1}/{cfg.rounds}", file=sys.stderr)
        variants_round(cfg, cfg.depot, workdir, sources, res)
        render_round(cfg, cfg.depot, workdir, sources, big, res)
    report(cfg, res)


if __name__ == "__main__":
    main()
