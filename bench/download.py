"""Download-path throughput and latency, side by side with two baselines in one run.

    .venv/bin/python bench/download.py [--duration 5] [--rounds 2] [--storage-requests 300]

Starts what it needs (a memcached, moto's S3 server over HTTP, a migrated SQLite
database), then serves each scenario in turn in a fresh waitress process with the
same thread count and loads it with ``wrk -t2 -c16 -d5s --latency``. Prints one
table with every row and its ratio to baseline (b), the server's RSS after each
row, and a sequential latency table for uncached (``?_refresh``) storage lookups.
Everything runs on loopback; it cleans up after itself.
"""

import argparse
import contextlib
import http.client
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import (  # noqa: E402
    migrate,
    BIN,
    PYTHON,
    ROOT,
    fmt_ms,
    free_port,
    percentile,
    rss_kib,
    stop_process,
    table,
    wait_for_port,
)

DEBUG_ID = "44E4EC8C2F41492B9369D6B9A059577C2"
BUCKET = "tecken-bench"
PREFIX = "pfx"
FOUND_PATH = f"/xul.pdb/{DEBUG_ID}/xul.sym"
MISSING_PATH = f"/xul.pdb/{DEBUG_ID}/nope.sym"
EXT_PATH = f"/xul.pdb/{DEBUG_ID}/xul.exe"
SESSION_SECRET = "bench-secret-0123456789abcdefghijklmnopq"  # 40 characters
assert len(SESSION_SECRET) == 40


def log(message):
    print(message, file=sys.stderr, flush=True)


# -- services -----------------------------------------------------------------------------------
class Services:
    """memcached, moto's S3 server, a migrated SQLite database and a local symbols dir."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="tecken-bench-")
        self.memcached = None
        self.memcached_port = None
        self.moto = None
        self.moto_port = None
        self.db_url = f"sqlite:///{self.tmp}/tecken.sqlite3"
        self.symbols_dir = os.path.join(self.tmp, "symbols")

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _start(self):
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

        binary = shutil.which("memcached")
        if not binary:
            sys.exit("bench/download.py: memcached is not installed (make bench installs it)")
        if not shutil.which("wrk"):
            sys.exit("bench/download.py: wrk is not installed (make bench installs it)")
        self.memcached_port = free_port()
        args = [binary, "-l", "127.0.0.1", "-p", str(self.memcached_port), "-U", "0"]
        if os.geteuid() == 0:
            args += ["-u", "root"]
        self.memcached = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for_port(self.memcached_port, proc=self.memcached):
            raise RuntimeError("memcached did not start")

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log

        self.moto_port = free_port()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
        self.moto.start()
        if not wait_for_port(self.moto_port):
            raise RuntimeError("moto server did not start")
        client = self.s3_client()
        client.create_bucket(Bucket=BUCKET)
        client.put_object(
            Bucket=BUCKET, Key=f"{PREFIX}/v1{FOUND_PATH}", Body=b"MODULE windows x86_64 bench xul.pdb\n"
        )

        key_path = os.path.join(self.symbols_dir, "v1" + FOUND_PATH)
        os.makedirs(os.path.dirname(key_path))
        with open(key_path, "wb") as f:
            f.write(b"MODULE windows x86_64 bench xul.pdb\n")
        os.makedirs(os.path.join(self.symbols_dir, "try"))

        migrate(self.db_url)

        # pserve with production.ini's app and server, but 4 threads like the baselines.
        self.ini = os.path.join(self.tmp, "bench.ini")
        prod = os.path.join(ROOT, "production.ini")
        with open(self.ini, "w") as f:
            f.write(
                f"[app:main]\nuse = config:{prod}#main\n\n"
                f"[server:main]\nuse = config:{prod}#main\nhost = 127.0.0.1\nthreads = {THREADS}\n"
            )

    @property
    def s3_url(self):
        return f"http://127.0.0.1:{self.moto_port}/{BUCKET}/{PREFIX}"

    def s3_client(self):
        import boto3

        return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.moto_port}", region_name="us-east-1")

    def close(self):
        stop_process(self.memcached)
        if self.moto is not None:
            with contextlib.suppress(Exception):
                self.moto.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


THREADS = 4


# -- servers -------------------------------------------------------------------------------------
class Server:
    def __init__(self, kind, services, env=None):
        self.kind = kind
        self.port = free_port()
        self.log_path = os.path.join(services.tmp, f"server-{kind}-{self.port}.log")
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("TECKEN_", "DJANGO_"))}
        if kind in ("bare", "pyramid"):
            argv = [
                PYTHON,
                os.path.join(ROOT, "bench", "baseline_apps.py"),
                kind,
                str(self.port),
                str(THREADS),
            ]
        else:
            argv = [os.path.join(BIN, "pserve"), services.ini, f"http_port={self.port}"]
            clean.update(
                TECKEN_SESSION_SECRET=SESSION_SECRET,
                TECKEN_DATABASE_URL=services.db_url,
                TECKEN_SYMBOL_URLS=services.s3_url,
                TECKEN_MEMCACHED_SERVERS=f"127.0.0.1:{services.memcached_port}",
            )
            clean.update(env or {})
        self.argv, self.env = argv, clean
        self.proc = None

    def __enter__(self):
        self.logfile = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdout=self.logfile, stderr=subprocess.STDOUT
        )
        if not wait_for_port(self.port, proc=self.proc):
            self.__exit__()
            with open(self.log_path) as f:
                tail = f.read()[-2000:]
            raise RuntimeError(f"server {self.kind} did not start:\n{tail}")
        return self

    def __exit__(self, *exc):
        stop_process(self.proc)
        self.logfile.close()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def request(self, method, path, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            r.read()
            return r.status, dict(r.getheaders())
        finally:
            conn.close()


# -- wrk -------------------------------------------------------------------------------------------
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    return float(m[1]) * _UNITS[m[2]] if m else float("nan")


def run_wrk(url, duration, connections, method="GET", tmp=None):
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    if method != "GET":
        script = os.path.join(tmp, f"{method.lower()}.lua")
        with open(script, "w") as f:
            f.write(f'wrk.method = "{method}"\n')
        argv += ["-s", script]
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=duration + 60)
    text = out.stdout
    result = {"raw": text}
    m = re.search(r"Requests/sec:\s+([0-9.]+)", text)
    result["rps"] = float(m[1]) if m else float("nan")
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        result[f"p{pct}"] = _seconds(m[1]) if m else float("nan")
    m = re.search(r"(\d+) requests in", text)
    result["requests"] = int(m[1]) if m else 0
    m = re.search(r"Socket errors: (.*)", text)
    result["socket_errors"] = m[1].strip() if m else ""
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    result["non_2xx_3xx"] = int(m[1]) if m else 0
    if out.returncode != 0 or result["requests"] == 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or text}")
    return result


# -- scenarios -------------------------------------------------------------------------------------
class Scenario:
    def __init__(
        self, key, label, kind, path, status, lookup=None, method="GET", env=None, location_has=None
    ):
        self.key, self.label, self.kind, self.path = key, label, kind, path
        self.status, self.lookup, self.method, self.env = status, lookup, method, env or {}
        self.location_has = location_has


def scenarios(services):
    inproc = {"TECKEN_MEMCACHED_SERVERS": ""}
    local = {"TECKEN_MEMCACHED_SERVERS": "", "TECKEN_SYMBOL_URLS": f"file://{services.symbols_dir}"}
    return [
        Scenario("a", "baseline: bare WSGI callable, fixed 302", "bare", FOUND_PATH, 302),
        Scenario("b", "baseline: minimal Pyramid traversal, fixed 302", "pyramid", FOUND_PATH, 302),
        Scenario(
            "c",
            "tecken: S3 private, memcached hit -> 302",
            "tecken",
            FOUND_PATH,
            302,
            "found",
            location_has="Signature",
        ),
        Scenario(
            "c0",
            "tecken: as (c), access log off (its cost = c0 - c)",
            "tecken",
            FOUND_PATH,
            302,
            "found",
            env={"TECKEN_ACCESS_LOG": "false"},
            location_has="Signature",
        ),
        Scenario("d", "tecken: S3 private, memcached hit -> 404", "tecken", MISSING_PATH, 404, "not-found"),
        Scenario(
            "e", "tecken: extension not allowed -> 404", "tecken", EXT_PATH, 404, "extension-not-allowed"
        ),
        Scenario(
            "f",
            "tecken: S3 private, in-process cache hit -> 302",
            "tecken",
            FOUND_PATH,
            302,
            "found",
            env=inproc,
            location_has="Signature",
        ),
        Scenario(
            "f2",
            "tecken: local directory (never cached) -> 302",
            "tecken",
            FOUND_PATH,
            302,
            "found",
            env=local,
            location_has="/__files__/0/",
        ),
        Scenario(
            "g",
            "tecken: S3 private, memcached hit, HEAD -> 200",
            "tecken",
            FOUND_PATH,
            200,
            "found",
            method="HEAD",
        ),
    ]


def wait_rules_loaded(server, timeout=10.0):
    """The rules thread loads from the database right after start-up (SPEC §4)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            status, headers = server.request("GET", "/__heartbeat__")
        except OSError:
            status = None
        if status in (200, 500):
            return
        time.sleep(0.1)


def run_scenario(sc, services, duration, connections):
    with Server(sc.kind, services, sc.env) as server:
        if sc.kind == "tecken":
            wait_rules_loaded(server)
        # The first request warms the existence cache (and the presigned-URL reuse).
        status, headers = server.request(sc.method, sc.path)
        if status != sc.status:
            raise RuntimeError(
                f"({sc.key}) {sc.method} {sc.path}: expected {sc.status}, got {status} {headers}"
            )
        if sc.lookup and headers.get("X-Symbol-Lookup") != sc.lookup:
            raise RuntimeError(f"({sc.key}) expected X-Symbol-Lookup {sc.lookup}, got {headers}")
        if sc.location_has and sc.location_has not in headers.get("Location", ""):
            raise RuntimeError(f"({sc.key}) unexpected Location {headers.get('Location')}")
        if sc.kind == "tecken" and sc.lookup in ("found", "not-found"):
            # A repeat must be answered from the cache (Debug-Time only, no storage call).
            status, headers = server.request(sc.method, sc.path, {"Debug": "true"})
            if status != sc.status:
                raise RuntimeError(f"({sc.key}) repeat: expected {sc.status}, got {status}")
        run_wrk(server.base + sc.path, 1, connections, sc.method, services.tmp)  # warm-up
        result = run_wrk(server.base + sc.path, duration, connections, sc.method, services.tmp)
        result["rss"], result["hwm"] = rss_kib(server.proc.pid)
        expected_non = result["requests"] if not 200 <= sc.status < 400 else 0
        # wrk counts 4xx as "Non-2xx or 3xx"; anything else unexpected is an error.
        result["unexpected"] = abs(result["non_2xx_3xx"] - expected_non) > 0.01 * result["requests"]
    return result


# -- sequential storage-lookup latency ------------------------------------------------------------
def sequential(server, method, path, n, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    times, debug_times, statuses = [], [], {}
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            r.read()
            times.append(time.perf_counter() - t0)
            statuses[r.status] = statuses.get(r.status, 0) + 1
            dt = r.getheader("Debug-Time")
            if dt:
                debug_times.append(float(dt))
    finally:
        conn.close()
    return times, debug_times, statuses


def storage_latency(services, n):
    rows = []
    with Server("tecken", services) as server:
        wait_rules_loaded(server)
        debug = {"Debug": "true"}
        server.request("GET", FOUND_PATH)
        cases = [
            ("GET found, memcached hit (no _refresh)", "GET", FOUND_PATH),
            ("GET found, ?_refresh (S3 head_object + presign reuse)", "GET", FOUND_PATH + "?_refresh=1"),
            ("HEAD missing, ?_refresh (S3 head_object -> 404)", "HEAD", MISSING_PATH + "?_refresh=1"),
        ]
        for label, method, path in cases:
            sequential(server, method, path, 20, debug)  # warm-up
            times, dts, statuses = sequential(server, method, path, n, debug)
            rows.append((label, n, statuses, times, dts))
    # The floor: boto3 head_object against moto from this process, no app.
    client = services.s3_client()
    key = f"{PREFIX}/v1{FOUND_PATH}"
    for _ in range(20):
        client.head_object(Bucket=BUCKET, Key=key)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.head_object(Bucket=BUCKET, Key=key)
        times.append(time.perf_counter() - t0)
    rows.append(("floor: boto3 head_object -> moto, no app", n, {200: n}, times, []))
    return rows


# -- main --------------------------------------------------------------------------------------------
def main():
    global THREADS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--threads", type=int, default=4, help="waitress threads, every server (default 4)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="repeat every row this many times, interleaved; each row's best round is shown (default 2)",
    )
    parser.add_argument(
        "--storage-requests",
        type=int,
        default=300,
        help="sequential requests per uncached-lookup row (default 300)",
    )
    parser.add_argument("--only", default="", help="comma-separated scenario keys (e.g. b,c); default all")
    args = parser.parse_args()
    THREADS = args.threads

    started = time.monotonic()
    with Services() as services:
        chosen = scenarios(services)
        if args.only:
            keys = set(args.only.split(","))
            chosen = [sc for sc in chosen if sc.key in keys or sc.key == "b"]
        results = {}
        for round_no in range(args.rounds):
            for sc in chosen:
                log(f"round {round_no + 1}/{args.rounds}: ({sc.key}) {sc.label}")
                r = run_scenario(sc, services, args.duration, args.connections)
                best = results.get(sc.key)
                if best is None or r["rps"] > best["rps"]:
                    results[sc.key] = r
        log(f"sequential uncached lookups ({args.storage_requests} each)")
        storage_rows = storage_latency(services, args.storage_requests)

    base = results["b"]
    rows = []
    for sc in chosen:
        r = results[sc.key]
        rows.append(
            (
                f"({sc.key}) {sc.label}",
                f"{r['rps']:,.0f}",
                f"{r['rps'] / base['rps']:.2f}x",
                fmt_ms(r["p50"]),
                fmt_ms(r["p99"]),
                f"{r['p99'] / base['p99']:.2f}x",
                f"{r['rss'] / 1024:.1f}" if r["rss"] else "-",
                "UNEXPECTED STATUSES" if r["unexpected"] else (r["socket_errors"] or "ok"),
            )
        )
    print()
    print(
        f"Download path under load: wrk -t2 -c{args.connections} -d{args.duration}s --latency, "
        f"waitress threads={args.threads}, one fresh server process per row"
        + (f", best of {args.rounds} interleaved rounds" if args.rounds > 1 else "")
    )
    print(
        "Ratios are to baseline (b), measured in this same run; "
        "req/s ratio > 1 is faster, p99 ratio < 1 is faster."
    )
    print()
    print(
        table(
            ["scenario", "req/s", "vs (b)", "p50", "p99", "p99 vs (b)", "RSS MiB", "errors"],
            rows,
            ["<", ">", ">", ">", ">", ">", ">", "<"],
        )
    )
    c = results.get("c")
    if c and c["rss"] and base["rss"]:
        print()
        print(
            f"Server RSS after its run (VmRSS): (c) tecken memcached 302 = {c['rss'] / 1024:.1f} MiB "
            f"(peak {c['hwm'] / 1024:.1f}), (b) Pyramid baseline = {base['rss'] / 1024:.1f} MiB "
            f"(peak {base['hwm'] / 1024:.1f}); difference {(c['rss'] - base['rss']) / 1024:+.1f} MiB"
        )

    print()
    print("Sequential single-client latency (keep-alive), Debug-Time = the server's own step-4 time:")
    print()
    srows = []
    for label, n, statuses, times, dts in storage_rows:
        srows.append(
            (
                label,
                n,
                ",".join(f"{k}x{v}" for k, v in sorted(statuses.items())),
                fmt_ms(percentile(times, 50)),
                fmt_ms(percentile(times, 95)),
                fmt_ms(percentile(times, 99)),
                fmt_ms(percentile(dts, 50)) if dts else "-",
                fmt_ms(percentile(dts, 95)) if dts else "-",
            )
        )
    print(table(["request", "n", "statuses", "p50", "p95", "p99", "Debug-Time p50", "Debug-Time p95"], srows))
    print()
    print(f"total bench time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
