"""The runner's task (tecken_pyramid.server.RunnerTask): a response's header goes out
in the same send as its first body chunk, and the bytes are exactly waitress's own
(its header builder is waitress's with names and dates made once).

Each case runs the same app on a real waitress server twice, once as waitress builds it
and once as the runner does, and reads the raw bytes off a socket; the channel of each
counts its ``send`` calls (a subclass that counts, nothing faked).
"""

import re
import socket
import threading

import pytest
import waitress.server

from tecken_pyramid import server as server_mod

pytestmark = pytest.mark.database_independent

NOT_FOUND_BODY = b"Symbol Not Found (and ignored)"


def not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "30")])
    return [NOT_FOUND_BODY]


def streamed(environ, start_response):
    # No Content-Length: waitress frames it chunked on HTTP/1.1.
    start_response("200 OK", [("Content-Type", "text/csv")])
    return [b"a,b\r\n", b"", b"1,2\r\n", b"3,4\r\n"]


def too_long(environ, start_response):
    start_response("200 OK", [("Content-Length", "3")])
    return [b"abcdef"]


def empty(environ, start_response):
    start_response("302 Found", [("Location", "http://example.com/x"), ("Content-Length", "0")])
    return [b""]


class Sends:
    def __init__(self):
        self.sizes = []


def serve(create, app):
    """A running server built by ``create`` whose channels count their sends."""
    srv = create(app, host="127.0.0.1", port=0, threads=1, ident="tecken-pyramid")
    sends = Sends()
    for dispatcher in list(srv._map.values()):
        if isinstance(dispatcher, waitress.server.BaseWSGIServer):
            base = dispatcher.channel_class

            class CountingChannel(base):
                def send(self, data, do_close=True):
                    sends.sizes.append(len(data))
                    return super().send(data, do_close)

            dispatcher.channel_class = CountingChannel
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    return srv, thread, sends


def exchange(port, request, until):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while not until(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def run(create, app, request, until):
    srv, thread, sends = serve(create, app)
    try:
        raw = exchange(srv.effective_port, request, until)
    finally:
        srv.close()
        thread.join(timeout=5)
    assert sum(sends.sizes) == len(raw)  # every byte sent was read
    # The Date header is the only part that may differ between two runs.
    return re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: -", raw), sends.sizes


def both(app, request, until):
    stock = run(waitress.server.create_server, app, request, until)
    ours = run(server_mod.create_server, app, request, until)
    return stock, ours


def get(path="/", method="GET", close=False):
    headers = b"Host: symbols.example.com\r\n" + (b"Connection: close\r\n" if close else b"")
    return method.encode() + b" " + path.encode() + b" HTTP/1.1\r\n" + headers + b"\r\n"


def test_a_small_answer_with_a_body_is_one_send_of_waitress_own_bytes():
    (stock_raw, stock_sends), (raw, sends) = both(not_found, get(), lambda d: d.endswith(NOT_FOUND_BODY))
    assert raw == stock_raw
    assert raw.startswith(b"HTTP/1.1 404 Not Found\r\n") and raw.endswith(b"\r\n\r\n" + NOT_FOUND_BODY)
    assert len(stock_sends) == 2  # waitress alone: the header, then the body
    assert len(sends) == 1


def test_three_requests_on_one_connection_are_three_sends():
    request = get() * 3
    srv, thread, sends = serve(server_mod.create_server, not_found)
    try:
        raw = exchange(srv.effective_port, request, lambda d: d.count(NOT_FOUND_BODY) == 3)
    finally:
        srv.close()
        thread.join(timeout=5)
    assert raw.count(b"HTTP/1.1 404 Not Found") == 3
    assert len(sends.sizes) == 3 and sum(sends.sizes) == len(raw)


def no_content_with_a_body(environ, start_response):
    start_response("204 No Content", [])
    return [b"ignored"]


def test_a_204_sends_the_header_only_as_waitress_does():
    # waitress drops the body of a 204 (and of 1xx and 304); the header still goes out.
    request = get(close=True)
    (stock_raw, _), (raw, sends) = both(no_content_with_a_body, request, lambda d: d.endswith(b"\r\n\r\n"))
    assert raw == stock_raw
    assert raw.startswith(b"HTTP/1.1 204 No Content\r\n") and b"ignored" not in raw
    assert len(sends) == 1


def test_a_streamed_body_keeps_waitress_chunked_framing():
    request = get(close=True)
    (stock_raw, _), (raw, _) = both(streamed, request, lambda d: d.endswith(b"0\r\n\r\n"))
    assert raw == stock_raw
    assert b"Transfer-Encoding: chunked" in raw
    assert raw.endswith(b"5\r\na,b\r\n\r\n5\r\n1,2\r\n\r\n5\r\n3,4\r\n\r\n0\r\n\r\n")


def test_a_body_longer_than_its_content_length_is_cut_as_waitress_cuts_it():
    (stock_raw, _), (raw, sends) = both(too_long, get(), lambda d: d.endswith(b"abc"))
    assert raw == stock_raw and raw.endswith(b"\r\n\r\nabc")
    assert len(sends) == 1


def test_an_empty_body_is_the_header_alone():
    (stock_raw, _), (raw, sends) = both(empty, get(), lambda d: d.endswith(b"\r\n\r\n"))
    assert raw == stock_raw
    assert len(sends) == 1


def own_headers(environ, start_response):
    # Lower-case and odd-case names, an app-set Date and Server, a repeated name whose
    # order must stay, and a Content-Length the app gives.
    start_response(
        "200 OK",
        [
            ("content-type", "text/plain"),
            ("x-symbol-LOOKUP", "found"),
            ("Set-Cookie", "b=2"),
            ("set-cookie", "a=1"),
            ("Server", "app"),
            ("date", "Mon, 01 Jan 2024 00:00:00 GMT"),
            ("CONTENT-LENGTH", "2"),
        ],
    )
    return [b"ok"]


def unsized(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"abc"]


@pytest.mark.parametrize(
    "app, request_bytes, until",
    [
        (own_headers, get(), lambda d: d.endswith(b"ok")),
        (not_found, b"GET / HTTP/1.0\r\n\r\n", lambda d: d.endswith(NOT_FOUND_BODY)),
        (
            not_found,
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            lambda d: d.endswith(NOT_FOUND_BODY),
        ),
        (unsized, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", lambda d: d.endswith(b"abc")),
        (not_found, get(close=True), lambda d: d.endswith(NOT_FOUND_BODY)),
        (unsized, get(), lambda d: d.endswith(b"abc")),  # one chunk: waitress counts it
    ],
    ids=["app-headers", "http10", "http10-keep-alive", "http10-keep-alive-unsized", "close", "one-chunk"],
)
def test_the_header_is_waitress_own(app, request_bytes, until):
    (stock_raw, _), (raw, _) = both(app, request_bytes, until)
    assert raw == stock_raw
