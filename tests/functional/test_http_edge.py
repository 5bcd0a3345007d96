"""HTTP framing and connection handling of the real ``pserve production.ini`` (issue 6,
items 12 and 13): request smuggling through ``Transfer-Encoding`` + ``Content-Length``,
and idle or slow clients that must not lock others out.

Everything runs over real sockets against the real server runner (tecken_pyramid.server)
with the ``[server:main]`` options of the ini files.
"""

import configparser
import os
import re
import resource
import socket
import time

import pytest

from tests.conftest import DEBUG_ID, ROOT, put_file
from tests.functional.test_serve import SECRET, base_env, pserve  # noqa: F401 - fixture

# Nothing here depends on the database kind: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent

D = DEBUG_ID
STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


@pytest.fixture
def production(pserve, symbols_dir, tmp_path):  # noqa: F811 - the imported fixture
    put_file(symbols_dir, f"v1/xul.pdb/{D}/xul.sym")
    env = base_env(
        TECKEN_SESSION_SECRET=SECRET,
        TECKEN_SYMBOL_URLS=str(symbols_dir),
        TECKEN_DATABASE_URL=f"sqlite:///{tmp_path}/prod.sqlite3",
        TECKEN_ACCESS_LOG="false",
    )
    return pserve("production.ini", env).wait_listening()


def exchange(port, data, timeout=5.0):
    """Send ``data`` on one connection; everything read until EOF, and whether EOF came."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        end = time.monotonic() + timeout
        closed = False
        while time.monotonic() < end:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            chunks.append(chunk)
    return b"".join(chunks), closed


def statuses(data):
    return [int(m.group(1)) for m in STATUS_LINE.finditer(data)]


# =====================================================================================
# Item 12: Transfer-Encoding and Content-Length on one request (RFC 9112 §6.1)
# =====================================================================================
SMUGGLED = b"GET /__lbheartbeat__ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
PATHS = [
    f"/xul.pdb/{D}/xul.sym",
    f"/try/xul.pdb/{D}/xul.sym",
    f"/__files__/0/v1/xul.pdb/{D}/xul.sym",
    "/__lbheartbeat__",
    "/__heartbeat__",
    "/",
    "/admin/login",
    "/nope",
    "/missingsymbols.csv",
]


def both_headers(method, path, te=b"chunked", version=b"HTTP/1.1", cl_first=False, extra=b""):
    body = b"0\r\n\r\n"
    te_line = b"Transfer-Encoding: " + te + b"\r\n"
    cl_line = b"Content-Length: " + str(len(body) + len(SMUGGLED)).encode() + b"\r\n"
    head = (
        method.encode()
        + b" "
        + path.encode()
        + b" "
        + version
        + b"\r\nHost: 127.0.0.1\r\n"
        + (cl_line + te_line if cl_first else te_line + cl_line)
        + extra
        + b"\r\n"
    )
    return head + body + SMUGGLED


def assert_one_400_and_closed(port, data):
    answer, closed = exchange(port, data)
    assert statuses(answer) == [400], answer[:2000]
    head = answer.partition(b"\r\n\r\n")[0].lower()
    assert b"\r\nconnection: close" in head, answer[:2000]
    assert closed, "the connection stayed open after the 400"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", ["POST", "GET", "OPTIONS"])
def test_chunked_and_content_length_answers_one_400_and_closes(production, method, path):
    assert_one_400_and_closed(production.port, both_headers(method, path))


@pytest.mark.parametrize(
    "variant",
    [
        {"cl_first": True},
        {"te": b"Chunked"},
        {"te": b"CHUNKED"},
        {"te": b"chunked", "extra": b"Connection: keep-alive\r\n"},
        {"version": b"HTTP/1.0", "extra": b"Connection: keep-alive\r\n"},
        {"version": b"HTTP/1.0"},
    ],
    ids=["cl-first", "te-capitalised", "te-upper", "keep-alive", "http10-keep-alive", "http10"],
)
def test_chunked_and_content_length_variants(production, variant):
    assert_one_400_and_closed(production.port, both_headers("POST", f"/xul.pdb/{D}/xul.sym", **variant))


def test_te_and_cl_after_a_good_request_on_the_same_connection(production):
    # A first, ordinary request is answered; the smuggling one gets the 400 and the end.
    good = b"GET /__lbheartbeat__ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    answer, closed = exchange(production.port, good + both_headers("POST", "/__lbheartbeat__"))
    assert statuses(answer) == [200, 400], answer[:2000]
    assert closed


def test_ordinary_framing_still_works(production):
    # Chunked alone, Content-Length alone, and pipelined keep-alive requests are unaffected.
    port = production.port
    chunked = (
        b"POST /__lbheartbeat__ HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\ndata\r\n0\r\n\r\n"
    )
    sized = b"POST /__lbheartbeat__ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n\r\ndata"
    last = b"GET /__lbheartbeat__ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    answer, closed = exchange(port, chunked + sized + last)
    assert statuses(answer) == [405, 405, 200], answer[:2000]
    assert closed
    # The server still serves after the refused requests.
    assert production.request("GET", f"/xul.pdb/{D}/xul.sym")[0] == 302


def test_chunked_and_content_length_leaves_no_traceback(production):
    for path in PATHS[:3]:
        assert_one_400_and_closed(production.port, both_headers("POST", path))
    assert production.request("GET", "/__lbheartbeat__")[0] == 200
    assert "Traceback" not in production.output


# =====================================================================================
# Item 13: idle and slow connections must not lock other clients out
# =====================================================================================
IDLE_CONNECTIONS = 1000


def raise_nofile(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        pytest.fail(f"RLIMIT_NOFILE is {soft}; this test needs {needed} file descriptors")


def server_sockets(pid):
    """How many sockets the server process holds open (its accepted connections)."""
    count = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


def open_connections(port, count, first_bytes=b""):
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if first_bytes:
            s.sendall(first_bytes)
        socks.append(s)
    return socks


def timed_request(port, path="/__lbheartbeat__", timeout=2.0):
    """(status, seconds) of one fresh client's request; status None when no answer came in time."""
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            request = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            sock.sendall(request)
            data = sock.recv(65536)
    except (TimeoutError, OSError):
        return None, time.perf_counter() - started
    elapsed = time.perf_counter() - started
    found = statuses(data)
    return (found[0] if found else None), elapsed


def wait_accepted(proc, count, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if server_sockets(proc.pid) >= count:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize(
    "first_bytes",
    [b"", b"GET /__lbheartbeat__ HTTP/1.1\r\nHost: 127.0.0.1\r\n"],
    ids=["idle", "partial-request"],
)
def test_a_thousand_idle_connections_do_not_lock_out_a_new_client(production, first_bytes):
    raise_nofile(IDLE_CONNECTIONS + 256)
    port = production.port
    socks = open_connections(port, IDLE_CONNECTIONS, first_bytes)
    try:
        # Wait (bounded) until the server has accepted them all, so the next client really
        # comes after them; with waitress's defaults (connection_limit 100) it never does.
        accepted = wait_accepted(production.proc, IDLE_CONNECTIONS)
        latencies = []
        for _ in range(5):
            status, elapsed = timed_request(port)
            assert status == 200, f"no answer within 2 s behind {IDLE_CONNECTIONS} idle connections"
            latencies.append(elapsed)
        status, elapsed = timed_request(port, f"/xul.pdb/{D}/xul.sym")
        assert status == 302
        latencies.append(elapsed)
        print(
            f"\n{first_bytes and 'partial' or 'idle'}: accepted={accepted} latencies ms:",
            [round(x * 1000, 1) for x in latencies],
        )
        assert accepted, "the server did not accept the idle connections"
    finally:
        for s in socks:
            s.close()
    assert production.request("GET", "/__lbheartbeat__")[0] == 200
    assert "Traceback" not in production.output


# The options both ini files set (waitress's own names; values arrive as strings).
SERVER_OPTIONS = {
    "connection_limit",
    "channel_timeout",
    "cleanup_interval",
    "backlog",
    "asyncore_use_poll",
    "max_request_header_size",
}


@pytest.mark.parametrize("ini", ["development.ini", "production.ini"])
def test_ini_server_sections_bound_idle_and_slow_clients(ini):
    from waitress.adjustments import Adjustments

    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(ROOT, ini))
    section = dict(parser["server:main"])
    assert SERVER_OPTIONS <= set(section), SERVER_OPTIONS - set(section)
    options = {k: v for k, v in section.items() if k not in ("use", "host")}
    adj = Adjustments(**options)  # strings, as PasteDeploy passes them
    assert adj.asyncore_use_poll is True  # select() cannot watch more than 1024 descriptors
    assert adj.connection_limit >= 2 * IDLE_CONNECTIONS
    assert adj.backlog >= 1024
    assert 0 < adj.cleanup_interval <= 10
    assert adj.cleanup_interval < adj.channel_timeout <= 60
    assert adj.max_request_header_size >= 16384  # 8 KB paths and query strings still fit
