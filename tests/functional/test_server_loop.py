"""The runner's event loop (tecken_pyramid.server): waitress's poll loop waits on epoll,
because ``select.poll()`` was measured 10x slower on this project's Linux hosts."""

import http.client
import select
import threading

import pytest

from tecken_pyramid import server as server_mod

pytestmark = pytest.mark.database_independent


def fixed_302(environ, start_response):
    start_response("302 Found", [("Location", "http://example.com/x"), ("Content-Length", "0")])
    return [b""]


def test_the_poll_loop_waits_on_epoll_and_serves_keep_alive_requests():
    server = server_mod.create_server(fixed_302, host="127.0.0.1", port=0, threads=2, asyncore_use_poll=True)
    # Where there is no epoll (not Linux) the loop stays waitress's own; served either way.
    assert isinstance(server.asyncore, server_mod.EpollAsyncore) == hasattr(select, "epoll")
    stop = threading.Event()

    def run():
        while not stop.is_set():
            server.asyncore.loop(timeout=0.05, use_poll=True, map=server._map, count=1)
        server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=5)
        for _ in range(50):  # one keep-alive connection: every turn of the loop must see it
            connection.request("GET", "/")
            response = connection.getresponse()
            response.read()
            assert response.status == 302
        connection.close()
    finally:
        stop.set()
        thread.join(timeout=5)


def test_everything_but_the_loop_is_waitress_own():
    from waitress import wasyncore

    shim = server_mod.EpollAsyncore()
    assert shim.dispatcher is wasyncore.dispatcher and shim.readwrite is wasyncore.readwrite
