"""CORS on the download path (SPEC §2; issue 6 item 16): the preflight that lets a web page
send ``Debug: true``, the 405 for every other OPTIONS, and the headers a successful answer
exposes to browser JavaScript. Real app, real local directory, real waitress for the wire.
"""

import pytest

from tests.conftest import DEBUG_ID, put_file
from tests.functional.download_support import (
    CORS,
    assert_405,
    assert_download,
    assert_json_404,
    closed_port,
    raw_request,
    serve,  # noqa: F401 - fixture
)

# Nothing here depends on the database kind: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent

D = DEBUG_ID
ORIGIN = "https://profiler.firefox.com"
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD",
    "Access-Control-Allow-Headers": "Debug",
    "Access-Control-Max-Age": "86400",
}
# Headers that belong to the answers of steps 1-5 only.
LOOKUP_HEADERS = ("X-Symbol-Lookup", "Debug-Time", "Retry-After", "Access-Control-Expose-Headers", "Location")


def preflight(method="GET", origin=ORIGIN, request_headers="debug"):
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if request_headers is not None:
        headers["Access-Control-Request-Headers"] = request_headers
    return headers


def assert_preflight(response):
    assert response.status_int == 204, (response.status, response.body[:300])
    assert response.body == b""
    for name, value in PREFLIGHT_HEADERS.items():
        assert response.headers.get(name) == value, name
    for name in LOOKUP_HEADERS:
        assert name not in response.headers, name
    assert "Set-Cookie" not in response.headers


@pytest.fixture
def local(make_app, symbols_dir):
    put_file(symbols_dir, f"v1/xul.pdb/{D}/xul.sym", b"MODULE xul\n")
    app = make_app(symbol_urls=str(symbols_dir))
    app.dir = symbols_dir
    return app


DOWNLOAD_PATHS = [
    f"/xul.pdb/{D}/xul.sym",  # found
    f"/xul.pdb/{D.lower()}/xul.sym",
    f"/nope.pdb/{D}/nope.sym",  # not found
    f"/try/xul.pdb/{D}/xul.sym",
    f"/try/try/{D}/xul.sym",
    f"/xul.pdb/{D}/file.ptr",  # ignored
    f"/xul.pdb/{D}/xul.exe",  # extension not allowed
    f"/x%25y.pdb/{D}/x.sym",  # invalid name
    f"/x%FFy.pdb/{D}/x.sym",  # undecodable bytes
]


@pytest.mark.parametrize("path", DOWNLOAD_PATHS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_preflight_on_download_paths(local, path, method):
    assert_preflight(local.options(path, headers=preflight(method)))


@pytest.mark.parametrize("request_headers", [None, "debug", "Debug", "debug, x-other"])
def test_preflight_whatever_headers_are_asked(local, request_headers):
    # The answer is the same: the browser itself compares the asked headers with the allowed.
    r = local.options(f"/xul.pdb/{D}/xul.sym", headers=preflight(request_headers=request_headers))
    assert_preflight(r)


def test_preflight_without_origin_and_with_query(local):
    headers = {"Access-Control-Request-Method": "GET"}
    r = local.options(f"/xul.pdb/{D}/xul.sym?try&code_file=x", headers=headers)
    assert_preflight(r)


def test_preflight_looks_nothing_up(make_app, symbols_dir):
    # A storage that refuses every connection would make a lookup answer 503: the
    # preflight answers without touching storage, the cache or the missing-symbol log.
    app = make_app(symbol_urls=f"http://127.0.0.1:{closed_port()}/bucket", missing_symbol_guard_seconds="0")
    before = app.registry.metrics.downloads.labels("unavailable")._value.get()
    assert_preflight(app.options(f"/xul.pdb/{D}/xul.sym", headers=preflight()))
    assert app.registry.metrics.downloads.labels("unavailable")._value.get() == before
    r = app.get(f"/xul.pdb/{D}/xul.sym", status=503)
    assert r.headers["X-Symbol-Lookup"] == "unavailable"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": ORIGIN},
        {"Access-Control-Request-Method": "POST"},
        {"Access-Control-Request-Method": "PUT", "Origin": ORIGIN},
        {"Access-Control-Request-Method": "DELETE"},
        {"Access-Control-Request-Method": "OPTIONS"},
        {"Access-Control-Request-Method": "get"},
        {"Access-Control-Request-Method": "GET, HEAD"},
        {"Access-Control-Request-Method": " GET"},
        {"Access-Control-Request-Method": ""},
    ],
    ids=["none", "origin-only", "post", "put", "delete", "options", "lowercase", "list", "space", "empty"],
)
def test_other_options_answer_405(local, headers):
    path = f"/xul.pdb/{D}/xul.sym"
    assert_405(local.options(path, headers=headers, status=405), "OPTIONS", path)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "PROPFIND"])
def test_other_methods_with_preflight_headers_answer_405(local, method):
    path = f"/xul.pdb/{D}/xul.sym"
    r = local.request(path, method=method, headers=preflight(), status=405)
    assert_405(r, method, path)


@pytest.mark.parametrize(
    "path",
    [
        f"/xul.pdb/{D}/xul.sym/",
        f"/xul.pdb//{D}/xul.sym",
        f"/xul.pdb/{D}/./xul.sym",
        f"/xul.pdb/{D}/../xul.sym",
        "/xul.pdb/NOTHEX/xul.sym",
        f"/TRY/xul.pdb/{D}/xul.sym",
        f"/try/{D}/xul.sym",
        "/xul.pdb/xul.sym",
        f"/a/xul.pdb/{D}/xul.sym/b",
        f"/@@x/{D}/xul.sym",
        f"/metrics/{D}/xul.sym",
        f"/admin/{D}/xul.sym",
        f"/__files__/{D}/xul.sym",
    ],
)
def test_bad_shape_is_the_json_404_even_for_a_preflight(local, path):
    r = local.options(path, headers=preflight(), status=404)
    if path.startswith("/admin/"):
        assert r.headers["Content-Type"].startswith("text/html")
        for name in PREFLIGHT_HEADERS:
            assert name not in r.headers
    else:
        assert_json_404(r, path)
        for name in PREFLIGHT_HEADERS:
            assert name not in r.headers


def test_answers_expose_the_lookup_headers(local):
    debug = {"Debug": "true", "Origin": ORIGIN}
    r = local.get(f"/xul.pdb/{D}/xul.sym", headers=debug, status=302)
    assert_download(r, 302, "found", debug="positive")
    exposed = {h.strip() for h in r.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"X-Symbol-Lookup", "Debug-Time", "Retry-After"} <= exposed
    assert_download(local.head(f"/xul.pdb/{D}/xul.sym", headers=debug), 200, "found", debug="positive")
    assert_download(
        local.get(f"/nope.pdb/{D}/nope.sym", headers=debug, status=404), 404, "not-found", debug="positive"
    )
    assert_download(
        local.get(f"/xul.pdb/{D}/file.ptr", headers=debug, status=404), 404, "ignored", debug="zero"
    )
    # The file the redirect leads to can be read cross-origin as well.
    location = r.headers["Location"]
    f = local.get(location[len("http://symbols.example.com") :])
    assert f.headers["Access-Control-Allow-Origin"] == "*"
    assert f.body == b"MODULE xul\n"


def test_preflight_over_waitress(local, serve):  # noqa: F811 - the imported fixture
    served = serve(local)
    path = f"/xul.pdb/{D}/xul.sym"
    r = raw_request(served.port, "OPTIONS", path, headers=list(preflight().items()))
    assert_preflight(r)
    # 204 carries no body and no Content-Length (RFC 9110 §8.6).
    assert "Content-Length" not in r.headers
    r = raw_request(served.port, "OPTIONS", path, headers=[("Access-Control-Request-Method", "POST")])
    assert_405(r, "OPTIONS", path)
    # The download itself still answers with its CORS headers.
    r = raw_request(served.port, "GET", path, headers=[("Origin", ORIGIN), ("Debug", "1")])
    assert r.status_int == 302
    for name, value in CORS.items():
        assert r.headers.get(name) == value


def test_files_preflight_and_405(make_app, symbols_dir):
    """A fetch with ``Debug: true`` follows the 302 to /__files__/ and is preflighted there."""
    put_file(str(symbols_dir), "v1/xul.pdb/ABC/xul.sym")
    app = make_app(symbol_urls=str(symbols_dir))
    r = app.options(
        "/__files__/0/v1/xul.pdb/ABC/xul.sym",
        headers={"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "debug"},
        status=204,
    )
    assert r.headers["Access-Control-Allow-Headers"] == "Debug"
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.body == b""
    r = app.options("/__files__/0/v1/xul.pdb/ABC/xul.sym", status=405)
    assert r.headers["Allow"] == "GET, HEAD"
    app.options(
        "/__files__/0/v1/xul.pdb/ABC/nope.sym", headers={"Access-Control-Request-Method": "GET"}, status=404
    )
