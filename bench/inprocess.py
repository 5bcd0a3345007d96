"""What each download answer costs the app itself: the WSGI app called directly, no server.

    .venv/bin/python bench/inprocess.py [--requests 5000] [--rounds 5]

bench/download.py measures through waitress and wrk, where the server, the load
generator and the GIL blur what the app adds. Here each app is called in a loop
from one thread, with the environ waitress would build, and the CPU time of that
thread per request is measured (``time.thread_time``: kernel time of its system
calls included, the other threads' work not). Rows run interleaved, several
rounds; each row keeps its lowest round (the one least disturbed by anything
else on the machine).

The rows are bench/download.py's, plus what they are made of: the access log's
share, the code-id key's share of a hit (the hit with that key left out of the
cache read, as before issue 9), and one memcached round trip alone (the app's
cache client, a bare pymemcache client, a raw socket), so that what bounds the
download path can be read off one run (bench/README.md).
"""

import argparse
import contextlib
import io
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import baseline_apps  # noqa: E402
import download  # noqa: E402
from benchlib import table  # noqa: E402


def environ_for(path, method="GET"):
    """What waitress puts in the environ of a keep-alive ``GET path`` from wrk."""
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "REQUEST_URI": path,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "6543",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "waitress",
        "HTTP_HOST": "127.0.0.1:6543",
        "HTTP_USER_AGENT": "wrk",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_HOST": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


class WsgiRow:
    def __init__(self, key, label, app, path, status, method="GET"):
        self.key, self.label, self.app = key, label, app
        self.path, self.status, self.method = path, status, method

    def check(self):
        seen = []
        body = self.app(environ_for(self.path, self.method), lambda s, h, e=None: seen.append(s))
        b"".join(body)
        if not seen or not seen[0].startswith(str(self.status)):
            raise RuntimeError(f"({self.key}) {self.method} {self.path}: expected {self.status}, got {seen}")

    def run(self, n):
        app, path, method = self.app, self.path, self.method

        def start_response(status, headers, exc_info=None):
            return None

        for _ in range(n):
            body = app(environ_for(path, method), start_response)
            b"".join(body)
            close = getattr(body, "close", None)
            if close is not None:
                close()


class CallRow:
    def __init__(self, key, label, call):
        self.key, self.label, self.call = key, label, call

    def check(self):
        self.call()

    def run(self, n):
        call = self.call
        for _ in range(n):
            call()


def measure(row, n):
    """(CPU µs, wall µs) per call of row, this thread only."""
    cpu, wall = time.thread_time(), time.perf_counter()
    row.run(n)
    return (time.thread_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


def raw_memcached_get(port, keys):
    """One ``get`` over a plain blocking socket: the least a round trip can cost from Python."""
    import socket

    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    command = ("get " + " ".join(keys) + "\r\n").encode("ascii")

    def call():
        sock.sendall(command)
        reply = sock.recv(4096)
        while not reply.endswith(b"END\r\n"):
            reply += sock.recv(4096)

    return sock, call


def build_apps(services):
    """The app as pserve builds it from production.ini, in three configurations."""
    from pyramid.paster import get_app

    base = {
        "TECKEN_SESSION_SECRET": download.SESSION_SECRET,
        "TECKEN_DATABASE_URL": services.db_url,
        "TECKEN_SYMBOL_URLS": services.s3_url,
        "TECKEN_MEMCACHED_SERVERS": f"127.0.0.1:{services.memcached_port}",
        "TECKEN_ACCESS_LOG": "true",
    }
    apps = {}
    for name, env in (
        ("memcached", {}),
        ("memcached, access log off", {"TECKEN_ACCESS_LOG": "false"}),
        ("in-process cache", {"TECKEN_MEMCACHED_SERVERS": ""}),
    ):
        saved = {k: os.environ.get(k) for k in base}
        os.environ.update({**base, **env})
        try:
            apps[name] = get_app(services.ini)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return apps


class WithoutCodeIdKey:
    """The memcached app with the code-id entry left out of the cache read (as before issue 9).

    Only for this comparison: a cached miss would then lose its code-id answer.
    """

    def __init__(self, app):
        self.app = app
        self.code_ids = app.registry.code_ids

    def __call__(self, environ, start_response):
        eligible = self.code_ids.eligible
        self.code_ids.eligible = lambda filename, debugid: False
        try:
            return self.app(environ, start_response)
        finally:
            self.code_ids.eligible = eligible


def rows_for(services, apps, stack):
    mc, quiet, inproc = apps["memcached"], apps["memcached, access log off"], apps["in-process cache"]
    found, missing, ext = download.FOUND_PATH, download.MISSING_PATH, download.EXT_PATH
    keys = mc.registry.existence.keys_for("xul.pdb", download.DEBUG_ID, "xul.sym")
    code_key = mc.registry.code_ids.cache_key("xul.pdb", download.DEBUG_ID, False)
    cache = mc.registry.cache
    hit_keys = [keys[0], code_key]

    from pymemcache.client.base import Client

    bare_client = Client(("127.0.0.1", services.memcached_port), timeout=0.25, connect_timeout=0.25)
    stack.callback(bare_client.close)
    sock, raw_get = raw_memcached_get(services.memcached_port, hit_keys)
    stack.callback(sock.close)
    return [
        WsgiRow("a", "baseline: bare WSGI callable, fixed 302", baseline_apps.bare_app, found, 302),
        WsgiRow("b", "floor: minimal Pyramid traversal, fixed 302", baseline_apps.pyramid_app(), found, 302),
        WsgiRow("e", "tecken: extension not allowed -> 404", mc, ext, 404),
        WsgiRow("e0", "as (e), access log off", quiet, ext, 404),
        WsgiRow("f", "tecken: in-process cache hit -> 302", inproc, found, 302),
        WsgiRow("c", "tecken: memcached hit -> 302", mc, found, 302),
        WsgiRow("c0", "as (c), access log off", quiet, found, 302),
        WsgiRow("c1", "as (c), code-id key not read (before issue 9)", WithoutCodeIdKey(mc), found, 302),
        WsgiRow("g", "tecken: memcached hit, HEAD -> 200", mc, found, 200, method="HEAD"),
        WsgiRow("d", "tecken: cached miss -> 404 (guard already set)", mc, missing, 404),
        CallRow("m", "memcached round trip: the app cache's get_many, 2 keys",
                lambda: cache.get_many(hit_keys)),
        CallRow("m1", "memcached round trip: the app cache's get_many, 1 key",
                lambda: cache.get_many(hit_keys[:1])),
        CallRow("m2", "memcached round trip: bare pymemcache Client.get_many, 2 keys",
                lambda: bare_client.get_many(hit_keys)),
        CallRow("m3", "memcached round trip: raw blocking socket, 2 keys", raw_get),
    ]  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="calls per row per round (default 5000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; lowest kept (default 5)")
    args = parser.parse_args()
    started = time.monotonic()

    with download.Services() as services, contextlib.ExitStack() as stack:
        # The access log's lines go nowhere: formatting them is counted, the terminal is not.
        devnull = stack.enter_context(open(os.devnull, "w"))
        real_stdout, sys.stdout = sys.stdout, devnull
        try:
            apps = build_apps(services)
            for app in apps.values():
                stack.callback(shutdown_app, app)
            rows = rows_for(services, apps, stack)
            for row in rows:
                row.check()  # the answer is the expected one; warms the cache and the guard
                row.run(500)
            best = {}
            for _ in range(args.rounds):
                for row in rows:
                    cpu, wall = measure(row, args.requests)
                    old = best.get(row.key)
                    best[row.key] = (min(cpu, old[0]), min(wall, old[1])) if old else (cpu, wall)
        finally:
            sys.stdout = real_stdout

    floor_cpu = best["b"][0]
    out = []
    for row in rows:
        cpu, wall = best[row.key]
        over = f"{cpu - floor_cpu:+.1f}" if isinstance(row, WsgiRow) and row.key not in ("a", "b") else "-"
        out.append((f"({row.key}) {row.label}", f"{cpu:.1f}", over, f"{wall:.1f}"))
    print()
    print(
        f"The app called directly (no server, one thread), {args.requests:,} calls per row per round, "
        f"lowest of {args.rounds} interleaved rounds"
    )
    print(
        "CPU µs: this thread's CPU time per call (its system calls included); wall µs includes "
        "waiting for memcached's answer."
    )
    print()
    print(table(["row", "CPU µs", "vs (b) CPU µs", "wall µs"], out, ["<", ">", ">", ">"]))

    def diff(a, b):
        return best[a][0] - best[b][0]

    print()
    print("What the rows are made of (CPU µs per request, from the rows above):")
    print(f"  access log (e) - (e0): {diff('e', 'e0'):+.1f}; (c) - (c0): {diff('c', 'c0'):+.1f}")
    print(f"  the code-id key in a hit's cache read (c) - (c1): {diff('c', 'c1'):+.1f}")
    print(f"  memcached instead of the in-process cache (c) - (f): {diff('c', 'f'):+.1f}")
    print(f"  the app's own work on a hit, memcached aside (f) - (b): {diff('f', 'b'):+.1f}")
    print(f"total bench time {time.monotonic() - started:.0f} s")


def shutdown_app(app):
    from tecken_pyramid import shutdown

    registry = getattr(app, "registry", None)
    if registry is not None:
        with contextlib.suppress(Exception):
            shutdown(registry)


if __name__ == "__main__":
    main()
