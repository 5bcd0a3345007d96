"""Upload-path throughput and server memory (issue 9): ``POST /upload/`` of large archives.

    .venv/bin/python bench/upload.py [--files 2000] [--small-files 500] [--member-bytes 100000]

Builds two zip archives of Breakpad ``.sym`` members (2,000 and 500 of about
100 KB each: a valid MODULE / INFO CODE_ID header, then FUNC and line records with
varied hex), starts a memcached, moto's S3 server over HTTP (one bucket), a migrated
SQLite database and ``pserve`` with production.ini's app and server (only ``host``
set to 127.0.0.1), creates a user and a token with the real command line, then
uploads each archive as one multipart body streamed from the file with ``http.client``
(1 MiB chunks, a computed Content-Length) and measures the seconds to the 201, MB/s
and the server's RSS before, peak during (VmRSS polled every 50 ms, VmHWM reset
before and read after) and growth. Each archive goes to a fresh server process,
warmed first by a one-member upload; the large archive is then sent again to the same
process (an idempotent retry: no storage call). Last it checks with boto3 that every
member is in the bucket and that a download answers 302. Issue 9's target: peak RSS
growth under 100 MB, independent of the archive's size. Everything runs on loopback;
it cleans up after itself.
"""

import argparse
import bisect
import collections
import contextlib
import datetime
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import (  # noqa: E402
    BIN,
    ROOT,
    ServiceStack,
    migrate,
    rss_kib,
    set_test_aws_credentials,
    start_memcached,
    start_moto,
    stop_process,
    table,
)
from download import SESSION_SECRET, Server, cpu_seconds  # noqa: E402

BUCKET = "tecken-bench-upload"
PREFIX = "pfx"
FILE_PREFIX = "v1"  # production.ini's tecken.symbol_file_prefix
USERNAME = "bench"
PASSWORD = "bench-password-0123456789"
GROWTH_TARGET_BYTES = 100_000_000  # issue 9: peak RSS growth under 100 MB ...
MAX_FILES = 20_000  # TECKEN_UPLOAD_MAX_FILES's default (tecken_pyramid/settings.py)
CHUNK = 1024 * 1024  # the client sends the body in 1 MiB pieces
POLL_SECONDS = 0.05
POOL_BYTES = 8 * 1024 * 1024  # the FUNC/line records members are cut from
MB = 1_000_000


def log(message):
    print(message, file=sys.stderr, flush=True)


# -- archives -------------------------------------------------------------------------------------
def record_pool(rng, nbytes):
    """Breakpad FUNC records, each followed by 3-11 line records, addresses rising with
    random sizes: text that deflates about 2.5:1 (as real .sym files roughly do)."""
    lines, size, addr, n = [], 0, 0x1000, 0
    while size < nbytes:
        fsize = rng.randrange(0x10, 0x800)
        line = (
            f"FUNC {addr:x} {fsize:x} {rng.randrange(0x40):x} "
            f"ns{rng.randrange(1000)}::Class{rng.getrandbits(20):x}::method{n}(int, char const*)\n"
        )
        lines.append(line)
        size += len(line)
        a = addr
        for _ in range(rng.randrange(3, 12)):
            s = rng.randrange(1, 0x40)
            line = f"{a:x} {s:x} {rng.randrange(1, 30000)} {rng.randrange(500)}\n"
            lines.append(line)
            size += len(line)
            a += s
        addr += fsize + rng.randrange(0x100)
        n += 1
    pool = "".join(lines).encode()
    starts = [0]
    pos = pool.find(b"\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = pool.find(b"\n", pos + 1)
    return pool, starts[:-1]


def debug_id(rng):
    return f"{rng.getrandbits(128):032X}{rng.randrange(16):X}"


def sym_bytes(rng, pool, starts, name, debugid, member_bytes):
    head = (
        f"MODULE windows x86_64 {debugid} {name}.pdb\n"
        f"INFO CODE_ID {rng.getrandbits(64):016X} {name}.dll\n"
        "INFO GENERATOR bench/upload.py 1.0\n"
        + "".join(f"FILE {i} c:\\build\\src\\{name}\\file{i}.cpp\n" for i in range(20))
    ).encode()
    want = member_bytes - len(head)
    start = starts[rng.randrange(bisect.bisect_right(starts, len(pool) - want - 1024))]
    end = starts[bisect.bisect_left(starts, start + want)]  # whole lines only
    return head + pool[start:end]


def build_archive(path, label, files, member_bytes, pool, starts, seed, compresslevel):
    """A zip of ``files`` .sym members, written member by member (never whole in memory).

    Returns (uncompressed bytes, archive bytes, {key: sha256}, one member's client path)."""
    rng = random.Random(seed)
    total, digests, sample = 0, {}, None
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as zf:
        for n in range(files):
            name = f"{label}{n:05d}"
            debugid = debug_id(rng)
            data = sym_bytes(rng, pool, starts, name, debugid, member_bytes)
            member = f"{name}.pdb/{debugid}/{name}.sym"
            zf.writestr(member, data)
            total += len(data)
            digests[f"{PREFIX}/{FILE_PREFIX}/{member}"] = hashlib.sha256(data).hexdigest()
            sample = sample or member
    return total, os.path.getsize(path), digests, sample


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# -- services -------------------------------------------------------------------------------------
class Services(ServiceStack):
    """memcached, moto's S3 server (one bucket), a migrated SQLite database, a bench ini."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="tecken-bench-upload-")
        self.memcached = self.memcached_port = self.moto = self.moto_port = None
        self.db_url = f"sqlite:///{self.tmp}/tecken.sqlite3"

    def _start(self):
        set_test_aws_credentials()
        if not shutil.which("memcached"):
            sys.exit("bench/upload.py: memcached is not installed (make bench installs it)")
        self.memcached, self.memcached_port = start_memcached()
        self.moto, self.moto_port = start_moto()
        self.s3_client().create_bucket(Bucket=BUCKET)

        migrate(self.db_url)
        # production.ini's app and server (8 threads, its connection options), on loopback only.
        self.ini = os.path.join(self.tmp, "bench.ini")
        prod = os.path.join(ROOT, "production.ini")
        with open(self.ini, "w") as f:
            f.write(
                f"[app:main]\nuse = config:{prod}#main\n\n"
                f"[server:main]\nuse = config:{prod}#main\nhost = 127.0.0.1\n"
            )

    @property
    def s3_url(self):
        return f"http://127.0.0.1:{self.moto_port}/{BUCKET}/{PREFIX}"

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TECKEN_", "DJANGO_"))}
        env.update(
            TECKEN_SESSION_SECRET=SESSION_SECRET,
            TECKEN_DATABASE_URL=self.db_url,
            TECKEN_SYMBOL_URLS=self.s3_url,
            TECKEN_MEMCACHED_SERVERS=f"127.0.0.1:{self.memcached_port}",
        )
        return env

    def s3_client(self):
        import boto3

        return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{self.moto_port}", region_name="us-east-1")

    def cli(self, *args, stdin=None):
        out = subprocess.run(
            [os.path.join(BIN, "tecken-pyramid"), args[0], self.ini, *args[1:]],
            input=stdin,
            env=self.env(),
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if out.returncode != 0:
            raise RuntimeError(f"tecken-pyramid {args[0]} failed: {out.stderr.strip()[-2000:]}")
        return out.stdout

    def token(self):
        """A user made by create-superuser, then an upload token by create-token (its first line)."""
        self.cli("create-superuser", "--username", USERNAME, "--password-stdin", stdin=PASSWORD + "\n")
        return self.cli("create-token", "--username", USERNAME).splitlines()[0].strip()

    def close(self):
        stop_process(self.memcached)
        if self.moto is not None:
            with contextlib.suppress(Exception):
                self.moto.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- measuring ------------------------------------------------------------------------------------
class RssPoller(threading.Thread):
    """VmRSS of ``pid`` every 50 ms; the peak is the larger of that and VmHWM, reset first."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.stop_event = threading.Event()
        self.hwm_reset = reset_hwm(pid)
        self.before, _ = rss_kib(pid)
        self.polled_peak = self.before
        self.samples = 0

    def run(self):
        while not self.stop_event.wait(POLL_SECONDS):
            rss, _ = rss_kib(self.pid)
            if rss:
                self.polled_peak = max(self.polled_peak, rss)
                self.samples += 1

    def finish(self):
        self.stop_event.set()
        self.join()
        rss, hwm = rss_kib(self.pid)
        self.after = rss
        self.hwm = hwm if self.hwm_reset else None
        self.peak = max(self.polled_peak, self.hwm or 0)
        return self


def reset_hwm(pid):
    """Linux resets a process's VmHWM to its current RSS on ``5`` in clear_refs (our own child)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def post_upload(port, path, token, timeout):
    """POST the archive as one multipart part named symbols.zip, streamed from the file.

    Returns (status, parsed JSON, wall-clock start, last body byte sent, answer read)."""
    boundary = f"bench-{uuid.uuid4().hex}"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="symbols.zip"; filename="symbols.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + os.path.getsize(path) + len(tail)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        started = time.time()
        conn.putrequest("POST", "/upload/")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(length))
        conn.putheader("Auth-Token", token)
        conn.endheaders()
        conn.send(head)
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                conn.send(chunk)
        conn.send(tail)
        sent = time.time()
        response = conn.getresponse()
        body = response.read()
        answered = time.time()
    finally:
        conn.close()
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = {"error": body[:500].decode("utf-8", "replace")}
    return response.status, parsed, started, sent, answered


def parse_iso(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


def measure(server, path, token, label, timeout, profile=None):
    pid = server.proc.pid
    profilers = (
        [] if profile is None else [Profiler(pid, profile, "server"), Profiler(os.getpid(), profile, "moto")]
    )
    poller = RssPoller(pid)
    cpu_before = cpu_seconds(pid), cpu_seconds(os.getpid())
    poller.start()
    status, body, started, sent, answered = post_upload(server.port, path, token, timeout)
    poller.finish()
    cpu = cpu_seconds(pid) - cpu_before[0], cpu_seconds(os.getpid()) - cpu_before[1]
    for profiler in profilers:
        profiler.stop()
    if status != 201:
        raise RuntimeError(f"{label}: expected 201, got {status}: {json.dumps(body)[:2000]}")
    upload = body["upload"]
    return {
        "label": label,
        "seconds": answered - started,
        "sent": sent,
        "claimed": parse_iso(upload.get("created_at")),
        "completed": parse_iso(upload.get("completed_at")),
        "started": started,
        "answered": answered,
        "upload": upload,
        "rss": poller,
        "cpu": cpu,
        "profiles": profilers,
    }


class Profiler:
    """``py-spy record --format raw`` of one process (active threads only) until stop()."""

    RATE = 50

    def __init__(self, pid, directory, name):
        pyspy = os.path.join(BIN, "py-spy")
        if not os.path.exists(pyspy):
            sys.exit("bench/upload.py --profile: py-spy is not installed (.venv/bin/pip install py-spy)")
        self.name = name
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, f"{name}-{pid}.txt")
        argv = [pyspy, "record", "--format", "raw", "--nolineno", "--nonblocking"]
        argv += ["--rate", str(self.RATE), "--pid", str(pid), "--output", self.path]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached before the upload starts

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stop_process(self.proc)

    def summary(self, steps=None, top=12):
        """(thread-seconds sampled, [(step or function, inclusive thread-s)], [(function, self thread-s)]).

        With ``steps`` ((label, frame substring) pairs) the inclusive list is those steps,
        a sample counted in every step whose frame is on its stack; else the top functions
        of the project and of moto."""
        inclusive, leaf, total = collections.Counter(), collections.Counter(), 0
        with contextlib.suppress(OSError), open(self.path) as f:
            for line in f:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                if not count.isdigit():
                    continue
                n, frames = int(count), stack.split(";")
                total += n
                leaf[frames[-1]] += n
                if steps:
                    for label, needle in steps:
                        if any(needle in frame for frame in frames):
                            inclusive[label] += n
                else:
                    for frame in set(frames):
                        inclusive[frame] += n
        if steps:
            listed = [(label, inclusive[label]) for label, _ in steps]
        else:
            listed = [(k, v) for k, v in inclusive.most_common() if "tecken_pyramid" in k or "moto" in k][
                :top
            ]
        return (
            total / self.RATE,
            [(k, v / self.RATE) for k, v in listed],
            [(k, v / self.RATE) for k, v in leaf.most_common(top)],
        )


# The server's steps in a py-spy profile: (label, a frame on the stack).
SERVER_STEPS = (
    ("intake: the body to a temporary file, sha256 (read_upload)", "read_upload ("),
    ("inspect: inflate, sha256 + md5, MODULE lines (inspect_archive)", "inspect_archive ("),
    ("workers: one member (MemberStore.store)", "MemberStore.store ("),
    ("  HEAD: is it there already (S3WriteSide.stat)", "S3WriteSide.stat ("),
    ("  gzip to a temporary file (spool)", "spool ("),
    ("  PUT (S3WriteSide._upload)", "S3WriteSide._upload ("),
    ("  of which new TCP connections (create_connection)", "create_connection ("),
    ("request thread: the cache right (MemberStore.settle)", "MemberStore.settle ("),
    ("request thread: upload_file + symbol_file rows (_record)", "UploadService._record ("),
    ("request thread: commits (Session.commit)", "Session.commit ("),
    ("request thread: the answer's JSON (upload_body)", "upload_body ("),
)


def objects(client):
    """{key: (ETag, LastModified)} of every object in the bucket."""
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", ()):
            out[obj["Key"]] = (obj["ETag"], obj["LastModified"])
    return out


def warm_up(server, services, token, timeout):
    """One one-member upload, so that the measured one finds imports and clients ready."""
    path = os.path.join(services.tmp, f"warm-{server.port}.zip")
    rng = random.Random(server.port)
    pool, starts = record_pool(rng, 64 * 1024)
    name = f"warm{server.port}"
    debugid = debug_id(rng)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}.pdb/{debugid}/{name}.sym", sym_bytes(rng, pool, starts, name, debugid, 20_000))
    before, _ = rss_kib(server.proc.pid)
    status, body, *_ = post_upload(server.port, path, token, timeout)
    os.unlink(path)
    if status != 201:
        raise RuntimeError(f"warm-up upload: expected 201, got {status}: {body}")
    after, _ = rss_kib(server.proc.pid)
    return before, after


# -- main -----------------------------------------------------------------------------------------
def mib(kib):
    return f"{kib / 1024:.1f}"


def row(result, archive_bytes, files):
    rss = result["rss"]
    growth_kib = rss.peak - rss.before
    return (
        result["label"],
        f"{archive_bytes / MB:.1f} MB",
        f"{files:,}",
        f"{result['seconds']:.1f}",
        f"{archive_bytes / MB / result['seconds']:.1f}",
        mib(rss.before),
        mib(rss.peak),
        f"{growth_kib / 1024:+.1f} MiB ({growth_kib * 1024 / MB:+.0f} MB)",
        "met" if growth_kib * 1024 < GROWTH_TARGET_BYTES else "NOT met",
    )


def phases(result):
    """Where the seconds went, from the client's clock and the answer's created_at and
    completed_at (the server's clock, the same machine): the row is claimed after the body
    was read and the archive checked, completed once every member was stored."""
    start, sent, answered = result["started"], result["sent"], result["answered"]
    claimed, completed = result["claimed"], result["completed"]
    parts = [f"body sent {sent - start:.1f} s"]
    if claimed is not None and claimed >= start:  # a retry answers the first upload's row
        parts.append(f"intake + inspect until the row was claimed {claimed - sent:+.1f} s")
        if completed is not None:
            parts.append(f"storing the members {completed - claimed:.1f} s")
            parts.append(f"the answer {answered - completed:.1f} s")
    else:
        parts.append(f"intake and the answer of the completed upload {answered - sent:.1f} s")
    return "; ".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="members of the large archive (2000)")
    parser.add_argument("--small-files", type=int, default=500, help="members of the small archive (500)")
    parser.add_argument(
        "--member-bytes", type=int, default=100_000, help="uncompressed bytes of each member (100000)"
    )
    parser.add_argument(
        "--compresslevel", type=int, default=6, help="zlib level of the archives (6: zipfile's default)"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds a request may take (900)")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="record the server and this process (moto) with py-spy during the large upload, "
        "keep the raw files in DIR and print the top functions",
    )
    args = parser.parse_args()

    bench_started = time.monotonic()
    with Services() as services:
        log("building the archives")
        t0 = time.monotonic()
        pool, starts = record_pool(random.Random(9), POOL_BYTES)
        archives = {}
        for label, files, seed in (("small", args.small_files, 1), ("large", args.files, 2)):
            path = os.path.join(services.tmp, f"{label}.zip")
            total, size, digests, sample = build_archive(
                path, label, files, args.member_bytes, pool, starts, seed, args.compresslevel
            )
            archives[label] = {"path": path, "files": files, "total": total, "size": size}
            archives[label].update(digests=digests, sample=sample)
            log(f"  {label}: {files:,} members, {total / MB:.1f} MB uncompressed, {size / MB:.1f} MB zip")
        build_seconds = time.monotonic() - t0
        del pool, starts

        token = services.token()
        results = {}
        warm = {}
        for label in ("small", "large"):
            archive = archives[label]
            log(f"uploading the {label} archive ({archive['size'] / MB:.1f} MB) to a fresh server")
            server = Server("tecken", services, services.env())
            with server:
                warm[label] = warm_up(server, services, token, args.timeout)
                profile = args.profile if label == "large" else None
                results[label] = measure(
                    server, archive["path"], token, f"{label} archive", args.timeout, profile
                )
                if label == "large":
                    client = services.s3_client()
                    stored_before = objects(client)
                    log("the same large archive again (an idempotent retry)")
                    results["retry"] = measure(
                        server, archive["path"], token, "large archive again (retry)", args.timeout
                    )
                    stored_after = objects(client)
                    # A download of one member: a 302 to storage.
                    download = server.request("GET", "/" + archive["sample"])
        client = services.s3_client()
        large = archives["large"]
        in_bucket = objects(client)
        large_keys = set(large["digests"])
        present = large_keys & set(in_bucket)
        sample_key = f"{PREFIX}/{FILE_PREFIX}/{large['sample']}"
        head = client.head_object(Bucket=BUCKET, Key=sample_key)
        sample_sha = (head.get("Metadata") or {}).get("sha256")

    rows = [
        row(results["small"], archives["small"]["size"], archives["small"]["files"]),
        row(results["large"], large["size"], large["files"]),
        row(results["retry"], large["size"], large["files"]),
    ]
    print()
    print(
        f"Upload path: POST /upload/ to pserve production.ini (waitress, 8 threads), moto S3 over HTTP, "
        f"memcached, SQLite; {os.cpu_count()} cores"
    )
    print(
        f"Archives: .sym members of about {args.member_bytes / 1000:.0f} KB uncompressed each, deflated "
        f"at level {args.compresslevel}; the archive size is the bytes sent (the zip), the member total "
        "below; built in "
        f"{build_seconds:.0f} s"
    )
    for label in ("small", "large"):
        a = archives[label]
        print(
            f"  {label}: {a['files']:,} members, {a['total'] / MB:.1f} MB uncompressed in all, "
            f"{a['size'] / MB:.1f} MB zip ({a['total'] / a['size']:.2f}:1)"
        )
    print(
        "Each archive to a fresh server process, warmed by a one-member upload first; the retry to the "
        "large archive's process. MB/s = zip bytes / seconds. RSS: VmRSS before; peak = max(VmRSS every "
        f"{POLL_SECONDS * 1000:.0f} ms, VmHWM reset before the upload); issue 9's target: growth < "
        f"{GROWTH_TARGET_BYTES / MB:.0f} MB whatever the archive's size."
    )
    print()
    print(
        table(
            [
                "upload",
                "archive size",
                "files",
                "seconds",
                "MB/s",
                "RSS before MiB",
                "peak MiB",
                "growth",
                "target met",
            ],
            rows,
            ["<", ">", ">", ">", ">", ">", ">", ">", "<"],
        )
    )
    small, large_r = results["small"]["rss"], results["large"]["rss"]
    extra_files = archives["large"]["files"] - archives["small"]["files"]
    if extra_files >= 1000:  # fewer: the difference is noise
        per_file = ((large_r.peak - large_r.before) - (small.peak - small.before)) / extra_files  # KiB
        base = (small.peak - small.before) - per_file * archives["small"]["files"]
        at_max = base + per_file * MAX_FILES
        print()
        print(
            f"Growth per member, large against small archive: {per_file:.1f} KiB; at that rate an archive of "
            f"{MAX_FILES:,} members (TECKEN_UPLOAD_MAX_FILES's default) would grow the process by about "
            f"{at_max / 1024:.0f} MiB ({at_max * 1024 / MB:.0f} MB)"
        )
    print()
    print("Where the time went (client clock; created_at / completed_at from the answer):")
    for key in ("small", "large", "retry"):
        server_cpu, bench_cpu = results[key]["cpu"]
        print(f"  {results[key]['label']}: {phases(results[key])}")
        print(
            f"    CPU seconds: server {server_cpu:.1f}, "
            f"this process (moto's S3 server, the client) {bench_cpu:.1f}"
        )
    print()
    for label in ("small", "large"):
        before, after = warm[label]
        print(
            f"  warm-up upload before the {label} archive: VmRSS {mib(before)} -> {mib(after)} MiB "
            f"(the first upload in a process: imports, the S3 client)"
        )
    for key in ("small", "large", "retry"):
        rss = results[key]["rss"]
        hwm = f"{mib(rss.hwm)} MiB" if rss.hwm else "not reset"
        print(
            f"  {results[key]['label']}: VmRSS after {mib(rss.after)} MiB, "
            f"polled peak {mib(rss.polled_peak)} MiB over {rss.samples} samples, VmHWM {hwm}"
        )

    for profiler in results["large"]["profiles"]:
        steps = SERVER_STEPS if profiler.name == "server" else None
        sampled, inclusive, leaf = profiler.summary(steps)
        print()
        print(
            f"py-spy, {profiler.name} during the large upload ({profiler.path}): "
            f"{sampled:.1f} thread-seconds sampled in threads not idle (8 workers share 2 cores: "
            "waiting for a core or the GIL counts)"
        )
        heading = "step (inclusive)" if steps else "function (inclusive)"
        print(table([heading, "thread-s"], [(k[:110], f"{v:.1f}") for k, v in inclusive]))
        print(table(["function (self)", "thread-s"], [(k[:110], f"{v:.1f}") for k, v in leaf]))

    # -- verification
    problems = []
    up = results["large"]["upload"]
    stored = sum(1 for f in up.get("files", ()) if f.get("status") == "stored")
    if len(present) != large["files"]:
        problems.append(f"{len(present)} of the {large['files']} members are in the bucket")
    if sample_sha != large["digests"][sample_key]:
        problems.append(f"{sample_key}: metadata sha256 {sample_sha!r} is not the member's")
    if download[0] != 302:
        problems.append(f"GET /{large['sample']} answered {download[0]}, not 302")
    rewritten = sum(1 for k, v in stored_before.items() if stored_after.get(k) != v)
    added = len(set(stored_after) - set(stored_before))
    if rewritten or added:
        problems.append(f"the retry rewrote {rewritten} and added {added} objects")
    retry_up = results["retry"]["upload"]
    if retry_up.get("id") != up.get("id"):
        problems.append(f"the retry answered upload {retry_up.get('id')}, not {up.get('id')}")
    print()
    print(
        f"Bucket: {len(present):,} of the large archive's {large['files']:,} members present "
        f"({len(in_bucket):,} objects in all, the small archive's and the warm-ups' included); "
        f"the answer listed {stored:,} files stored; {sample_key} carries the member's sha256; "
        f"GET /{large['sample']} -> {download[0]} {download[1].get('Location', '')[:60]}...; "
        f"the retry answered upload {retry_up.get('id')} (the first's: {up.get('id')}), "
        f"{rewritten} objects rewritten, {added} added"
    )
    if problems:
        print("NOT verified: " + "; ".join(problems))
    else:
        print("verified")
    print()
    print(f"total bench time {time.monotonic() - bench_started:.0f} s")
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
