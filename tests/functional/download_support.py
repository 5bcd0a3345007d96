"""Shared helpers for the download functional tests: response assertions, a real
waitress server around an app, raw HTTP requests, small TCP/HTTP stand-ins for a
misbehaving storage endpoint, and the real ``tecken-pyramid`` command line.

No mocks: everything here talks over real sockets.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

from tests.conftest import ROOT, free_port

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET",
    "Access-Control-Expose-Headers": "X-Symbol-Lookup, Debug-Time, Retry-After",
}
DOWNLOAD_ONLY_HEADERS = (*CORS, "X-Symbol-Lookup", "Debug-Time", "Retry-After")
TEXT = "text/plain; charset=utf-8"

IGNORED_BODY = "Symbol Not Found (and ignored)"
INVALID_NAME_BODY = "Symbol name lookup contains invalid characters and will never be found."
NOT_FOUND_BODY = "Symbol Not Found"
UNAVAILABLE_BODY = "Symbol lookup temporarily unavailable"


def q(text):
    """Percent-encode one path segment completely (UTF-8)."""
    return urllib.parse.quote(text, safe="")


def assert_no_cookie(response):
    assert "Set-Cookie" not in response.headers
    assert "set-cookie" not in {k.lower() for k in response.headers.keys()}


def assert_download(response, status, lookup, *, body=None, cache=None, debug=None):
    """Every answer of SPEC §2 steps 1-5: status, body, CORS, lookup, cache, debug, no cookie.

    ``debug``: None = no Debug-Time header; "zero" = exactly "0.0"; "positive" = a
    repr(float) greater than zero.
    """
    assert response.status_int == status, (response.status, response.body[:300])
    for name, value in CORS.items():
        assert response.headers.get(name) == value, name
    assert response.headers.get("X-Symbol-Lookup") == lookup
    if cache is None:
        cache = "no-store" if status in (400, 503) else "max-age=0"
    assert response.headers.get("Cache-Control") == cache
    if body is not None:
        assert response.body == body.encode("utf-8")
        if body:
            assert response.headers["Content-Type"] == TEXT
    assert_no_cookie(response)
    value = response.headers.get("Debug-Time")
    if debug is None:
        assert value is None
    elif debug == "zero":
        assert value == "0.0"
    else:
        assert value is not None
        number = float(value)
        assert number > 0
        assert repr(number) == value  # repr(float), never rounded
    if status == 503:
        assert response.headers.get("Retry-After") == "5"
    else:
        assert "Retry-After" not in response.headers
    location = response.headers.get("Location")
    if status == 302:
        assert location and location.isascii()
    else:
        assert location is None


def assert_json_404(response, path, *, head=False):
    assert response.status_int == 404, (response.status, response.body[:300])
    assert response.headers["Content-Type"] == "application/json"
    if not head:
        assert json.loads(response.body.decode("utf-8")) == {"error": "Not Found", "path": path}
    for name in DOWNLOAD_ONLY_HEADERS:
        assert name not in response.headers, name
    assert_no_cookie(response)


def assert_405(response, method, path):
    assert response.status_int == 405, (response.status, response.body[:300])
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.headers["Content-Type"] == "application/json"
    if method != "HEAD":
        expected = {"error": f"Method Not Allowed ({method}): {path}"}
        assert json.loads(response.body.decode("utf-8")) == expected
    for name in DOWNLOAD_ONLY_HEADERS:
        assert name not in response.headers, name
    assert_no_cookie(response)


def poll(predicate, timeout=10.0, interval=0.05):
    """Call ``predicate`` until it returns a truthy value; returns the last value."""
    end = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < end:
        time.sleep(interval)
        value = predicate()
    return value


# -- a real waitress server around an app, raw HTTP --------------------------------------------
class Served:
    def __init__(self, wsgi_app):
        import waitress.server

        self.server = waitress.server.create_server(
            wsgi_app,
            host="127.0.0.1",
            port=0,
            threads=4,
            clear_untrusted_proxy_headers=True,
            asyncore_loop_timeout=0.05,
        )
        self.port = self.server.effective_port
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="waitress-test", daemon=True)
        self.thread.start()

    def _run(self):
        from waitress import wasyncore

        # Poll in short steps and close from this thread: closing the sockets from
        # another thread while select() waits on them raises EBADF here.
        while not self._stop.is_set():
            wasyncore.loop(timeout=0.05, map=self.server._map, count=1)
        self.server.close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        self._stop.set()
        self.thread.join(timeout=5)


@pytest.fixture
def serve():
    """serve(testapp_or_wsgi) -> Served, a real waitress on a free port."""
    servers = []

    def start(app):
        served = Served(getattr(app, "app", app))
        servers.append(served)
        return served

    yield start
    for served in servers:
        served.close()


class RawResponse:
    def __init__(self, raw):
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.status_line = lines[0].decode("latin-1")
        self.status_int = int(self.status_line.split()[1])
        self.status = self.status_line.split(" ", 1)[1]
        self.header_list = []
        for line in lines[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            self.header_list.append((name.strip(), value.strip()))
        self.headers = _Headers(self.header_list)
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))


class _Headers:
    def __init__(self, items):
        self._items = items

    def get(self, name, default=None):
        for k, v in self._items:
            if k.lower() == name.lower():
                return v
        return default

    def __getitem__(self, name):
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name):
        return self.get(name) is not None

    def keys(self):
        return [k for k, _ in self._items]


def raw_request(port, method, target, headers=(), body=b"", host=b"symbols.example.com", timeout=10):
    """Send bytes exactly as given (method and target are bytes or ASCII text)."""
    if isinstance(method, str):
        method = method.encode("ascii")
    if isinstance(target, str):
        target = target.encode("ascii")
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: " + host, b"Connection: close"]
    for name, value in headers:
        value = value if isinstance(value, bytes) else value.encode("latin-1")
        lines.append(name.encode("latin-1") + b": " + value)
    if body:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    data = b"\r\n".join(lines) + b"\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    response = RawResponse(b"".join(chunks))
    if method == b"HEAD":
        response.body = b""
    return response


# -- storage endpoints that misbehave ------------------------------------------------------------
class HangingServer:
    """Accepts TCP connections and never answers (a storage endpoint that hangs)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="hanging-server", daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections.append(conn)  # keep it open, read nothing, answer nothing

    def url(self, bucket="tecken-private", public=False):
        return f"http://127.0.0.1:{self.port}/{bucket}" + ("?access=public" if public else "")

    def close(self):
        self._stop.set()
        self.thread.join(timeout=5)
        for conn in self.connections:
            try:
                conn.close()
            except OSError:
                pass
        self.sock.close()


class StatusServer:
    """A tiny HTTP server answering every request with a chosen status (a misbehaving S3)."""

    def __init__(self, status=500):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self
        self.status = status
        self.requests = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                outer.requests.append((self.command, self.path))
                body = b"" if self.command == "HEAD" else b"<Error/>"
                self.send_response(outer.status)
                self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
                self.end_headers()
                if body:
                    self.wfile.write(body)

            do_HEAD = do_GET = do_PUT = do_POST = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def url(self, bucket="tecken-private", public=False):
        return f"http://127.0.0.1:{self.port}/{bucket}" + ("?access=public" if public else "")

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port():
    """A port nobody listens on (connection refused)."""
    return free_port()


# -- the real command line ------------------------------------------------------------------------
def run_cli(*args, env_overrides=None, timeout=60):
    env = dict(os.environ)
    env.update(env_overrides or {})
    exe = os.path.join(os.path.dirname(sys.executable), "tecken-pyramid")
    return subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


DEVELOPMENT_INI = os.path.join(ROOT, "development.ini")
