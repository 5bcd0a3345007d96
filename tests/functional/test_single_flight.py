"""Issue 7 item 6: identical concurrent lookups of an uncached key in one process make
one storage check (single flight), over a real waitress and moto's S3.

Between the app and moto sits a TCP forwarder this module owns: it counts the
HEAD requests that reach storage and holds each for a moment, so that all 16
clients arrive while the first check is still out (without the delay the flight
is a few milliseconds long and the test would measure the scheduler). Storage
calls are counted twice: at the forwarder, and by the app's own histogram.
"""

import http.client
import threading
import time
import urllib.parse

import pytest
from webtest.http import StopableWSGIServer

from tests.conftest import DEBUG_ID, PRIVATE_BUCKET
from tests.tcp_forwarder import TcpForwarder

# Nothing here depends on the database kind: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent

CLIENTS = 16
HOLD_SECONDS = 0.3


UNAVAILABLE = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class SlowCountingForwarder(TcpForwarder):
    """Counts requests going to storage, by method, and holds each before forwarding;
    with ``fail`` set it answers 503 itself after the hold (a storage outage)."""

    def __init__(self, target_host, target_port, hold=HOLD_SECONDS):
        super().__init__(target_host, target_port)
        self.hold = hold
        self.fail = False
        self.requests = {}

    def _pump(self, src, dst):
        try:
            upstream = dst.getpeername()[1] == self.target[1]
        except OSError:
            upstream = False
        if not upstream:
            return super()._pump(src, dst)
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                method = data.split(b" ", 1)[0].decode("ascii", "replace")
                if method in ("HEAD", "GET", "PUT", "POST", "DELETE"):
                    with self._lock:
                        self.requests[method] = self.requests.get(method, 0) + 1
                    time.sleep(self.hold)
                    if self.fail:
                        src.sendall(UNAVAILABLE)
                        break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                self._kill(s)


@pytest.fixture
def storage(s3):
    forwarder = SlowCountingForwarder("127.0.0.1", s3.port)
    forwarder.open()
    yield forwarder
    forwarder.close()


@pytest.fixture
def serve():
    servers = []

    def start(testapp):
        server = StopableWSGIServer.create(testapp.app, threads=CLIENTS + 4, connection_limit=100)
        assert server.wait()
        servers.append(server)
        return f"http://{server.adj.host}:{server.adj.port}"

    yield start
    for server in servers:
        server.shutdown()


def fetch_concurrently(urls, method="GET"):
    """Send every request at once (connections made first, then released together)."""
    barrier = threading.Barrier(len(urls))
    results = [None] * len(urls)

    def one(i, url):
        parts = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            conn.connect()
            barrier.wait(timeout=30)
            conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""))
            response = conn.getresponse()
            response.read()
            results[i] = (response.status, response.getheader("X-Symbol-Lookup"))
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(i, url)) for i, url in enumerate(urls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def storage_checks(registry):
    """How many storage checks the app made: tecken_storage_lookup_seconds_count, summed."""
    total = 0.0
    for family in registry.metrics.registry.collect():
        if family.name == "tecken_storage_lookup_seconds":
            total += sum(s.value for s in family.samples if s.name.endswith("_count"))
    return int(total)


def location_url(storage):
    return f"http://127.0.0.1:{storage.port}/{PRIVATE_BUCKET}"


@pytest.mark.parametrize("exists", [True, False], ids=["found", "not-found"])
def test_16_concurrent_lookups_of_a_new_key_make_one_storage_check(
    make_app, s3, storage, serve, memcached_clean, exists
):
    name = f"flight{int(exists)}.sym"
    if exists:
        s3.put(PRIVATE_BUCKET, f"v1/xul.pdb/{DEBUG_ID}/{name}")
    app = make_app(symbol_urls=location_url(storage), memcached_servers=memcached_clean.address)
    base = serve(app)
    results = fetch_concurrently([f"{base}/xul.pdb/{DEBUG_ID}/{name}"] * CLIENTS, method="HEAD")
    expected = (200, "found") if exists else (404, "not-found")
    assert results == [expected] * CLIENTS
    assert storage.requests == {"HEAD": 1}
    assert storage_checks(app.registry) == 1
    # The answer was cached once for everyone: the next request asks nobody.
    app.head(f"/xul.pdb/{DEBUG_ID}/{name}", status=expected[0])
    assert storage_checks(app.registry) == 1


def test_refresh_requests_join_the_flight(make_app, s3, storage, serve, memcached_clean):
    s3.put(PRIVATE_BUCKET, f"v1/xul.pdb/{DEBUG_ID}/xul.sym")
    app = make_app(symbol_urls=location_url(storage), memcached_servers=memcached_clean.address)
    base = serve(app)
    plain = f"{base}/xul.pdb/{DEBUG_ID}/xul.sym"
    results = fetch_concurrently([plain + ("?_refresh" if i % 2 else "") for i in range(CLIENTS)])
    assert results == [(302, "found")] * CLIENTS
    # Plain requests read the cache first (a miss), ?_refresh ones skip it; all of
    # them join the check in flight (two if a plain request's cache read was slow).
    assert storage.requests.get("HEAD", 0) <= 2
    assert storage_checks(app.registry) == storage.requests["HEAD"]


def test_a_failure_is_shared_with_the_flight_only(make_app, s3, storage, serve, memcached_clean):
    app = make_app(
        symbol_urls=location_url(storage), memcached_servers=memcached_clean.address, storage_retries="0"
    )
    base = serve(app)
    s3.put(PRIVATE_BUCKET, f"v1/xul.pdb/{DEBUG_ID}/down.sym")
    storage.fail = True
    results = fetch_concurrently([f"{base}/xul.pdb/{DEBUG_ID}/down.sym"] * CLIENTS)
    assert results == [(503, "unavailable")] * CLIENTS
    assert storage.requests == {"HEAD": 1}
    assert storage_checks(app.registry) == 1
    # Nothing was cached and the failure is not remembered: the next lookup, with
    # storage back, asks again and finds the key.
    storage.fail = False
    app.head(f"/xul.pdb/{DEBUG_ID}/down.sym", status=200)
    assert storage_checks(app.registry) == 2
