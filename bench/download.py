"""Download-path throughput and latency, side by side with two baselines in one run.

    .venv/bin/python bench/download.py [--duration 5] [--rounds 2] [--storage-requests 300]

Starts what it needs (a memcached, moto's S3 server over HTTP, a migrated SQLite
database), then serves each scenario in turn in a fresh waitress process with the
same thread count and loads it with ``wrk -t2 -c16 -d5s --latency``. Prints one
table with every row, its ratio to the floor (b) and issue 7's target for the row,
met or not; an RSS check of one process over 200,000 cached hits; two processes
behind haproxy (deploy/haproxy.cfg) against one; and a sequential latency table
for uncached (``?_refresh``) storage lookups. Everything runs on loopback; it
cleans up after itself.
"""

import argparse
import contextlib
import http.client
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import (  # noqa: E402
    BIN,
    PYTHON,
    ROOT,
    ServiceStack,
    fmt_ms,
    free_port,
    migrate,
    percentile,
    rss_kib,
    set_test_aws_credentials,
    start_memcached,
    start_moto,
    stop_process,
    table,
    wait_for_port,
)
from faults import HAPROXY_CFG, Proc, clean_env, memcached_stats  # noqa: E402

DEBUG_ID = "44E4EC8C2F41492B9369D6B9A059577C2"
BUCKET = "tecken-bench"
PREFIX = "pfx"
FOUND_PATH = f"/xul.pdb/{DEBUG_ID}/xul.sym"
MISSING_PATH = f"/xul.pdb/{DEBUG_ID}/nope.sym"
EXT_PATH = f"/xul.pdb/{DEBUG_ID}/xul.exe"
# Only in the try location (the first location's bucket, ``try/`` before its prefix: SPEC §3).
TRY_PATH = f"/try/tryonly.pdb/{DEBUG_ID}/tryonly.sym"
TRY_KEY = f"try/{PREFIX}/v1/tryonly.pdb/{DEBUG_ID}/tryonly.sym"
FIRST_MISS_LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "first_miss.lua")

# Issue 7's targets, as ratios to the floor (b) measured in the same run. They live
# here, never as timed assertions in the tests.
RATIO_TARGETS = {"c": 0.75, "g": 0.75, "e": 0.85, "d": 0.70}
HIT_P99_MAX = 2.0  # (c)'s p99 at most twice the floor's
RSS_MAX_BYTES = 120_000_000  # one process after 200,000 cached hits: < 120 MB ...
RSS_FLAT_KIB = 2048  # ... and flat: at most 2 MiB more after 200,000 than after 100,000
SESSION_SECRET = "bench-secret-0123456789abcdefghijklmnopq"  # 40 characters
assert len(SESSION_SECRET) == 40


def log(message):
    print(message, file=sys.stderr, flush=True)


# -- services -----------------------------------------------------------------------------------
class Services(ServiceStack):
    """memcached, moto's S3 server, a migrated SQLite database and a local symbols dir."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="tecken-bench-")
        self.memcached = None
        self.memcached_port = None
        self.moto = None
        self.moto_port = None
        self.db_url = f"sqlite:///{self.tmp}/tecken.sqlite3"
        self.symbols_dir = os.path.join(self.tmp, "symbols")

    def _start(self):
        set_test_aws_credentials()
        if not shutil.which("memcached"):
            sys.exit("bench/download.py: memcached is not installed (make bench installs it)")
        if not shutil.which("wrk"):
            sys.exit("bench/download.py: wrk is not installed (make bench installs it)")
        if not shutil.which("haproxy") and not os.path.exists("/usr/sbin/haproxy"):
            sys.exit("bench/download.py: haproxy is not installed (make bench installs it)")
        self.memcached, self.memcached_port = start_memcached()
        self.moto, self.moto_port = start_moto()
        client = self.s3_client()
        client.create_bucket(Bucket=BUCKET)
        client.put_object(
            Bucket=BUCKET, Key=f"{PREFIX}/v1{FOUND_PATH}", Body=b"MODULE windows x86_64 bench xul.pdb\n"
        )
        client.put_object(Bucket=BUCKET, Key=TRY_KEY, Body=b"MODULE windows x86_64 bench tryonly.pdb\n")

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
def http_request(port, method, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        r.read()
        return r.status, r.headers  # case-insensitive: haproxy sends lower-case names
    finally:
        conn.close()


def cpu_seconds(pid, children=False):
    """utime + stime of a process in seconds (/proc/PID/stat), its live children's too if asked.

    haproxy -W is a master and a worker: the worker, its child, does the work.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if children:
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    total += sum(cpu_seconds(int(child), True) for child in f.read().split())
    return total


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
        if self.kind == "tecken":
            wait_rules_loaded(self)
        return self

    def __exit__(self, *exc):
        stop_process(self.proc)
        self.logfile.close()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def app_pids(self):
        return [self.proc.pid]

    def request(self, method, path, headers=None):
        return http_request(self.port, method, path, headers)


class Balanced:
    """``processes`` tecken servers behind haproxy running deploy/haproxy.cfg unchanged.

    haproxy's environment is the one bench/faults.py gives it. The file requires
    TECKEN_APP1 and TECKEN_APP2: with one process both name it, so that the one- and
    two-process rows pay the same load balancer.
    """

    def __init__(self, services, processes, env=None):
        self.services, self.processes, self.env = services, processes, env
        self.servers = []
        self.haproxy = None
        self.port = free_port()

    def __enter__(self):
        try:
            for _ in range(self.processes):
                server = Server("tecken", self.services, self.env)
                server.__enter__()
                self.servers.append(server)
            apps = [f"127.0.0.1:{s.port}" for s in self.servers]
            if len(apps) == 1:
                apps *= 2
            env = clean_env(
                TECKEN_LB_ADDRESS="127.0.0.1",
                TECKEN_LB_PORT=self.port,
                TECKEN_LB_LOG="stdout",
                TECKEN_LB_STATS_SOCKET=os.path.join(self.services.tmp, f"haproxy-{self.port}.sock"),
                TECKEN_LB_UNPRIVILEGED=1,
                **{f"TECKEN_APP{n}": address for n, address in enumerate(apps, 1)},
            )
            haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
            argv = [haproxy, "-W", "-db", "-f", HAPROXY_CFG]
            self.haproxy = Proc(f"haproxy-{self.port}", argv, env, self.services.tmp, self.port).start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.haproxy is not None:
            self.haproxy.stop()
        for server in reversed(self.servers):
            server.__exit__()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def app_pids(self):
        return [s.proc.pid for s in self.servers]

    def request(self, method, path, headers=None):
        return http_request(self.port, method, path, headers)


# -- wrk -------------------------------------------------------------------------------------------
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    return float(m[1]) * _UNITS[m[2]] if m else float("nan")


def run_wrk(url, duration, connections, method="GET", tmp=None, script=None, script_args=()):
    """One wrk run; ``script`` (a Lua file) builds the requests itself when given."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script:
        argv += ["-s", script]
    elif method != "GET":
        script = os.path.join(tmp, f"{method.lower()}.lua")
        with open(script, "w") as f:
            f.write(f'wrk.method = "{method}"\n')
        argv += ["-s", script]
    argv.append(url)
    if script_args:
        argv += ["--", *script_args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = out.stdout
    result = {"raw": text}
    result["wrk_cpu"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
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
        self,
        key,
        label,
        kind,
        path,
        status,
        lookup=None,
        method="GET",
        env=None,
        location_has=None,
        script=None,
        processes=0,
    ):
        self.key, self.label, self.kind, self.path = key, label, kind, path
        self.status, self.lookup, self.method, self.env = status, lookup, method, env or {}
        self.location_has = location_has
        self.script = script  # a wrk Lua script that builds every request (first-time misses)
        self.processes = processes  # > 0: that many tecken processes behind haproxy


def scenarios(services):
    inproc = {"TECKEN_MEMCACHED_SERVERS": ""}
    local = {"TECKEN_MEMCACHED_SERVERS": "", "TECKEN_SYMBOL_URLS": f"file://{services.symbols_dir}"}
    return [
        Scenario("a", "baseline: bare WSGI callable, fixed 302", "bare", FOUND_PATH, 302),
        Scenario("b", "floor: minimal Pyramid traversal, fixed 302", "pyramid", FOUND_PATH, 302),
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
        Scenario(
            "g",
            "tecken: S3 private, memcached hit, HEAD -> 200",
            "tecken",
            FOUND_PATH,
            200,
            "found",
            method="HEAD",
        ),
        Scenario(
            "h",
            "tecken: /try/ hit found only in the try location -> 302",
            "tecken",
            TRY_PATH,
            302,
            "found",
            location_has=f"/{BUCKET}/try/{PREFIX}/v1/",
        ),
        Scenario(
            "d",
            "tecken: cached miss -> 404 (guard already set)",
            "tecken",
            MISSING_PATH,
            404,
            "not-found",
        ),
        Scenario(
            "e", "tecken: extension not allowed -> 404", "tecken", EXT_PATH, 404, "extension-not-allowed"
        ),
        Scenario(
            "i",
            "tecken: first-time misses (new name, code_file/code_id) -> 404",
            "tecken",
            None,
            404,
            "not-found",
            script=FIRST_MISS_LUA,
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
            "j1",
            "haproxy -> 1 tecken process, memcached hit -> 302",
            "tecken",
            FOUND_PATH,
            302,
            "found",
            location_has="Signature",
            processes=1,
        ),
        Scenario(
            "j2",
            "haproxy -> 2 tecken processes, memcached hit -> 302",
            "tecken",
            FOUND_PATH,
            302,
            "found",
            location_has="Signature",
            processes=2,
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


def first_miss_path(name):
    return f"/{name}.pdb/{DEBUG_ID}/{name}.sym?code_file={name}.dll&code_id=5F3C0A1B"


def check_first_request(sc, target, services):
    """Check one request's answer; it also warms the cache, the presigned URL and the guard."""
    path = sc.path if sc.script is None else first_miss_path(f"check-{uuid.uuid4().hex[:12]}")
    status, headers = target.request(sc.method, path)
    if status != sc.status:
        got = f"{status} {dict(headers)}"
        raise RuntimeError(f"({sc.key}) {sc.method} {path}: expected {sc.status}, got {got}")
    if sc.lookup and headers.get("X-Symbol-Lookup") != sc.lookup:
        raise RuntimeError(f"({sc.key}) expected X-Symbol-Lookup {sc.lookup}, got {dict(headers)}")
    if sc.location_has and sc.location_has not in headers.get("Location", ""):
        raise RuntimeError(f"({sc.key}) unexpected Location {headers.get('Location')}")
    if sc.kind == "tecken" and sc.script is None and sc.lookup in ("found", "not-found"):
        # A repeat must be answered from the cache. For the cached miss, the guard the
        # first request claimed (or lost to an earlier process) must be held: the repeat
        # stores nothing in memcached.
        before = memcached_stats(services.memcached_port) or {}
        status, headers = target.request(sc.method, path, {"Debug": "true"})
        after = memcached_stats(services.memcached_port) or {}
        if status != sc.status:
            raise RuntimeError(f"({sc.key}) repeat: expected {sc.status}, got {status}")
        if sc.lookup == "not-found" and not sc.env and after.get("cmd_set", 0) != before.get("cmd_set", 0):
            log(f"({sc.key}) WARNING: the repeated miss stored in memcached (guard not held?)")


def run_scenario(sc, services, duration, connections):
    if sc.processes:
        target_cm = Balanced(services, sc.processes, sc.env)
    else:
        target_cm = Server(sc.kind, services, sc.env)
    with target_cm as target:
        check_first_request(sc, target, services)
        url = target.base + (sc.path or "/")

        def load(seconds):
            script_args = (uuid.uuid4().hex[:10], DEBUG_ID) if sc.script else ()
            return run_wrk(url, seconds, connections, sc.method, services.tmp, sc.script, script_args)

        load(1)  # warm-up
        # CPU seconds of each app process, haproxy (master and worker), and this process
        # (moto's S3 server runs in it) during the measured run; wrk's comes from run_wrk.
        pids = target.app_pids + ([target.haproxy.proc.pid] if sc.processes else [])
        pids.append(services.memcached.pid)
        cpu_before = [cpu_seconds(pid, True) for pid in pids]
        self_before = time.process_time()
        mc_before = memcached_stats(services.memcached_port) or {}
        result = load(duration)
        mc_after = memcached_stats(services.memcached_port) or {}
        result["cpu"] = [cpu_seconds(pid, True) - b for pid, b in zip(pids, cpu_before, strict=True)]
        result["self_cpu"] = time.process_time() - self_before
        n = result["requests"]
        # What one request cost the server process(es): their CPU time over the run's requests.
        result["server_cpu_us"] = sum(result["cpu"][: len(target.app_pids)]) / max(n, 1) * 1e6
        for stat in ("cmd_get", "cmd_set"):
            result[stat] = (mc_after.get(stat, 0) - mc_before.get(stat, 0)) / n
        rss = [rss_kib(pid) for pid in target.app_pids]
        result["rss_all"] = [r for r, _ in rss]
        result["rss"], result["hwm"] = max(rss)
        expected_non = n if not 200 <= sc.status < 400 else 0
        # wrk counts 4xx as "Non-2xx or 3xx"; anything else unexpected is an error.
        result["unexpected"] = abs(result["non_2xx_3xx"] - expected_non) > 0.01 * n
        # A cached miss whose guard is held stores nothing in memcached.
        result["guard_not_held"] = sc.key == "d" and result["cmd_set"] > 0.01
    return result


# -- RSS of one process over many cached hits ----------------------------------------------------
def rss_check(services, connections, checkpoints):
    """VmRSS of one process after each checkpoint's number of cached-hit requests.

    wrk has no fixed request count: it runs for whole seconds, each run sized from the
    rate so far, until the total reaches the next checkpoint (overshooting by up to a
    second's worth of requests; the actual totals are reported).
    """
    out = []
    with Server("tecken", services) as server:
        status, _headers = server.request("GET", FOUND_PATH)
        if status != 302:
            raise RuntimeError(f"(rss) expected 302, got {status}")
        total, rate = 1, None
        url = server.base + FOUND_PATH
        started = time.monotonic()
        for checkpoint in checkpoints:
            while total < checkpoint:
                remaining = checkpoint - total
                seconds = 2 if rate is None else max(1, min(20, math.ceil(remaining / rate)))
                r = run_wrk(url, seconds, connections)
                if r["non_2xx_3xx"] or r["socket_errors"]:
                    raise RuntimeError(f"(rss) wrk: {r['non_2xx_3xx']} non-2xx/3xx, {r['socket_errors']}")
                total += r["requests"]
                rate = r["requests"] / seconds
            rss, hwm = rss_kib(server.proc.pid)
            out.append((checkpoint, total, rss, hwm, time.monotonic() - started))
            log(f"(rss) {total:,} requests: VmRSS {rss / 1024:.1f} MiB")
    return out


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
def verdict(ok):
    return "met" if ok else "NOT met"


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
    parser.add_argument(
        "--rss-requests",
        type=int,
        default=100_000,
        help="the RSS check reads VmRSS after this many cached hits and after twice as many (default 100000)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated row keys (e.g. b,c,d), 'rss' for the RSS check, 'seq' for the sequential "
        "table; default all (the floor (b) is always included)",
    )
    args = parser.parse_args()
    THREADS = args.threads

    started = time.monotonic()
    keys = set(args.only.split(",")) if args.only else None
    with Services() as services:
        chosen = scenarios(services)
        if keys:
            chosen = [sc for sc in chosen if sc.key in keys or sc.key == "b"]
        results = {}
        for round_no in range(args.rounds):
            for sc in chosen:
                log(f"round {round_no + 1}/{args.rounds}: ({sc.key}) {sc.label}")
                r = run_scenario(sc, services, args.duration, args.connections)
                best = results.get(sc.key)
                # Throughput, RSS and memcached figures from the round with the best req/s;
                # the latencies from the round with the lowest p99 (a stall elsewhere on the
                # machine during one round must not decide a ratio).
                if best is None or r["rps"] > best["rps"]:
                    if best is not None and best["p99"] < r["p99"]:
                        r["p50"], r["p99"] = best["p50"], best["p99"]
                    results[sc.key] = r
                elif r["p99"] < best["p99"]:
                    best["p50"], best["p99"] = r["p50"], r["p99"]
        rss_rows = None
        if keys is None or "rss" in keys:
            log(f"RSS check: one process, {2 * args.rss_requests:,} cached hits")
            rss_rows = rss_check(services, args.connections, (args.rss_requests, 2 * args.rss_requests))
        storage_rows = None
        if keys is None or "seq" in keys:
            log(f"sequential uncached lookups ({args.storage_requests} each)")
            storage_rows = storage_latency(services, args.storage_requests)

    base = results["b"]

    def ratio(key):
        return results[key]["rps"] / base["rps"]

    def p99_ratio(key):
        return results[key]["p99"] / base["p99"]

    rows = []
    for sc in chosen:
        r = results[sc.key]
        target = "-"
        if sc.key in RATIO_TARGETS:
            target = f">= {RATIO_TARGETS[sc.key]:.2f} {verdict(ratio(sc.key) >= RATIO_TARGETS[sc.key])}"
        p99_cell = f"{p99_ratio(sc.key):.2f}x"
        if sc.key == "c":
            p99_cell += f" (<= {HIT_P99_MAX:.0f}x {verdict(p99_ratio('c') <= HIT_P99_MAX)})"
        if r["unexpected"]:
            errors = "UNEXPECTED STATUSES"
        elif r["guard_not_held"]:
            errors = "GUARD NOT HELD"
        else:
            errors = r["socket_errors"] or "ok"
        rows.append(
            (
                f"({sc.key}) {sc.label}",
                f"{r['rps']:,.0f}",
                f"{ratio(sc.key):.2f}x",
                target,
                fmt_ms(r["p50"]),
                fmt_ms(r["p99"]),
                p99_cell,
                "/".join(f"{v / 1024:.1f}" for v in r["rss_all"] if v) or "-",
                f"{r['server_cpu_us']:.0f}",
                f"{r['cmd_get']:.2f}/{r['cmd_set']:.2f}",
                errors,
            )
        )
    print()
    print(
        f"Download path under load: wrk -t2 -c{args.connections} -d{args.duration}s --latency, "
        f"waitress threads={args.threads}, fresh server process(es) per row"
        + (f", best of {args.rounds} interleaved rounds" if args.rounds > 1 else "")
    )
    print(
        "Ratios are to the floor (b), measured in this same run; req/s ratio > 1 is faster, "
        "p99 ratio < 1 is faster. Targets are issue 7's. mc get/set: memcached keys read / "
        "stored per request during the run. CPU µs/req: the server process(es)' CPU time (user + "
        "system, all threads) over the requests of the measured run."
    )
    print()
    print(
        table(
            [
                "scenario",
                "req/s",
                "vs (b)",
                "target",
                "p50",
                "p99",
                "p99 vs (b)",
                "RSS MiB",
                "CPU µs/req",
                "mc get/set",
                "errors",
            ],
            rows,
            ["<", ">", ">", "<", ">", ">", "<", ">", ">", ">", "<"],
        )
    )

    # -- targets
    trows = []
    labels = {
        "c": "cached hit GET (c)",
        "g": "cached hit HEAD (g)",
        "e": "extension not allowed (e)",
        "d": "cached miss (d)",
    }
    for key, minimum in RATIO_TARGETS.items():
        if key in results:
            trows.append(
                (
                    f"{labels[key]} >= {minimum:.2f} x floor",
                    f"{ratio(key):.2f}x",
                    verdict(ratio(key) >= minimum),
                )
            )
    if "c" in results:
        c = results["c"]
        trows.append(
            (
                f"hit p99 (c) <= {HIT_P99_MAX:.0f} x floor's",
                f"{fmt_ms(c['p99'])} vs {fmt_ms(base['p99'])} = {p99_ratio('c'):.2f}x",
                verdict(p99_ratio("c") <= HIT_P99_MAX),
            )
        )
    if rss_rows:
        (_, n1, rss1, _, _), (_, n2, rss2, _, _) = rss_rows
        trows.append(
            (
                f"one process RSS < {RSS_MAX_BYTES / 1e6:.0f} MB after {n2:,} hits",
                f"{rss2 / 1024:.1f} MiB ({rss2 * 1024 / 1e6:.1f} MB)",
                verdict(rss2 * 1024 < RSS_MAX_BYTES),
            )
        )
        trows.append(
            (
                f"RSS flat from {n1:,} to {n2:,} hits (<= {RSS_FLAT_KIB / 1024:.0f} MiB growth)",
                f"{(rss2 - rss1) / 1024:+.1f} MiB",
                verdict(rss2 - rss1 <= RSS_FLAT_KIB),
            )
        )
    if trows:
        print()
        print("Targets (issue 7), measured in this run:")
        print()
        print(table(["target", "measured", "verdict"], trows, ["<", ">", "<"]))

    budget = [key for key in RATIO_TARGETS if key in results]
    if budget:
        # A server busy on its CPU answers about (cores it gets) / (CPU per request), so a
        # ratio target is a CPU budget per request: the floor's CPU over the ratio.
        floor_us = base["server_cpu_us"]
        print()
        print(
            f"Server CPU per request against each target's budget (the floor (b) spends {floor_us:.0f} µs; "
            "a ratio r to the floor leaves the floor's CPU / r):"
        )
        print()
        brows = []
        for key in budget:
            allowed = floor_us / RATIO_TARGETS[key]
            spent = results[key]["server_cpu_us"]
            brows.append(
                (
                    f"({key}) at >= {RATIO_TARGETS[key]:.2f}",
                    f"{allowed:.0f} ({allowed - floor_us:+.0f})",
                    f"{spent:.0f} ({spent - floor_us:+.0f})",
                    f"{spent - allowed:+.0f}",
                )
            )
        print(
            table(
                ["row", "budget µs (over floor)", "spent µs (over floor)", "over budget µs"],
                brows,
                ["<", ">", ">", ">"],
            )
        )

    if rss_rows:
        print()
        print(
            "RSS check: one process (as (c)), memcached hits -> 302, "
            "wrk run for whole seconds until the count:"
        )
        print()
        print(
            table(
                ["after requests", "VmRSS MiB", "VmHWM MiB", "elapsed"],
                [
                    (f"{total:,}", f"{rss / 1024:.1f}", f"{hwm / 1024:.1f}", f"{seconds:.0f} s")
                    for _, total, rss, hwm, seconds in rss_rows
                ],
            )
        )

    c = results.get("c")
    if c and c["rss"] and base["rss"]:
        print()
        print(
            f"Server RSS after its run (VmRSS): (c) tecken memcached 302 = {c['rss'] / 1024:.1f} MiB "
            f"(peak {c['hwm'] / 1024:.1f}), (b) Pyramid floor = {base['rss'] / 1024:.1f} MiB "
            f"(peak {base['hwm'] / 1024:.1f}); difference {(c['rss'] - base['rss']) / 1024:+.1f} MiB"
        )

    cpu_rows = [key for key in ("c", "d", "i", "j1", "j2") if key in results]
    if cpu_rows:
        print()
        print(
            f"CPU seconds used during the {args.duration} s measured run "
            f"(of {os.cpu_count() * args.duration} core-seconds; moto's S3 server runs in the bench process; "
            "what is left went to other work on the machine):"
        )
        for key in cpu_rows:
            r = results[key]
            names = [f"app{n}" for n in range(1, len(r["rss_all"]) + 1)]
            names += ["haproxy"] if len(r["cpu"]) > len(names) + 1 else []
            names.append("memcached")
            cpu = ", ".join(f"{name} {s:.1f}" for name, s in zip(names, r["cpu"], strict=True))
            print(f"  ({key}) {cpu}, wrk {r['wrk_cpu']:.1f}, bench+moto {r['self_cpu']:.1f}")

    if "j2" in results:
        j2 = results["j2"]
        print()
        parts = []
        if "j1" in results:
            parts.append(f"(j2)/(j1) = {j2['rps'] / results['j1']['rps']:.2f}x (both behind haproxy)")
        if c:
            parts.append(f"(j2)/(c) = {j2['rps'] / c['rps']:.2f}x (against one process without haproxy)")
        print("Two processes to one: " + "; ".join(parts))
        print(
            f"  On {os.cpu_count()} cores shared by wrk, haproxy, memcached and the processes, a second "
            "process can only take what the first leaves idle: the ratio is bounded well below 2."
        )

    if storage_rows:
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
        print(
            table(
                ["request", "n", "statuses", "p50", "p95", "p99", "Debug-Time p50", "Debug-Time p95"], srows
            )
        )
    print()
    print(f"total bench time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
