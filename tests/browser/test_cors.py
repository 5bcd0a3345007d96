"""CORS in a real browser (issue 6 item 16, SPEC §2): a page served from another origin
sends ``Debug: true`` to the download path (the browser preflights it) and reads
``X-Symbol-Lookup`` and ``Debug-Time`` from the answers. Debian's Chromium through
Playwright, the app in a real waitress, the page on a separate tiny HTTP server.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import DEBUG_ID, put_file
from tests.functional.download_support import Served

D = DEBUG_ID
PAGE = b"<!doctype html><html><head><meta charset=utf-8><title>tool</title></head><body>tool</body></html>"


class OtherOrigin:
    """A tiny HTTP server on its own port: another origin than the app's."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(PAGE)))
                self.end_headers()
                self.wfile.write(PAGE)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Recorder:
    """WSGI middleware: the method and the CORS request headers of every request."""

    def __init__(self, app):
        self.app = app
        self.seen = []

    def __call__(self, environ, start_response):
        self.seen.append(
            (
                environ["REQUEST_METHOD"],
                environ.get("PATH_INFO"),
                environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"),
                environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS"),
            )
        )
        return self.app(environ, start_response)


@pytest.fixture
def cors_site(make_app, symbols_dir):
    put_file(symbols_dir, f"v1/xul.pdb/{D}/xul.sym", b"MODULE xul\n")
    app = make_app(symbol_urls=str(symbols_dir))
    recorder = Recorder(app.app)
    served = Served(recorder)
    served.recorder = recorder
    other = OtherOrigin()
    yield served, other
    other.close()
    served.close()


FETCH = """async ([url, init]) => {
    try {
        const r = await fetch(url, init);
        const body = r.type === "opaqueredirect" ? null : await r.text();
        return {ok: true, type: r.type, status: r.status, body,
                lookup: r.headers.get("X-Symbol-Lookup"), debugTime: r.headers.get("Debug-Time"),
                cacheControl: r.headers.get("Cache-Control")};
    } catch (e) {
        return {ok: false, error: String(e)};
    }
}"""


def fetch(page, url, **init):
    return page.evaluate(FETCH, [url, init])


def test_a_page_on_another_origin_reads_the_lookup_headers(page, cors_site):
    served, other = cors_site
    page.goto(other.url + "/tool.html")
    assert page.evaluate("location.origin") == other.url
    assert other.url != served.url
    url = f"{served.url}/xul.pdb/{D}/xul.sym"

    # HEAD with Debug: true: preflighted, then 200 with both headers readable.
    r = fetch(page, url, method="HEAD", headers={"Debug": "true"})
    assert r["ok"], r
    assert r["status"] == 200 and r["type"] == "cors"
    assert r["lookup"] == "found"
    assert float(r["debugTime"]) > 0
    preflights = [s for s in served.recorder.seen if s[0] == "OPTIONS"]
    assert preflights, served.recorder.seen
    method, path, asked_method, asked_headers = preflights[0]
    assert path == f"/xul.pdb/{D}/xul.sym" and asked_method == "HEAD"
    assert "debug" in asked_headers.lower()

    # GET of a symbol that is not there: 404 with the headers and the body readable.
    r = fetch(page, f"{served.url}/nope.pdb/{D}/nope.sym", headers={"Debug": "true"})
    assert r["ok"], r
    assert r["status"] == 404
    assert r["lookup"] == "not-found"
    assert float(r["debugTime"]) > 0
    assert r["body"] == "Symbol Not Found"

    # An ignored name: Debug-Time is exactly 0.0.
    r = fetch(page, f"{served.url}/xul.pdb/{D}/file.ptr", headers={"Debug": "1"})
    assert r["ok"], r
    assert (r["status"], r["lookup"], r["debugTime"]) == (404, "ignored", "0.0")

    # GET of a found symbol with Debug, redirect not followed: the preflight let it through.
    r = fetch(page, url, headers={"Debug": "true"}, redirect="manual")
    assert r["ok"], r
    assert r["type"] == "opaqueredirect"

    # Without Debug (no preflight): GET follows the redirect to /__files__/ and reads the file.
    r = fetch(page, url)
    assert r["ok"], r
    assert r["status"] == 200 and r["body"] == "MODULE xul\n"

    # With Debug, following the redirect: the browser preflights /__files__/ too.
    r = fetch(page, url, headers={"Debug": "true"})
    assert r["ok"], r
    assert r["status"] == 200 and r["body"] == "MODULE xul\n"
    assert any(s[0] == "OPTIONS" and s[1].startswith("/__files__/") for s in served.recorder.seen)

    # Chromium logs the 404s as failed loads; no CORS error at all.
    errors = page.console_log.errors
    assert not [e for e in errors if "CORS" in e or "Access-Control" in e], errors


def test_the_browser_enforces_the_allowed_headers(page, cors_site):
    # A control: a header the preflight does not allow makes the browser refuse the
    # request, so the successes above really went through CORS.
    served, other = cors_site
    page.goto(other.url + "/tool.html")
    r = fetch(page, f"{served.url}/xul.pdb/{D}/xul.sym", method="HEAD", headers={"X-Not-Allowed": "1"})
    assert not r["ok"], r
    assert "Failed to fetch" in r["error"]
    # A method the preflight does not allow is refused as well.
    r = fetch(page, f"{served.url}/xul.pdb/{D}/xul.sym", method="PUT", body="x")
    assert not r["ok"], r
