"""Load under faults: two processes behind haproxy while memcached, then S3, fail and recover.

    .venv/bin/python bench/faults.py [--clients 8] [--phase-seconds 12] [--db auto|postgresql|sqlite]

Starts, all on loopback: a throw-away database (PostgreSQL at 127.0.0.1:5432 when it
answers, else a SQLite file), two memcached servers, moto's S3 server (a
``moto_server`` subprocess) reached through a small TCP gate subprocess (killing the
gate is an S3 outage -- connections refused and cut -- without losing moto's
objects), two ``pserve production.ini`` processes with the missing-symbol guard off
(``TECKEN_MISSING_SYMBOL_GUARD_SECONDS=0``: every GET miss is recorded) and Debian's
haproxy running ``deploy/haproxy.cfg``. Client threads (http.client keep-alive
through haproxy) mix cached hits, first-time misses (unique names, with
code_file/code_id), repeated misses, ignored names (``*/*/file.ptr``) and try
requests while the script runs these phases:

    baseline -> memcached down (both servers killed) -> memcached back (until both
    servers are read again) -> S3 down (gate killed) -> S3 back

It prints one table per phase and checks SPEC's promises: no 5xx other than the
503 of §2; 503s only while storage was down; every other answer right; every GET
miss answered 404 recorded (sum of ``count`` in ``missing_symbol`` equals the
number of such answers, after the writers flushed); memcached used again within
30 s of its return (§5). Exits 1 when one of them is broken. Cleans up after itself.
"""

import argparse
import collections
import contextlib
import http.client
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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
    memcached_argv,
    migrate,
    percentile,
    stop_process,
    table,
    wait_for_port,
)

DEBUG_ID = "44E4EC8C2F41492B9369D6B9A059577C2"
BUCKET = "tecken-faults"
PREFIX = "pfx"
SESSION_SECRET = "faults-bench-secret-0123456789abcdefghij"
DEFAULT_PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
HAPROXY_CFG = os.path.join(ROOT, "deploy", "haproxy.cfg")
FOUND_KEYS = 50
TRY_KEYS = 20
REPEAT_MISSES = 10
MEMCACHED_RETURN_LIMIT = 30.0  # SPEC §5
# Category weights of the request mix.
MIX = [("hit", 45), ("first-miss", 20), ("repeat-miss", 10), ("ignored", 10), ("try", 15)]


def log(message):
    print(message, file=sys.stderr, flush=True)


# -- the S3 gate: a TCP forwarder in its own process ------------------------------------------------
def run_gate(listen_port, target_port):
    """Forward 127.0.0.1:listen_port to 127.0.0.1:target_port until killed."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", listen_port))
    listener.listen(256)

    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(("127.0.0.1", target_port), timeout=5)
            upstream.settimeout(None)
        except OSError:
            client.close()
            continue
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=pump, args=(src, dst), daemon=True).start()


# -- services ----------------------------------------------------------------------------------------
def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TECKEN_", "DJANGO_"))}
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Proc:
    """A subprocess we own, its output in a log file under the run's directory."""

    def __init__(self, name, argv, env, tmp, port=None):
        self.name, self.argv, self.env, self.port = name, argv, env, port
        self.log_path = os.path.join(tmp, f"{name}.log")
        self.proc = None

    def start(self, timeout=30.0):
        with open(self.log_path, "ab") as logfile:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=ROOT, stdout=logfile, stderr=subprocess.STDOUT
            )
        if self.port is not None and not wait_for_port(self.port, timeout=timeout, proc=self.proc):
            tail = self.tail()
            self.stop()
            raise RuntimeError(f"{self.name} did not listen on {self.port}:\n{tail}")
        return self

    def kill(self):
        """SIGKILL: an abrupt failure (no goodbye to the clients)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self, timeout=10.0):
        stop_process(self.proc, timeout=timeout)
        self.proc = None

    def tail(self, chars=3000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-chars:]
        except OSError:
            return ""


class Database:
    def __init__(self, kind, pg_admin, tmp):
        self.kind = kind
        if kind == "postgresql":
            import psycopg

            self.name = f"tecken_bench_{uuid.uuid4().hex[:10]}"
            self.admin_dsn = pg_admin.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            self.url = f"{pg_admin.rsplit('/', 1)[0]}/{self.name}"
        else:
            self.url = f"sqlite:///{tmp}/tecken.sqlite3"
        migrate(self.url)

    def missing_totals(self):
        """(rows, sum of count) of missing_symbol."""
        from sqlalchemy import text

        from tecken_pyramid.db import make_engine

        engine = make_engine(self.url)
        try:
            with engine.connect() as conn:
                query = text("SELECT COUNT(*), COALESCE(SUM(count), 0) FROM missing_symbol")
                rows, total = conn.execute(query).one()
            return int(rows), int(total)
        finally:
            engine.dispose()

    def drop(self):
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def pg_answers(url):
    try:
        import psycopg

        psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3).close()
        return True
    except Exception:
        return False


def memcached_stats(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"stats\r\n")
            data = b""
            while not data.endswith(b"END\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    stats = {}
    for line in data.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT" and parts[2].isdigit():
            stats[parts[1]] = int(parts[2])
    return stats


class Stack(ServiceStack):
    """Everything the run needs, started in order and stopped in reverse."""

    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="tecken-faults-")
        self.db = None
        self.memcached = []
        self.moto = None
        self.gate = None
        self.apps = []
        self.haproxy = None

    def _start(self):
        for tool in ("memcached", "haproxy"):
            if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
                sys.exit(f"bench/faults.py: {tool} is not installed (make bench installs it)")
        kind = self.args.db
        if kind == "auto":
            kind = "postgresql" if pg_answers(self.args.pg_url) else "sqlite"
        log(f"database: {kind}")
        self.db = Database(kind, self.args.pg_url, self.tmp)

        for n in range(2):
            port = free_port()
            argv = memcached_argv(port)
            self.memcached.append(Proc(f"memcached{n + 1}", argv, clean_env(), self.tmp, port).start())

        moto_port = free_port()
        self.moto = Proc(
            "moto",
            [os.path.join(BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
            clean_env(),
            self.tmp,
            moto_port,
        ).start()
        gate_port = free_port()
        gate_argv = [PYTHON, os.path.abspath(__file__), "--gate", str(gate_port), str(moto_port)]
        self.gate = Proc("s3-gate", gate_argv, clean_env(), self.tmp, gate_port).start()
        self._seed(moto_port)

        s3_url = f"http://127.0.0.1:{self.gate.port}/{BUCKET}/{PREFIX}"
        env = clean_env(
            TECKEN_SESSION_SECRET=SESSION_SECRET,
            TECKEN_SYMBOL_URLS=s3_url,
            TECKEN_DATABASE_URL=self.db.url,
            TECKEN_MEMCACHED_SERVERS=",".join(f"127.0.0.1:{m.port}" for m in self.memcached),
            TECKEN_MISSING_SYMBOL_GUARD_SECONDS=0,
        )
        for n in range(2):
            port = free_port()
            argv = [os.path.join(BIN, "pserve"), "production.ini", f"http_port={port}"]
            self.apps.append(Proc(f"app{n + 1}", argv, env, self.tmp, port))
        for app in self.apps:
            app.start(timeout=60)

        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        lb_port = free_port()
        lb_env = clean_env(
            TECKEN_LB_ADDRESS="127.0.0.1",
            TECKEN_LB_PORT=lb_port,
            TECKEN_LB_LOG="stdout",
            TECKEN_LB_STATS_SOCKET=os.path.join(self.tmp, "haproxy.sock"),
            TECKEN_LB_UNPRIVILEGED=1,
            TECKEN_APP1=f"127.0.0.1:{self.apps[0].port}",
            TECKEN_APP2=f"127.0.0.1:{self.apps[1].port}",
        )
        argv = [haproxy, "-W", "-db", "-f", HAPROXY_CFG]
        self.haproxy = Proc("haproxy", argv, lb_env, self.tmp, lb_port).start()
        time.sleep(1.0)  # the first health checks

    def _seed(self, moto_port):
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{moto_port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket=BUCKET)
        for n in range(FOUND_KEYS):
            key = f"{PREFIX}/v1/hit{n}.pdb/{DEBUG_ID}/hit{n}.sym"
            client.put_object(Bucket=BUCKET, Key=key, Body=b"MODULE\n")
        for n in range(TRY_KEYS):
            key = f"try/{PREFIX}/v1/try{n}.pdb/{DEBUG_ID}/try{n}.sym"
            client.put_object(Bucket=BUCKET, Key=key, Body=b"MODULE\n")

    def close(self):
        for proc in [self.haproxy, *reversed(self.apps), self.gate, self.moto, *self.memcached]:
            if proc is not None:
                with contextlib.suppress(Exception):
                    proc.stop()
        if self.db is not None:
            with contextlib.suppress(Exception):
                self.db.drop()
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


# -- load ----------------------------------------------------------------------------------------
Result = collections.namedtuple("Result", "start end category method path status lookup")


class Client(threading.Thread):
    """One keep-alive client through haproxy issuing the request mix until stopped."""

    def __init__(self, n, port, run_id, stop, results, seed):
        super().__init__(daemon=True, name=f"client{n}")
        self.n, self.port, self.run_id, self.stop = n, port, run_id, stop
        self.results = results
        self.rng = random.Random(seed)
        self.categories = [c for c, _ in MIX]
        self.weights = [w for _, w in MIX]
        self.misses = 0

    def next_request(self):
        category = self.rng.choices(self.categories, self.weights)[0]
        if category == "hit":
            n = self.rng.randrange(FOUND_KEYS)
            return category, f"/hit{n}.pdb/{DEBUG_ID}/hit{n}.sym"
        if category == "first-miss":
            self.misses += 1
            name = f"miss-{self.run_id}-{self.n}-{self.misses}"
            query = f"code_file={name}.dll&code_id=5F3C0A1B{self.n}"
            return category, f"/{name}.pdb/{DEBUG_ID}/{name}.sym?{query}"
        if category == "repeat-miss":
            n = self.rng.randrange(REPEAT_MISSES)
            return category, f"/again{n}.pdb/{DEBUG_ID}/again{n}.sym?code_file=again{n}.dll&code_id=AB{n}"
        if category == "ignored":
            n = self.rng.randrange(FOUND_KEYS)
            return category, f"/hit{n}.pdb/{DEBUG_ID}/file.ptr"
        n = self.rng.randrange(TRY_KEYS)
        if self.rng.random() < 0.5:
            return category, f"/try/try{n}.pdb/{DEBUG_ID}/try{n}.sym"
        return category, f"/try{n}.pdb/{DEBUG_ID}/try{n}.sym?try"

    def run(self):
        conn = None
        while not self.stop.is_set():
            category, path = self.next_request()
            start = time.monotonic()
            status, lookup = None, None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                status, lookup = response.status, response.getheader("X-Symbol-Lookup")
                if (response.getheader("Connection") or "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                lookup = f"client error: {exc!r}"
                if conn is not None:
                    conn.close()
                conn = None
            self.results.append(Result(start, time.monotonic(), category, "GET", path, status, lookup))
        if conn is not None:
            conn.close()


EXPECTED = {
    "hit": (302, "found"),
    "first-miss": (404, "not-found"),
    "repeat-miss": (404, "not-found"),
    "ignored": (404, "ignored"),
    "try": (302, "found"),
}


def recordable(result):
    """A GET miss answered 404 not-found: with the guard off, each is one recorded miss."""
    return result.method == "GET" and result.status == 404 and result.lookup == "not-found"


# -- phases --------------------------------------------------------------------------------------
class Timeline:
    def __init__(self):
        self.t0 = time.monotonic()
        self.phases = []  # (name, start, end)
        self.events = {}

    def begin(self, name):
        now = time.monotonic()
        if self.phases:
            last = self.phases[-1]
            self.phases[-1] = (last[0], last[1], now)
        self.phases.append((name, now, None))
        log(f"+{now - self.t0:6.1f} s  {name}")

    def end(self):
        last = self.phases[-1]
        self.phases[-1] = (last[0], last[1], time.monotonic())

    def mark(self, name):
        self.events[name] = time.monotonic()

    def rel(self, t):
        return t - self.t0


def wait_memcached_used(stack, returned_at, limit):
    """Seconds after its return at which each memcached server was read again (or None)."""
    base = [memcached_stats(m.port) or {} for m in stack.memcached]
    used = [None] * len(stack.memcached)
    end = returned_at + limit + 5
    while time.monotonic() < end and None in used:
        for i, m in enumerate(stack.memcached):
            if used[i] is None:
                stats = memcached_stats(m.port) or {}
                if stats.get("get_hits", 0) > base[i].get("get_hits", 0):
                    used[i] = time.monotonic() - returned_at
        time.sleep(0.25)
    return used


def run_load(stack, args):
    results = []
    stop = threading.Event()
    timeline = Timeline()
    run_id = uuid.uuid4().hex[:6]
    clients = [
        Client(n, stack.haproxy.port, run_id, stop, results, seed=1000 + n) for n in range(args.clients)
    ]
    memcached_used = []
    try:
        timeline.begin("baseline")
        for client in clients:
            client.start()
        time.sleep(args.phase_seconds)

        timeline.begin("memcached down")
        timeline.mark("memcached down")
        for m in stack.memcached:
            m.kill()
        time.sleep(args.phase_seconds)

        for m in stack.memcached:
            m.start()  # the same ports, empty
        returned_at = time.monotonic()
        timeline.begin("memcached back")
        timeline.mark("memcached back")
        memcached_used = wait_memcached_used(stack, returned_at, MEMCACHED_RETURN_LIMIT)
        time.sleep(3.0)  # both servers warm again before storage fails

        timeline.begin("S3 down")
        timeline.mark("S3 down")
        stack.gate.kill()
        time.sleep(args.phase_seconds)

        stack.gate.start()  # listening again
        timeline.begin("S3 back")
        timeline.mark("S3 back")
        time.sleep(args.phase_seconds)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=40)
        timeline.end()
    return results, timeline, memcached_used


def wait_flushed(db, expected, timeout):
    """Poll missing_symbol until its sum of count reaches ``expected`` (or stops moving)."""
    start = time.monotonic()
    last, stable_since = None, time.monotonic()
    while True:
        rows, total = db.missing_totals()
        if total >= expected:
            return rows, total, time.monotonic() - start
        if total != last:
            last, stable_since = total, time.monotonic()
        if time.monotonic() - start > timeout or time.monotonic() - stable_since > 10:
            return rows, total, time.monotonic() - start
        time.sleep(0.25)


# -- report --------------------------------------------------------------------------------------
def phase_of(timeline, t):
    for name, start, end in timeline.phases:
        if start <= t < (end if end is not None else float("inf")):
            return name
    return timeline.phases[-1][0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients (default 8)")
    parser.add_argument("--phase-seconds", type=float, default=12.0, help="seconds per phase (default 12)")
    parser.add_argument("--db", choices=("auto", "postgresql", "sqlite"), default="auto")
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_ADMIN,
        help="PostgreSQL admin URL (default: the server at 127.0.0.1:5432)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's directory (logs) for inspection")
    parser.add_argument("--gate", nargs=2, type=int, metavar=("LISTEN", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.gate:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        run_gate(*args.gate)
        return 0

    with Stack(args) as stack:
        log(f"run directory: {stack.tmp}")
        results, timeline, memcached_used = run_load(stack, args)
        expected_records = sum(1 for r in results if recordable(r))
        expected_rows = len({r.path for r in results if recordable(r)})
        rows, stored, flush_seconds = wait_flushed(stack.db, expected_records, timeout=60)
        # SIGTERM flushes what is still queued (SPEC §6: up to 5 s); count once more after it.
        for app in stack.apps:
            app.stop(timeout=15)
        rows, stored = stack.db.missing_totals()
        failures = print_report(
            args,
            stack,
            results,
            timeline,
            memcached_used,
            expected_records,
            expected_rows,
            rows,
            stored,
            flush_seconds,
        )
        if args.keep:
            log(f"logs kept in {stack.tmp}")
    return 1 if failures else 0


def print_report(
    args,
    stack,
    results,
    timeline,
    memcached_used,
    expected_records,
    expected_rows,
    rows,
    stored,
    flush_seconds,
):
    s3_down, s3_back = timeline.events["S3 down"], timeline.events["S3 back"]

    def during_storage_outage(r):
        # The request overlapped the outage: it started before S3 was back and
        # ended after it failed.
        return r.start <= s3_back and r.end >= s3_down

    per_phase = collections.OrderedDict((name, []) for name, _, _ in timeline.phases)
    for r in results:
        per_phase[phase_of(timeline, r.start)].append(r)

    other_5xx = [r for r in results if r.status is not None and r.status >= 500 and r.status != 503]
    client_errors = [r for r in results if r.status is None]
    bad_503 = [
        r for r in results if r.status == 503 and (not during_storage_outage(r) or r.category == "ignored")
    ]
    bad_ids = {id(r) for r in bad_503}
    good_503 = [r for r in results if r.status == 503 and id(r) not in bad_ids]
    wrong = [
        r
        for r in results
        if r.status not in (None, 503) and r.status < 500 and (r.status, r.lookup) != EXPECTED[r.category]
    ]
    wrong_ids = {id(r) for r in wrong}

    rows_out = []
    for (name, start, end), (_, items) in zip(timeline.phases, per_phase.items(), strict=True):
        seconds = (end or time.monotonic()) - start
        count = collections.Counter()
        for r in items:
            if r.status is None:
                count["error"] += 1
            elif r.status == 302:
                count["302"] += 1
            elif r.status == 404 and r.lookup == "ignored":
                count["404 ign"] += 1
            elif r.status == 404:
                count["404"] += 1
            elif r.status == 503:
                count["503"] += 1
            elif r.status >= 500:
                count["5xx"] += 1
            else:
                count["other"] += 1
        latencies = [r.end - r.start for r in items]
        rows_out.append(
            [
                name,
                f"+{timeline.rel(start):.1f}",
                f"{seconds:.1f}",
                len(items),
                f"{len(items) / seconds:.0f}" if seconds else "-",
                count["302"],
                count["404"],
                count["404 ign"],
                count["503"],
                count["5xx"] + count["error"],
                sum(1 for r in items if id(r) in wrong_ids),
                fmt_ms(percentile(latencies, 50)),
                fmt_ms(percentile(latencies, 99)),
            ]
        )

    print()
    print(
        f"Load under faults: {args.clients} keep-alive clients through haproxy (deploy/haproxy.cfg) -> "
        f"2 x pserve production.ini, 2 memcached, moto S3 behind a gate, {stack.db.kind}; "
        f"guard off (TECKEN_MISSING_SYMBOL_GUARD_SECONDS=0)"
    )
    print("mix: " + ", ".join(f"{c} {w}%" for c, w in MIX))
    print()
    print(
        table(
            [
                "phase",
                "starts",
                "s",
                "requests",
                "req/s",
                "302",
                "404",
                "404 ign",
                "503",
                "5xx/err",
                "wrong",
                "p50",
                "p99",
            ],
            rows_out,
        )
    )
    print()
    first_503 = min((r.end for r in good_503), default=None)
    last_503 = max((r.start for r in good_503), default=None)
    summary = [
        ["requests served", len(results) - len(client_errors), ""],
        ["5xx other than 503 (must be 0)", len(other_5xx), "ok" if not other_5xx else "FAIL"],
        ["client errors (must be 0)", len(client_errors), "ok" if not client_errors else "FAIL"],
        ["wrong answers (must be 0)", len(wrong), "ok" if not wrong else "FAIL"],
        [
            "503 while S3 was down",
            len(good_503),
            f"S3 down +{timeline.rel(s3_down):.1f} s .. back +{timeline.rel(s3_back):.1f} s"
            + (
                f"; 503s +{timeline.rel(first_503):.1f} .. +{timeline.rel(last_503):.1f} s"
                if good_503
                else ""
            ),
        ],
        ["503 outside the S3 outage (must be 0)", len(bad_503), "ok" if not bad_503 else "FAIL"],
    ]
    mc_back = timeline.events["memcached back"]
    for n, used in enumerate(memcached_used, 1):
        ok = used is not None and used <= MEMCACHED_RETURN_LIMIT
        summary.append(
            [
                f"memcached{n} read again after its return",
                "-" if used is None else f"{used:.1f} s",
                ("ok (SPEC §5: <= 30 s)" if ok else "FAIL (SPEC §5: <= 30 s)")
                + f"; back at +{timeline.rel(mc_back):.1f} s",
            ]
        )
    summary += [
        ["recordable GET misses answered 404", expected_records, f"{expected_rows} distinct names"],
        [
            "missing_symbol: sum of count",
            stored,
            ("ok" if stored == expected_records else "FAIL")
            + f"; reached in {flush_seconds:.1f} s after the load",
        ],
        ["missing_symbol: rows", rows, "ok" if rows == expected_rows else "FAIL"],
    ]
    print(table(["check", "value", "verdict"], summary, aligns=["<", ">", "<"]))
    for label, items in (
        ("other 5xx", other_5xx),
        ("client errors", client_errors),
        ("wrong", wrong),
        ("503 outside", bad_503),
    ):
        for r in items[:5]:
            print(f"  {label}: +{timeline.rel(r.start):.2f} s {r.category} {r.path} -> {r.status} {r.lookup}")
    failures = bool(
        other_5xx
        or client_errors
        or wrong
        or bad_503
        or stored != expected_records
        or rows != expected_rows
        or any(u is None or u > MEMCACHED_RETURN_LIMIT for u in memcached_used)
    )
    return failures


if __name__ == "__main__":
    sys.exit(main())
