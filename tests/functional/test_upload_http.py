"""Uploads over real HTTP through the project's waitress runner (SPEC §9 "Intake",
"Tokens"): the early 413, a readable 403 after a large body, chunked bodies, curl's
``Expect: 100-continue``, Mozilla's upload_symbols.py request shape."""

import http.client
import socket
import threading
import time

import pytest
import requests

from tecken_pyramid import server as server_mod
from tests.support.uploads import make_token, make_zip, sym_member

# The database kind changes nothing here: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent

DEBUG_ID = "44E4EC8C2F41492B9369D6B9A059577C2"


class Runner:
    """The app behind tecken_pyramid.server.create_server, as pserve runs it."""

    def __init__(self, testapp):
        from waitress import wasyncore

        wsgi = getattr(testapp, "app", testapp)
        kw = server_mod.upload_limits({}, testapp.registry.tecken)
        self.server = server_mod.create_server(wsgi, host="127.0.0.1", port=0, threads=4, **kw)
        self.port = self.server.effective_port
        self._stop = threading.Event()

        def run():
            while not self._stop.is_set():
                wasyncore.loop(timeout=0.05, map=self.server._map, count=1)
            self.server.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        self._stop.set()
        self.thread.join(timeout=5)


@pytest.fixture
def runner():
    started = []

    def start(testapp):
        started.append(Runner(testapp))
        return started[-1]

    yield start
    for r in started:
        r.close()


def read_response(sock, timeout=5.0):
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(
        next(
            (
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            b"0",
        )
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head.decode("latin-1"), rest


def test_an_oversize_content_length_is_413_before_any_body_byte(make_app, symbols_dir, db, runner):
    served = runner(make_app(symbol_urls=str(symbols_dir), upload_max_bytes="1000000"))
    token = make_token(db)
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(
            b"POST /upload/ HTTP/1.1\r\nHost: x\r\nAuth-Token: "
            + token.encode()
            + b"\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 5000000000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        started = time.monotonic()
        head, body = read_response(sock)
    assert head.startswith("HTTP/1.1 413"), head
    assert "100 Continue" not in head
    assert b"larger than the limit of 1000000 bytes" in body
    assert "connection: close" in head.lower()
    assert time.monotonic() - started < 2


def test_a_bad_token_on_a_50_mb_body_reads_a_403_not_a_reset(make_app, symbols_dir, db, runner):
    served = runner(make_app(symbol_urls=str(symbols_dir)))
    archive = b"PK" + b"\0" * (50 * 1024 * 1024)
    response = requests.post(
        f"{served.url}/upload/",
        files={"symbols.zip": ("symbols.zip", archive)},
        headers={"Auth-Token": "0" * 32},
        timeout=60,
    )
    assert response.status_code == 403
    assert response.json() == {"error": "API Token not matched"}


def test_a_chunked_upload_is_stored(make_app, symbols_dir, db, runner):
    served = runner(make_app(symbol_urls=str(symbols_dir)))
    token = make_token(db)
    boundary = "tecken-boundary"
    archive = make_zip([sym_member("xul.pdb", DEBUG_ID)])
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="symbols.zip"; filename="symbols.zip"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        + archive
        + f"\r\n--{boundary}--\r\n".encode()
    )

    def chunks():
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    connection.request(
        "POST",
        "/upload/",
        body=chunks(),
        headers={"Auth-Token": token, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        encode_chunked=True,
    )
    response = connection.getresponse()
    assert response.status == 201, response.read()
    assert (symbols_dir / "v1" / "xul.pdb" / DEBUG_ID / "xul.sym").exists()


def test_upload_symbols_py_request_shape(make_app, symbols_dir, db, runner):
    """As Mozilla's client sends it: field name symbols.zip, Auth-Token, no redirects."""
    served = runner(make_app(symbol_urls=str(symbols_dir)))
    token = make_token(db, permissions=("upload_try",))
    archive = make_zip([sym_member("xul.pdb", DEBUG_ID)])
    response = requests.post(
        f"{served.url}/upload/",
        files={"symbols.zip": open_bytes(archive)},
        headers={"Auth-Token": token},
        allow_redirects=False,
        timeout=(300, 300),
    )
    assert response.status_code == 201
    assert response.json()["upload"]["try_symbols"] is True


def open_bytes(data):
    import io

    return io.BytesIO(data)
