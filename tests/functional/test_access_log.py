"""The access log (SPEC §8, issue 6 item 14): one JSON line per request, the request
id echoed on every answer, nothing secret, waitress's queue warnings rate-limited."""

import io
import json
import logging
import subprocess
import time

import pytest

from tecken_pyramid.server import RateLimitFilter
from tests.conftest import ROOT, free_port, put_file, wait_for_port

from .test_serve import PSERVE, base_env

# Nothing here depends on the database kind: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent

FIELDS = {"time", "request_id", "client", "method", "path", "status", "duration_ms", "bytes", "user_agent"}


@pytest.fixture
def local(make_app, symbols_dir):
    app = make_app(symbol_urls=str(symbols_dir))
    put_file(str(symbols_dir), "v1/xul.pdb/ABC123/xul.sym")
    app.app.writer.stream = io.StringIO()  # the access log's stdout, captured
    return app


def raw_lines(app):
    app.app.writer.flush()
    return app.app.writer.stream.getvalue().splitlines()


def lines(app):
    return [json.loads(line) for line in raw_lines(app)]


def test_one_json_line_per_download(local):
    r = local.get(
        "/xul.pdb/ABC123/xul.sym?code_file=a&code_id=b", headers={"User-Agent": "stackwalk/1"}, status=302
    )
    [entry] = lines(local)
    assert set(entry) == FIELDS | {"x_symbol_lookup"}
    assert entry["method"] == "GET"
    assert entry["path"] == "/xul.pdb/ABC123/xul.sym?code_file=a&code_id=b"
    assert entry["status"] == 302
    assert entry["x_symbol_lookup"] == "found"
    assert entry["client"] == "127.0.0.1"
    assert entry["user_agent"] == "stackwalk/1"
    assert entry["bytes"] == int(r.headers["Content-Length"])
    assert entry["duration_ms"] > 0
    assert entry["request_id"] == r.headers["X-Request-Id"]
    assert entry["time"].endswith("+00:00")


@pytest.mark.parametrize("incoming", ["abc-123", "A.b_c-9", "x" * 128])
def test_valid_incoming_request_id_is_echoed(local, incoming):
    r = local.get("/xul.pdb/ABC123/nope.sym", headers={"X-Request-Id": incoming}, status=404)
    assert r.headers["X-Request-Id"] == incoming
    assert lines(local)[0]["request_id"] == incoming


@pytest.mark.parametrize("incoming", ["", "x" * 129, "a b", "a\u00e9", "a;b", "a/b"])
def test_invalid_incoming_request_id_is_replaced(local, incoming):
    r = local.get(
        "/xul.pdb/ABC123/nope.sym", headers={"X-Request-Id": incoming.encode().decode("latin-1")}, status=404
    )
    generated = r.headers["X-Request-Id"]
    assert generated != incoming and len(generated) == 32 and generated.isalnum()
    assert lines(local)[0]["request_id"] == generated


@pytest.mark.parametrize(
    "path, status",
    [("/a/b", 404), ("/__heartbeat__", 200), ("/missingsymbols/", 200), ("/admin/login", 200), ("/", 200)],
)
def test_every_answer_carries_a_request_id(local, path, status):
    assert local.get(path, status=status).headers["X-Request-Id"]


def test_405_and_head_are_logged(local):
    r = local.post("/xul.pdb/ABC123/xul.sym", status=405)
    local.head("/xul.pdb/ABC123/xul.sym", status=200)
    post, head = lines(local)
    assert r.headers["X-Request-Id"] == post["request_id"]
    assert (post["method"], post["status"]) == ("POST", 405)
    assert (head["method"], head["status"], head["bytes"]) == ("HEAD", 200, 0)


def test_streamed_body_bytes_are_counted(local):
    r = local.get("/missingsymbols.csv", status=200)
    [entry] = lines(local)
    assert entry["bytes"] == len(r.body) > 0


def test_control_characters_cannot_split_a_line(local):
    local.get(
        "/xul.pdb/ABC123/x.sym",
        params={"code_file": "a\nb\r\x00c"},
        headers={"User-Agent": "u\x7f"},
        expect_errors=True,
    )
    [message] = raw_lines(local)
    assert "\n" not in message and "\r" not in message and "\x00" not in message and message.isascii()
    assert json.loads(message)["path"] == "/xul.pdb/ABC123/x.sym?code_file=a%0Ab%0D%00c"


def test_nothing_secret_is_logged(local):
    local.get(
        "/xul.pdb/ABC123/x.sym?token=abcdef0123&Password=hunter2&code_id=1",
        headers={"Cookie": "tecken_session=SESSIONVALUE", "Auth-Token": "TOKENVALUE"},
        status=404,
    )
    local.post("/admin/login", {"username": "admin", "password": "PASSWORDVALUE"}, expect_errors=True)
    text = "\n".join(raw_lines(local))
    for secret in ("abcdef0123", "hunter2", "SESSIONVALUE", "TOKENVALUE", "PASSWORDVALUE"):
        assert secret not in text
    assert "token=***&Password=***&code_id=1" in text


def test_access_log_off(make_app, symbols_dir):
    app = make_app(symbol_urls=str(symbols_dir), access_log="false")
    assert app.app.writer is None and app.registry.access_log is None
    r = app.get("/xul.pdb/ABC123/nope.sym", status=404)
    assert r.headers["X-Request-Id"]  # still echoed


def test_rate_limit_filter_folds_repeats():
    f = RateLimitFilter(interval=60)
    record = logging.LogRecord(
        "waitress.queue", logging.WARNING, __file__, 1, "Task queue depth is %d", (3,), None
    )
    assert f.filter(record) is True
    assert not any(f.filter(logging.makeLogRecord(record.__dict__)) for _ in range(100))
    f._next = 0  # the minute is over
    later = logging.makeLogRecord({**record.__dict__, "msg": "Task queue depth is %d"})
    assert f.filter(later) is True
    assert "(100 similar warnings" in later.getMessage()


def test_pserve_production_writes_json_lines_on_stdout(tmp_path):
    port = free_port()
    env = base_env(
        TECKEN_SESSION_SECRET="k" * 40,
        TECKEN_SYMBOL_URLS=str(tmp_path),
        TECKEN_DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite3",
        TECKEN_MEMCACHED_SERVERS="",
    )
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(
            [PSERVE, "production.ini", f"http_port={port}"], cwd=ROOT, env=env, stdout=o, stderr=e
        )
        try:
            assert wait_for_port(port, timeout=30), err.read_text()
            import http.client

            for path in ("/__lbheartbeat__", "/xul.pdb/ABC123/xul.sym", "/nope"):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", path, headers={"X-Request-Id": "req-1"})
                conn.getresponse().read()
                conn.close()
            time.sleep(0.3)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    entries = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(x["path"], x["status"], x["request_id"]) for x in entries] == [
        ("/__lbheartbeat__", 200, "req-1"),
        ("/xul.pdb/ABC123/xul.sym", 404, "req-1"),
        ("/nope", 404, "req-1"),
    ]
    assert entries[1]["x_symbol_lookup"] == "not-found"
    assert '"request_id"' not in err.read_text()


def test_answers_without_content_length_through_waitress(make_app, symbols_dir, serve):
    """A 204 (the CORS preflight) has no Content-Length: its body is wrapped for
    counting, and waitress must still be able to send it (it probes __len__)."""
    import http.client

    app = make_app(symbol_urls=str(symbols_dir))
    served = serve(app)
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    conn.request("OPTIONS", "/xul.pdb/ABC/xul.sym", headers={"Access-Control-Request-Method": "GET"})
    r = conn.getresponse()
    r.read()
    assert r.status == 204
    conn.request("GET", "/missingsymbols.csv")
    r = conn.getresponse()
    assert r.status == 200 and r.read().startswith(b"debug_file,debug_id,code_file,code_id")
    conn.close()
