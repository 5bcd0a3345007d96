"""SPEC §1 (serving with pserve), §8 (deployment shapes): the real ``pserve`` over real sockets."""

import glob
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from sqlalchemy import text

from tecken_pyramid import server as server_mod
from tests.conftest import DEBUG_ID, PRIVATE_BUCKET, ROOT, free_port, put_file

PSERVE = os.path.join(os.path.dirname(sys.executable), "pserve")
SECRET = "k" * 40
UNREACHABLE_DB = "postgresql://postgres@127.0.0.1:1/x"


def base_env(**extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TECKEN_", "DJANGO_")) or k.startswith("TECKEN_TEST_")
    }
    env.update(extra)
    return env


class Pserve:
    """``pserve INI http_port=N`` as a subprocess, its stderr in a file."""

    def __init__(self, ini, env, tmp_path, port=None):
        self.ini = ini
        self.port = port or free_port()
        self.env = env
        self.log_path = tmp_path / f"pserve-{self.port}.log"
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PSERVE, self.ini, f"http_port={self.port}"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return self

    @property
    def output(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_listening(self, timeout=30.0, host="127.0.0.1"):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                pytest.fail(f"pserve exited with {self.proc.returncode}:\n{self.output}")
            try:
                with socket.create_connection((host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        pytest.fail(f"pserve did not listen on {self.port} within {timeout}s:\n{self.output}")

    def request(self, method, path, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, headers=headers or {})
            response = conn.getresponse()
            body = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, body
        finally:
            conn.close()

    def raw(self, request_bytes):
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(request_bytes)
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        data = b"".join(chunks)
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers, body

    def terminate(self, timeout=15.0):
        """SIGTERM; returns the seconds it took to exit."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"pserve did not exit within {timeout}s of SIGTERM:\n{self.output}")
        return time.monotonic() - started

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()


@pytest.fixture
def pserve(tmp_path):
    started = []

    def start(ini, env, port=None):
        p = Pserve(ini, env, tmp_path, port).start()
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()


def run_pserve_expecting_exit(ini, env, timeout=60):
    result = subprocess.run(
        [PSERVE, ini, f"http_port={free_port()}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return result


# -- production end to end -------------------------------------------------------------------------
def test_production_end_to_end(pserve, db, s3, memcached_clean, symbols_dir):
    put_file(symbols_dir, f"v1/xul.pdb/{DEBUG_ID}/xul.sym", b"MODULE local\n")
    s3.put(PRIVATE_BUCKET, f"v1/s3only.pdb/{DEBUG_ID}/s3only.sym", b"MODULE s3\n")
    private_url = s3.url(PRIVATE_BUCKET)
    env = base_env(
        TECKEN_SESSION_SECRET=SECRET,
        TECKEN_SYMBOL_URLS=f"{symbols_dir},{private_url}",
        TECKEN_DATABASE_URL=db.url,
        TECKEN_MEMCACHED_SERVERS=memcached_clean.address,
        TECKEN_MISSING_SYMBOL_GUARD_SECONDS="0",
    )
    app = pserve("production.ini", env).wait_listening()
    base = f"http://127.0.0.1:{app.port}"

    # Found in the local directory: 302 to this app's /__files__/0/...
    status, headers, _ = app.request("GET", f"/xul.pdb/{DEBUG_ID.lower()}/xul.sym")
    assert status == 302
    assert headers["location"] == f"{base}/__files__/0/v1/xul.pdb/{DEBUG_ID}/xul.sym"
    assert headers["x-symbol-lookup"] == "found"
    assert headers["access-control-allow-origin"] == "*"
    assert "set-cookie" not in headers
    status, headers, body = app.request("GET", urllib.parse.urlsplit(headers["location"]).path)
    assert status == 200
    assert body == b"MODULE local\n"
    assert headers["content-type"] == "application/octet-stream"

    # Found in the private bucket: 302 to a presigned URL that fetches the object.
    status, headers, _ = app.request("GET", f"/s3only.pdb/{DEBUG_ID}/s3only.sym")
    assert status == 302, headers
    location = headers["location"]
    assert location.startswith(f"{private_url}/v1/s3only.pdb/{DEBUG_ID}/s3only.sym?")
    assert "X-Amz-Signature=" in location
    assert headers["cache-control"] == "no-store"
    with urllib.request.urlopen(location, timeout=10) as response:
        assert response.read() == b"MODULE s3\n"

    # HEAD of a found symbol: 200, empty body.
    status, headers, body = app.request("HEAD", f"/xul.pdb/{DEBUG_ID}/xul.sym")
    assert status == 200
    assert body == b""
    assert headers["x-symbol-lookup"] == "found"

    # Not found anywhere: 404, recorded by the background writer.
    query = "?code_file=nope.dll&code_id=ABC"
    status, headers, body = app.request("GET", f"/nope.pdb/{DEBUG_ID}/nope.sym{query}")
    assert status == 404
    assert body == b"Symbol Not Found"
    assert headers["x-symbol-lookup"] == "not-found"
    status, headers, body = app.request("HEAD", f"/nope.pdb/{DEBUG_ID}/nope.sym")
    assert status == 404

    # Undecodable path bytes, percent-encoded: waitress hands them to the app as latin-1
    # characters; the name keeps its %XX text and is refused at step 3, never a 5xx.
    for target in (b"/x%FFy.pdb/ABC/x.sym", b"/try/x%C3%28.pdb/abc/x%FF.sym", b"/x.pdb/ABC/x%80.sym"):
        status, headers, body = app.raw(
            b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        assert status == 400, target
        assert headers["x-symbol-lookup"] == "invalid-name"
        assert body == b"Symbol name lookup contains invalid characters and will never be found."
    # The same bytes raw in the request line: waitress itself refuses the request target
    # ("Bad URI") before the app runs; still a 400, never a 5xx.
    for target in (b"/x\xffy.pdb/ABC/x.sym", b"/try/x\xc3(.pdb/ABC/x\xff.sym"):
        status, headers, body = app.raw(
            b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        assert status == 400, target
    # The server is still serving after them.
    assert app.request("GET", "/__lbheartbeat__")[0] == 200

    # A path that is not a download: the JSON 404.
    status, headers, body = app.request("GET", "/xul.pdb/xul.sym")
    assert status == 404
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body) == {"error": "Not Found", "path": "/xul.pdb/xul.sym"}

    # Health.
    status, headers, body = app.request("GET", "/__lbheartbeat__")
    assert status == 200
    status, headers, body = app.request("GET", "/__heartbeat__")
    assert headers["content-type"].startswith("application/json")
    beat = json.loads(body)
    expected_checks = {
        "database",
        "cache",
        f"storage file://{urllib.parse.quote(str(symbols_dir))}",
        f"storage {private_url}",
        f"storage file://{urllib.parse.quote(str(symbols_dir))}/try",
    }
    assert set(beat) == {"status", "checks"}
    assert set(beat["checks"]) == expected_checks
    for name, check in beat["checks"].items():
        assert set(check) == {"ok", "detail"}, name
        assert isinstance(check["ok"], bool) and isinstance(check["detail"], str)
    assert beat["status"] == "ok", beat
    assert status == 200
    assert all(check["ok"] for check in beat["checks"].values())
    assert SECRET not in body.decode()

    status, headers, body = app.request("GET", "/__version__")
    assert status == 200
    version = json.loads(body)
    assert isinstance(version["version"], str) and version["version"]

    # The miss lands in the database within a few seconds.
    engine = db.engine()
    try:
        end = time.monotonic() + 10
        row = None
        while time.monotonic() < end and row is None:
            with engine.connect() as conn:
                row = conn.execute(
                    text("SELECT symbol, debugid, filename, code_file, code_id FROM missing_symbol")
                ).first()
            if row is None:
                time.sleep(0.05)
    finally:
        engine.dispose()
    assert tuple(row) == ("nope.pdb", DEBUG_ID, "nope.sym", "nope.dll", "ABC")

    # SIGTERM: the process exits promptly.
    assert app.terminate() < 8
    assert app.proc.returncode == 0, app.output
    assert "Traceback" not in app.output


# -- misconfiguration stops start-up with one line -------------------------------------------------
def production_env(tmp_path, **overrides):
    env = base_env(
        TECKEN_SESSION_SECRET=SECRET,
        TECKEN_SYMBOL_URLS=str(tmp_path),
        TECKEN_DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite3",
    )
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@pytest.mark.parametrize(
    "overrides,setting",
    [
        ({"TECKEN_SESSION_SECRET": None}, "TECKEN_SESSION_SECRET"),
        ({"TECKEN_SESSION_SECRET": ""}, "TECKEN_SESSION_SECRET"),
        ({"TECKEN_SESSION_SECRET": "CHANGE-ME-to-64-random-characters"}, "TECKEN_SESSION_SECRET"),
        ({"TECKEN_SESSION_SECRET": "too-short"}, "TECKEN_SESSION_SECRET"),
        ({"TECKEN_STORAGE_DEADLINE": "abc"}, "TECKEN_STORAGE_DEADLINE"),
        ({"TECKEN_STORAGE_DEADLINE": "0"}, "TECKEN_STORAGE_DEADLINE"),
        ({"TECKEN_SECURE_COOKIES": "maybe"}, "TECKEN_SECURE_COOKIES"),
        ({"TECKEN_SYMBOL_URLS": None}, "TECKEN_SYMBOL_URLS"),
        ({"TECKEN_SYMBOL_URLS": "s3://bucket"}, "TECKEN_SYMBOL_URLS"),
        ({"TECKEN_DATABASE_URL": None}, "TECKEN_DATABASE_URL"),
        ({"TECKEN_MEMCACHED_SERVERS": "localhost"}, "TECKEN_MEMCACHED_SERVERS"),
    ],
    ids=[
        "secret-missing",
        "secret-empty",
        "secret-placeholder",
        "secret-short",
        "deadline-abc",
        "deadline-0",
        "bool",
        "urls-missing",
        "urls-bad",
        "db-missing",
        "memcached-bad",
    ],
)
def test_pserve_production_misconfiguration(tmp_path, overrides, setting):
    result = run_pserve_expecting_exit("production.ini", production_env(tmp_path, **overrides))
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout
    naming = [line for line in result.stderr.splitlines() if setting in line]
    assert len(naming) == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr


def test_pserve_development_misconfiguration(tmp_path):
    env = base_env(
        TECKEN_SYMBOL_URLS=str(tmp_path),
        TECKEN_STORAGE_DEADLINE="abc",
        TECKEN_DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite3",
    )
    result = run_pserve_expecting_exit("development.ini", env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if "TECKEN_STORAGE_DEADLINE" in line]


# -- production with an unreachable database -------------------------------------------------------
def test_production_with_unreachable_database_serves(pserve, symbols_dir, tmp_path):
    put_file(symbols_dir, f"v1/xul.pdb/{DEBUG_ID}/xul.sym")
    env = base_env(
        TECKEN_SESSION_SECRET=SECRET,
        TECKEN_SYMBOL_URLS=str(symbols_dir),
        TECKEN_DATABASE_URL=UNREACHABLE_DB,
    )
    started = time.monotonic()
    app = pserve("production.ini", env).wait_listening()
    assert time.monotonic() - started < 20
    status, headers, _ = app.request("GET", f"/xul.pdb/{DEBUG_ID}/xul.sym")
    assert status == 302
    assert headers["location"].endswith(f"/__files__/0/v1/xul.pdb/{DEBUG_ID}/xul.sym")
    status, headers, body = app.request("GET", f"/nope.pdb/{DEBUG_ID}/nope.sym")
    assert status == 404
    assert headers["x-symbol-lookup"] == "not-found"
    # The seed rules apply until the database answers.
    status, headers, _ = app.request("GET", f"/xul.pdb/{DEBUG_ID}/file.ptr")
    assert status == 404
    assert headers["x-symbol-lookup"] == "ignored"
    status, _, _ = app.request("GET", "/__lbheartbeat__")
    assert status == 200
    status, _, body = app.request("GET", "/__heartbeat__")
    assert status == 500
    beat = json.loads(body)
    assert beat["status"] == "error"
    assert beat["checks"]["database"]["ok"] is False
    assert beat["checks"]["database"]["detail"]
    # SIGTERM: the writer may spend up to 5 s trying to flush the queued miss.
    assert app.terminate() < 10
    assert "Traceback" not in app.output


# -- development.ini -------------------------------------------------------------------------------
def test_development_ini_listens_on_http_port(pserve, symbols_dir, tmp_path):
    put_file(symbols_dir, f"v1/xul.pdb/{DEBUG_ID}/xul.sym")
    env = base_env(
        TECKEN_SYMBOL_URLS=str(symbols_dir),
        TECKEN_DATABASE_URL=f"sqlite:///{tmp_path}/dev.sqlite3",
    )
    app = pserve("development.ini", env).wait_listening()
    status, headers, _ = app.request("GET", f"/xul.pdb/{DEBUG_ID}/xul.sym")
    assert status == 302
    assert headers["location"] == f"http://127.0.0.1:{app.port}/__files__/0/v1/xul.pdb/{DEBUG_ID}/xul.sym"
    status, _, _ = app.request("GET", "/__lbheartbeat__")
    assert status == 200
    assert app.terminate() < 8


# -- the server runner -----------------------------------------------------------------------------
def test_no_ini_file_mentions_http_port():
    ini_files = [
        path
        for path in glob.glob(os.path.join(ROOT, "**", "*.ini"), recursive=True)
        if not os.path.relpath(path, ROOT).startswith((".venv", "var", "node_modules", ".git"))
    ]
    assert os.path.join(ROOT, "development.ini") in ini_files
    assert os.path.join(ROOT, "production.ini") in ini_files
    for path in ini_files:
        with open(path) as f:
            assert "http_port" not in f.read(), f"{path} mentions http_port"


@pytest.mark.parametrize("ini,host", [("development.ini", "127.0.0.1"), ("production.ini", "0.0.0.0")])
def test_ini_server_sections(ini, host):
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(ROOT, ini))
    server = parser["server:main"]
    assert server["use"] == "egg:tecken-pyramid"
    assert server["host"] == host
    assert int(server["threads"]) >= 1


def test_server_runner_port_and_passthrough(monkeypatch):
    calls = []
    monkeypatch.setattr(server_mod.waitress, "serve", lambda app, **kw: calls.append(kw))
    monkeypatch.setattr(server_mod.signal, "signal", lambda *a: None)
    app = object()
    server_mod.serve(app, {}, host="0.0.0.0", threads="8")
    server_mod.serve(app, {"http_port": "8001"}, host="127.0.0.1", threads="4")
    assert calls[0]["port"] == 6543
    assert calls[0]["host"] == "0.0.0.0"
    assert calls[0]["threads"] == "8"
    assert calls[1]["port"] == 8001
    assert calls[1]["host"] == "127.0.0.1"
    assert calls[1]["threads"] == "4"
