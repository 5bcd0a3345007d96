"""SPEC §9 upload by download (``url=``) against real local HTTP servers, and the intake of a
chunked body behind the project's real waitress server.

The source servers are ``http.server.ThreadingHTTPServer`` on 127.0.0.1, listed as
``http://127.0.0.1:PORT`` (the only way a loopback address may be fetched from).
"""

import hashlib
import http.client
import http.server
import io
import ipaddress
import json
import os
import socket
import threading
import time
import zipfile

import pytest
import urllib3

from tecken_pyramid import upload_fetch
from tecken_pyramid.server import create_server
from tecken_pyramid.upload_fetch import MAX_REDIRECTS, FetchError, fetch, parse_allowed, refused_address
from tecken_pyramid.upload_intake import IntakeError, read_upload
from tests.support.services import free_port, missing_service

pytestmark = pytest.mark.database_independent


def make_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("xul.pdb/0123456789ABCDEF0123456789ABCDEF0/xul.sym", b"MODULE windows x86_64 0 xul.pdb\n")
    return buf.getvalue()


ZIP = make_zip()


class Source:
    """A local HTTP server; ``routes[path]`` is (status, headers, body) or a callable(handler)."""

    def __init__(self):
        source = self
        self.requests = []  # (path, Host header)
        self.release = threading.Event()  # ends the slow responses at teardown
        self.routes = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                source.requests.append((self.path, self.headers.get("Host")))
                route = source.routes.get(self.path, (404, {}, b"not found"))
                if callable(route):
                    return route(self)
                status, headers, body = route
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.daemon = True
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def entry(self):
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def redirect(location, status=302):
    return (status, {"Location": location}, b"")


@pytest.fixture
def sources():
    made = []

    def make():
        made.append(Source())
        return made[-1]

    yield make
    for source in made:
        source.close()


@pytest.fixture
def source(sources):
    src = sources()
    src.routes.update(
        {
            "/symbols.zip": (200, {"Content-Type": "application/zip"}, ZIP),
            "/dir/Symbols.ZIP": (200, {}, ZIP),
            "/relative": redirect("dir/Symbols.ZIP"),
            "/absolute-path": redirect("/symbols.zip", 301),
            "/missing.zip": (404, {}, b"gone"),
            "/forbidden.zip": (403, {}, b"no"),
            "/error.zip": (500, {}, b"oops"),
            "/unavailable.zip": (503, {}, b"later"),
            "/busy.zip": (429, {"Retry-After": "1"}, b"slow down"),
            "/no-content.zip": (204, {}, b""),
            "/symbols.tar": (200, {}, b"tar"),
            "/no-location": (302, {}, b""),
            "/loop": redirect("/loop"),
        }
    )
    for n in range(1, MAX_REDIRECTS + 2):  # /chain/N: N redirects, then the zip
        src.routes[f"/chain/{n}"] = redirect(f"/chain/{n - 1}" if n > 1 else "/symbols.zip")
    return src


def listed(*sources, hosts=()):
    return parse_allowed(tuple(hosts) + tuple(s.entry for s in sources))


def get(url, allowed, tmp_path, **kw):
    kw.setdefault("max_bytes", 10_000_000)
    kw.setdefault("connect_timeout", 2.0)
    kw.setdefault("read_timeout", 2.0)
    return fetch(url, allowed, tempdir=str(tmp_path), **kw)


def refused(url, allowed, tmp_path, status=400, **kw):
    with pytest.raises(FetchError) as info:
        get(url, allowed, tmp_path, **kw)
    assert info.value.status == status, str(info.value)
    assert os.listdir(tmp_path) == []  # nothing left behind
    return str(info.value)


@pytest.fixture
def no_network(monkeypatch):
    """Any name lookup or connection fails the test."""

    def forbidden(*args, **kwargs):
        raise AssertionError(f"network used: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)


def fake_dns(monkeypatch, answers):
    """Resolve the names in ``answers`` to the given addresses; others as usual."""
    real = socket.getaddrinfo
    calls = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            calls.append(host)
            out = []
            for address in answers[host]:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                sockaddr = (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
                out.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
            return out
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


# -- happy paths ----------------------------------------------------------------------------
def test_a_listed_http_endpoint_is_fetched_into_a_temporary_file(source, tmp_path):
    with get(source.url("/symbols.zip"), listed(source), tmp_path) as fetched:
        assert (fetched.name, fetched.size, fetched.redirect_urls) == ("symbols.zip", len(ZIP), [])
        assert fetched.sha256 == hashlib.sha256(ZIP).hexdigest()
        assert fetched.url == source.url("/symbols.zip")
        assert os.path.dirname(fetched.path) == str(tmp_path)
        with open(fetched.path, "rb") as fp:
            assert fp.read() == ZIP
    assert os.listdir(tmp_path) == []
    assert source.requests == [("/symbols.zip", f"127.0.0.1:{source.port}")]


def test_relative_and_absolute_path_redirects_are_resolved_and_recorded(source, tmp_path):
    with get(source.url("/relative"), listed(source), tmp_path) as fetched:
        assert fetched.name == "Symbols.ZIP"  # .zip in any case
        assert fetched.redirect_urls == [source.url("/dir/Symbols.ZIP")]
    with get(source.url("/absolute-path"), listed(source), tmp_path) as fetched:
        assert fetched.redirect_urls == [source.url("/symbols.zip")]
        assert fetched.url == source.url("/absolute-path")


def test_a_redirect_to_another_listed_host_is_followed(sources, tmp_path):
    first, second = sources(), sources()
    second.routes["/final/symbols.zip"] = (200, {}, ZIP)
    first.routes["/go"] = redirect(second.url("/final/symbols.zip"))
    with get(first.url("/go"), listed(first, second), tmp_path) as fetched:
        assert fetched.redirect_urls == [second.url("/final/symbols.zip")]
        assert fetched.size == len(ZIP)


def test_five_redirects_are_followed_and_a_sixth_is_refused(source, tmp_path):
    with get(source.url(f"/chain/{MAX_REDIRECTS}"), listed(source), tmp_path) as fetched:
        assert len(fetched.redirect_urls) == MAX_REDIRECTS
    url = source.url(f"/chain/{MAX_REDIRECTS + 1}")
    assert refused(url, listed(source), tmp_path) == f"Too many redirects trying to open {url}"
    url = source.url("/loop")
    assert refused(url, listed(source), tmp_path) == f"Too many redirects trying to open {url}"


# -- every hop checked ----------------------------------------------------------------------
def test_a_redirect_to_an_unlisted_host_is_refused_without_contacting_it(sources, tmp_path):
    first, unlisted = sources(), sources()
    unlisted.routes["/symbols.zip"] = (200, {}, ZIP)
    first.routes["/to-evil"] = redirect("https://evil.example/symbols.zip")
    first.routes["/to-unlisted-port"] = redirect(unlisted.url("/symbols.zip"))
    message = refused(first.url("/to-evil"), listed(first), tmp_path)
    assert message == "Not an allowed domain ('evil.example') to download from."
    assert refused(first.url("/to-unlisted-port"), listed(first), tmp_path) == "Insecure URL"
    assert unlisted.requests == []


def test_a_redirect_to_a_listed_name_on_a_loopback_address_is_refused(source, tmp_path, monkeypatch):
    fake_dns(monkeypatch, {"allowed.example": ["127.0.0.1"]})
    source.routes["/to-allowed"] = redirect("https://allowed.example/symbols.zip")
    message = refused(source.url("/to-allowed"), listed(source, hosts=["allowed.example"]), tmp_path)
    assert message == "'allowed.example' resolves to 127.0.0.1, not a public address: refused"


def test_loopback_is_refused_unless_listed_as_http_host_port(source, tmp_path):
    url = source.url("/symbols.zip")
    assert refused(url, parse_allowed(()), tmp_path) == "Insecure URL"
    assert refused(url, parse_allowed(("127.0.0.1",)), tmp_path) == "Insecure URL"  # https-only entry
    other_port = parse_allowed((f"http://127.0.0.1:{free_port()}",))
    assert refused(url, other_port, tmp_path) == "Insecure URL"
    message = refused("https://127.0.0.1/symbols.zip", parse_allowed(("127.0.0.1",)), tmp_path)
    assert "not a public address" in message
    assert source.requests == []


# -- URL rules, no network ------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "https://allowed.example:@evil.example/x.zip",  # Tecken's netloc.split(":")[0] sees allowed.example
        "https://allowed.example@evil.example/x.zip",
        "https://user@allowed.example/x.zip",
        "https://user:secret@allowed.example/x.zip",
        "https://:@allowed.example/x.zip",
        "https://@allowed.example/x.zip",
    ],
)
def test_user_info_is_refused_before_any_network_call(url, tmp_path, no_network):
    message = refused(url, parse_allowed(("allowed.example",)), tmp_path)
    assert message == "A URL to download from must not contain user information (user@host)"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.mozilla.org/", "Not an allowed domain ('www.mozilla.org') to download from."),
        (
            "https://allowed.example.evil.example/x.zip",
            "Not an allowed domain ('allowed.example.evil.example') ",
        ),
        ("https://evil.example/allowed.example/x.zip", "Not an allowed domain ('evil.example') "),
        ("http://allowed.example/x.zip", "Insecure URL"),
        ("ftp://allowed.example/x.zip", "Insecure URL"),
        ("https://allowed.example:8443/x.zip", "Port 8443 is not allowed for 'allowed.example'"),
        ("https://allowed.example:80/x.zip", "Port 80 is not allowed"),
        ("https://allowed.example:99999/x.zip", "Enter a valid URL."),
        ("https://allowed.example:port/x.zip", "Enter a valid URL."),
        ("https://[::1/x.zip", "Enter a valid URL."),
        ("allowed.example/x.zip", "Enter a valid URL."),
        ("https:///x.zip", "Enter a valid URL."),
        ("", "Enter a valid URL."),
    ],
)
def test_refused_urls_never_reach_the_network(url, expected, tmp_path, no_network):
    assert refused(url, parse_allowed(("allowed.example",)), tmp_path).startswith(expected)


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.1.2.3"],
        ["192.168.0.10"],
        ["172.16.5.4"],
        ["169.254.169.254"],  # cloud metadata
        ["100.64.0.1"],  # shared address space
        ["0.0.0.0"],
        ["224.0.0.1"],
        ["::1"],
        ["fe80::1"],
        ["fc00::1"],
        ["::ffff:127.0.0.1"],  # IPv4-mapped loopback
        ["93.184.216.34", "10.0.0.1"],  # any one refused refuses the host
    ],
)
def test_a_listed_https_name_resolving_to_a_non_public_address_is_refused(addresses, tmp_path, monkeypatch):
    fake_dns(monkeypatch, {"allowed.example": addresses})
    message = refused("https://allowed.example/x.zip", parse_allowed(("allowed.example",)), tmp_path)
    assert "not a public address: refused" in message


def test_refused_address_classification():
    assert not refused_address(ipaddress.ip_address("93.184.216.34"))
    assert not refused_address(ipaddress.ip_address("2606:2800:220:1:248:1893:25c8:1946"))
    assert refused_address(ipaddress.ip_address("::ffff:10.0.0.1"))


class FakePool:
    """Stands in for urllib3's pools: records how the connection would be made."""

    made = []

    def __init__(self, host, port, **kw):
        self.host, self.port, self.kw = host, port, kw
        FakePool.made.append(self)

    def urlopen(self, method, url, **kw):
        self.request = (method, url, kw)
        return urllib3.HTTPResponse(
            body=io.BytesIO(ZIP), headers={"Content-Length": str(len(ZIP))}, status=200, preload_content=False
        )

    def close(self):
        pass


def test_https_connects_to_the_checked_address_with_the_name_for_host_sni_and_certificate(
    tmp_path, monkeypatch
):
    calls = fake_dns(monkeypatch, {"allowed.example": ["93.184.216.34"]})
    FakePool.made = []
    monkeypatch.setattr(upload_fetch.urllib3, "HTTPSConnectionPool", FakePool)
    url = "https://ALLOWED.example/path/to/symbols%20v2.zip?sig=a%2Fb&x=1#frag"
    with get(url, parse_allowed(("Allowed.Example",)), tmp_path) as fetched:
        assert fetched.name == "symbols v2.zip"
        assert fetched.size == len(ZIP)
    assert calls == ["allowed.example"]  # one lookup: the connection goes to its answer
    (pool,) = FakePool.made
    assert (pool.host, pool.port) == ("93.184.216.34", 443)
    assert pool.kw["server_hostname"] == "allowed.example"
    assert pool.kw["assert_hostname"] == "allowed.example"
    assert pool.kw["cert_reqs"] == "CERT_REQUIRED"
    method, target, kw = pool.request
    assert (method, target) == ("GET", "/path/to/symbols%20v2.zip?sig=a%2Fb&x=1")
    assert kw["headers"]["Host"] == "allowed.example"
    assert kw["redirect"] is False and kw["retries"] is False and kw["preload_content"] is False


# -- failures from the source ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "status", "expected"),
    [
        ("/missing.zip", 400, "{url} can't be found (404)"),  # Tecken's text
        ("/forbidden.zip", 400, "{url} can't be found (403)"),
        ("/error.zip", 503, "{url} errored (500)"),  # temporary: clients retry
        ("/unavailable.zip", 503, "{url} errored (503)"),
        ("/busy.zip", 503, "{url} errored (429)"),
        ("/no-content.zip", 400, "non-200 status code (204) when retrieving {url}"),
        ("/no-location", 400, "{url} redirects (302) without a Location"),
        ("/symbols.tar", 400, 'Unrecognized archive file extension ".tar"'),
    ],
)
def test_answers_from_the_source(source, tmp_path, path, status, expected):
    url = source.url(path)
    assert refused(url, listed(source), tmp_path, status=status) == expected.format(url=url)


def test_a_connection_refused_is_503(tmp_path):
    port = free_port()
    message = refused(
        f"http://127.0.0.1:{port}/x.zip", parse_allowed((f"http://127.0.0.1:{port}",)), tmp_path, 503
    )
    assert message.startswith(f"ConnectionError trying to open http://127.0.0.1:{port}/x.zip")


def test_a_response_that_never_comes_is_a_503_timeout(source, tmp_path):
    def hang(handler):
        source.release.wait(10)

    source.routes["/slow.zip"] = hang
    started = time.monotonic()
    message = refused(source.url("/slow.zip"), listed(source), tmp_path, 503, read_timeout=0.3)
    assert message == f"Timed out trying to open {source.url('/slow.zip')}"
    assert time.monotonic() - started < 3


def test_a_body_that_stalls_is_a_503_timeout_and_leaves_no_file(source, tmp_path):
    def stall(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        handler.wfile.write(b"PK" * 100)
        handler.wfile.flush()
        source.release.wait(10)

    source.routes["/stall.zip"] = stall
    message = refused(source.url("/stall.zip"), listed(source), tmp_path, 503, read_timeout=0.3)
    assert message.startswith("Timed out trying to open")


def test_a_body_shorter_than_its_content_length_is_a_503(source, tmp_path):
    def short(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(b"PK" * 100)
        handler.close_connection = True

    source.routes["/short.zip"] = short
    assert refused(source.url("/short.zip"), listed(source), tmp_path, 503).startswith("ConnectionError")


def test_a_download_over_the_limit_is_400_by_content_length_and_while_streaming(source, tmp_path):
    source.routes["/big.zip"] = (200, {}, b"x" * 5000)

    def unsized(handler):  # no Content-Length: the body ends when the connection closes
        handler.send_response(200)
        handler.send_header("Connection", "close")
        handler.end_headers()
        for _ in range(50):
            handler.wfile.write(b"x" * 1000)
        handler.close_connection = True

    source.routes["/unsized.zip"] = unsized
    for path in ("/big.zip", "/unsized.zip"):
        message = refused(source.url(path), listed(source), tmp_path, max_bytes=4000)
        assert message == f"{source.url(path)} is larger than the limit of 4000 bytes"
    with get(source.url("/unsized.zip"), listed(source), tmp_path) as fetched:
        assert fetched.size == 50_000


def test_parse_allowed():
    allowed = parse_allowed(("Queue.Example", " http://127.0.0.1:8000 ", "", "http://Mirror.Internal:80"))
    assert allowed.hosts == {"queue.example"}
    assert allowed.endpoints == {("127.0.0.1", 8000), ("mirror.internal", 80)}
    for bad in ("https://queue.example", "http://host", "http://host:8000/path", "host:443", "u@host"):
        with pytest.raises(ValueError):
            parse_allowed((bad,))


# -- read_upload behind the project's waitress: chunked bodies ------------------------------
class Waitress:
    """tecken_pyramid.server.create_server (the production channel) around a WSGI app."""

    def __init__(self, app, upload_max_bytes):
        self.server = create_server(
            app, upload_max_bytes=upload_max_bytes, host="127.0.0.1", port=free_port(), threads=2
        )
        self.port = self.server.effective_port
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        from waitress import wasyncore

        while not self._stop.is_set():
            wasyncore.loop(timeout=0.05, map=self.server._map, count=1)
        self.server.close()

    def close(self):
        self._stop.set()
        self.thread.join(timeout=5)


@pytest.fixture
def intake_server(tmp_path):
    servers = []

    def start(max_bytes):
        def app(environ, start_response):
            seen = {
                "content_length": environ.get("CONTENT_LENGTH"),
                "terminated": environ.get("wsgi.input_terminated"),
            }
            try:
                with read_upload(environ, tempdir=str(tmp_path), max_bytes=max_bytes) as intake:
                    status, answer = (
                        "200 OK",
                        {
                            "name": intake.archive_name,
                            "size": intake.archive_size,
                            "sha256": intake.archive_sha256,
                            "body_bytes": intake.body_bytes,
                            "fields": intake.fields,
                        },
                    )
            except IntakeError as exc:
                status, answer = f"{exc.status} Refused", {"error": str(exc)}
            body = json.dumps(answer | seen).encode()
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]

        servers.append(Waitress(app, max_bytes))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def post_chunked(port, body, content_type, piece=7777):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        chunks = (body[i : i + piece] for i in range(0, len(body), piece))
        conn.request(
            "POST", "/upload/", body=chunks, headers={"Content-Type": content_type}, encode_chunked=True
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_a_chunked_body_is_read_for_real_behind_waitress(intake_server, tmp_path):
    server = intake_server(max_bytes=2_000_000)
    archive = os.urandom(1_000_000)
    body, ctype = urllib3.encode_multipart_formdata([("try", "1"), ("symbols.zip", ("a.zip", archive))])
    status, answer = post_chunked(server.port, body, ctype)
    assert status == 200, answer
    assert answer["name"] == "symbols.zip" and answer["fields"] == {"try": "1"}
    assert answer["size"] == len(archive) and answer["sha256"] == hashlib.sha256(archive).hexdigest()
    assert answer["body_bytes"] == len(body)
    assert answer["content_length"] == str(len(body))  # waitress de-chunked it
    assert os.listdir(tmp_path) == []


def test_a_chunked_body_over_the_limit_is_413_behind_waitress(intake_server, tmp_path):
    server = intake_server(max_bytes=100_000)
    body, ctype = urllib3.encode_multipart_formdata([("symbols.zip", ("a.zip", os.urandom(200_000)))])
    status, answer = post_chunked(server.port, body, ctype)
    assert (status, answer["error"]) == (413, "The upload is larger than the limit of 100000 bytes")
    assert os.listdir(tmp_path) == []


def test_an_ipv6_literal_endpoint_gets_a_bracketed_host_header(tmp_path):
    class Server6(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.headers["Host"] == f"[::1]:{self.server.server_port}" else 400)
            self.send_header("Content-Length", str(len(ZIP)))
            self.end_headers()
            self.wfile.write(ZIP)

        def log_message(self, *args):
            pass

    try:
        server = Server6(("::1", 0), Handler)
    except OSError:
        missing_service("no IPv6 loopback (::1) on this machine")  # a failure under CI=true
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://[::1]:{server.server_port}/symbols.zip"
        with get(url, parse_allowed((f"http://[::1]:{server.server_port}",)), tmp_path) as fetched:
            assert fetched.size == len(ZIP)
    finally:
        server.shutdown()
        server.server_close()


def test_a_temporary_file_that_cannot_be_written_is_a_503_not_a_connection_error(source, tmp_path):
    with pytest.raises(FetchError) as info:
        fetch(source.url("/symbols.zip"), listed(source), tempdir=str(tmp_path / "missing"), max_bytes=10**6)
    assert info.value.status == 503
    assert str(info.value).startswith("The download could not be written to a temporary file")
