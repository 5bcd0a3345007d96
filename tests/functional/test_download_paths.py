"""Download path shapes and methods (SPEC §2): the JSON 404 and the 405.

Real components: a local directory, moto's S3 server over HTTP, a real memcached,
a migrated database, the real command line and, for raw bytes, a real waitress.
"""

import pytest

from tests.conftest import (
    PRIVATE_BUCKET,
    put_file,
)
from tests.functional.download_prelude import ALL_METHODS, HOST, OTHER_METHODS, D, files_path
from tests.functional.download_support import (
    assert_405,
    assert_download,
    assert_json_404,
    closed_port,
    q,
)

# Nothing here depends on the database kind: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent

# =====================================================================================
# Path shape: the JSON 404, whatever the method
# =====================================================================================
BAD_SHAPES = [
    (f"/xul.pdb/{D}/xul.sym/", f"/xul.pdb/{D}/xul.sym/"),
    (f"/xul.pdb//{D}/xul.sym", f"/xul.pdb//{D}/xul.sym"),
    (f"/xul.pdb/{D}//xul.sym", f"/xul.pdb/{D}//xul.sym"),
    (f"/try/xul.pdb/{D}/xul.sym/", f"/try/xul.pdb/{D}/xul.sym/"),
    (f"/try//xul.pdb/{D}/xul.sym", f"/try//xul.pdb/{D}/xul.sym"),
    (f"/./{D}/xul.sym", f"/./{D}/xul.sym"),
    (f"/xul.pdb/{D}/.", f"/xul.pdb/{D}/."),
    (f"/xul.pdb/{D}/..", f"/xul.pdb/{D}/.."),
    (f"/../{D}/xul.sym", f"/../{D}/xul.sym"),
    (f"/xul.pdb/../{D}/xul.sym", f"/xul.pdb/../{D}/xul.sym"),
    (f"/try/../xul.pdb/{D}/xul.sym", f"/try/../xul.pdb/{D}/xul.sym"),
    (f"/xul.pdb/%2E%2E/{D}/xul.sym", f"/xul.pdb/../{D}/xul.sym"),
    (f"/%2E/{D}/xul.sym", f"/./{D}/xul.sym"),
    (f"/@@view/{D}/xul.sym", f"/@@view/{D}/xul.sym"),
    (f"/xul.pdb/{D}/@@xul.sym", f"/xul.pdb/{D}/@@xul.sym"),
    (f"/try/@@x/{D}/xul.sym", f"/try/@@x/{D}/xul.sym"),
    (f"/TRY/xul.pdb/{D}/xul.sym", f"/TRY/xul.pdb/{D}/xul.sym"),
    (f"/Try/xul.pdb/{D}/xul.sym", f"/Try/xul.pdb/{D}/xul.sym"),
    (f"/try/{D}/xul.sym", f"/try/{D}/xul.sym"),
    (f"/xul.pdb/{D}", f"/xul.pdb/{D}"),
    ("/xul.pdb", "/xul.pdb"),
    (f"/a/b/{D}/xul.sym", f"/a/b/{D}/xul.sym"),
    (f"/xul.pdb/{D}/xul.sym/extra", f"/xul.pdb/{D}/xul.sym/extra"),
    (f"/try/a/xul.pdb/{D}/xul.sym", f"/try/a/xul.pdb/{D}/xul.sym"),
    (f"/try/try/try/{D}/xul.sym", f"/try/try/try/{D}/xul.sym"),
    (f"/firefox/xul.pdb/{D}/xul.sym", f"/firefox/xul.pdb/{D}/xul.sym"),
    (f"/thunderbird/xul.pdb/{D}/xul.sym", f"/thunderbird/xul.pdb/{D}/xul.sym"),
    ("/xul.pdb/XYZ/xul.sym", "/xul.pdb/XYZ/xul.sym"),
    (f"/xul.pdb/{D}-1/xul.sym", f"/xul.pdb/{D}-1/xul.sym"),
    ("/xul.pdb/0x1A/xul.sym", "/xul.pdb/0x1A/xul.sym"),
    ("/xul.pdb/%20ABC/xul.sym", "/xul.pdb/ ABC/xul.sym"),
    ("/xul.pdb/try/xul.sym", "/xul.pdb/try/xul.sym"),
    ("/try/xul.pdb/G1/xul.sym", "/try/xul.pdb/G1/xul.sym"),
    (f"/xul.pdb%2Fx/{D}/xul.sym", f"/xul.pdb/x/{D}/xul.sym"),
    (f"/xul.pdb/{D}/a%2Fb.sym", f"/xul.pdb/{D}/a/b.sym"),
    (f"/{q('汉')}/{q('⚡️')}/x.sym", "/汉/⚡️/x.sym"),
    ("/favicon.ico", "/favicon.ico"),
    ("/robots.txt", "/robots.txt"),
]


@pytest.mark.parametrize("url,path", BAD_SHAPES, ids=[p for _u, p in BAD_SHAPES])
def test_bad_shape_json_404_any_method(local, url, path):
    # Even when a file that normalisation could reach exists.
    put_file(local.dir, f"v1/xul.pdb/{D}/xul.sym")
    for method in ALL_METHODS:
        r = local.request(url, method=method, expect_errors=True, headers={"Debug": "1"})
        assert_json_404(r, path, head=method == "HEAD")


RESERVED = [
    "__heartbeat__",
    "__lbheartbeat__",
    "__version__",
    "__files__",
    "metrics",
    "missingsymbols",
    "missingsymbols.csv",
    "upload",
]


@pytest.mark.parametrize("name", RESERVED)
def test_reserved_first_segment_is_never_a_download(make_app, symbols_dir, name):
    # The key exists in the local directory; a second location refuses connections,
    # so reaching storage would answer found or 503: neither may happen.
    put_file(symbols_dir, f"v1/{name}/ABC/x.sym")
    refused = f"http://127.0.0.1:{closed_port()}/tecken-private"
    for urls in (str(symbols_dir), refused):
        app = make_app(symbol_urls=urls)
        for method in ALL_METHODS:
            r = app.request(f"/{name}/ABC/x.sym", method=method, expect_errors=True)
            assert_json_404(r, f"/{name}/ABC/x.sym", head=method == "HEAD")
        r = app.get(f"/{name}/ABC/x.sym?try", expect_errors=True)
        assert_json_404(r, f"/{name}/ABC/x.sym")


def test_admin_is_an_html_404_never_a_download(make_app, symbols_dir):
    put_file(symbols_dir, "v1/admin/ABC/x.sym")
    app = make_app(symbol_urls=str(symbols_dir))
    for method in ("GET", "HEAD"):
        r = app.request("/admin/ABC/x.sym", method=method, expect_errors=True)
        assert r.status_int == 404
        assert r.headers["Content-Type"].startswith("text/html")
        assert "X-Symbol-Lookup" not in r.headers
        assert "Access-Control-Allow-Origin" not in r.headers
        assert "Location" not in r.headers
    refused = make_app(symbol_urls=f"http://127.0.0.1:{closed_port()}/tecken-private")
    assert refused.get("/admin/ABC/x.sym", expect_errors=True).status_int == 404


def test_files_without_local_location_is_json_404(make_app, s3):
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET))
    path = "/__files__/0/v1/x.pdb/ABC/x.sym"
    assert_json_404(app.get(path, expect_errors=True), path)


def test_reserved_names_are_symbols_under_try(local):
    # Only the first segment is reserved: /try/metrics/... is symbol "metrics".
    put_file(local.dir, "v1/metrics/ABC/x.sym")
    r = local.get("/try/metrics/ABC/x.sym", status=302)
    assert_download(r, 302, "found")
    assert r.headers["Location"] == f"{HOST}/__files__/0/v1/metrics/ABC/x.sym"


def test_symbol_named_try(local):
    put_file(local.dir, f"v1/try/{D}/f.sym", b"try symbol")
    r = local.get(f"/try/try/{D}/f.sym", status=302)
    assert_download(r, 302, "found")
    assert r.headers["Location"] == f"{HOST}/__files__/0/v1/try/{D}/f.sym"
    assert local.get(files_path(r.headers["Location"])).body == b"try symbol"
    # ...also found in the try location (DIR/try) when only there.
    put_file(local.dir / "try", f"v1/try/{D}/g.sym", b"in try")
    r = local.get(f"/try/try/{D}/g.sym", status=302)
    assert r.headers["Location"] == f"{HOST}/__files__/try/v1/try/{D}/g.sym"
    assert_json_404(local.get(f"/try/{D}/f.sym", status=404), f"/try/{D}/f.sym")


# =====================================================================================
# Methods: 405 on download paths, without the download headers
# =====================================================================================
@pytest.mark.parametrize(
    "url,path",
    [
        (f"/xul.pdb/{D}/xul.sym", f"/xul.pdb/{D}/xul.sym"),
        (f"/try/xul.pdb/{D}/xul.sym", f"/try/xul.pdb/{D}/xul.sym"),
        (f"/xul.pdb/{D}/file.ptr", f"/xul.pdb/{D}/file.ptr"),
        (f"/xul.pdb/{D}/xul.exe", f"/xul.pdb/{D}/xul.exe"),
        (f"/x%7B.pdb/{D}/xul.sym", f"/x{{.pdb/{D}/xul.sym"),
        (f"/{q('汉 +')}.pdb/{D.lower()}/xul.sym?code_file=%00", f"/汉 +.pdb/{D.lower()}/xul.sym"),
        (f"/try/try/{D}/xul.sym", f"/try/try/{D}/xul.sym"),
    ],
)
@pytest.mark.parametrize("method", [*OTHER_METHODS, "PROPFIND", "TRACE", "FOO"])
@pytest.mark.filterwarnings("ignore:Unknown REQUEST_METHOD")
def test_405(local, url, path, method):
    put_file(local.dir, f"v1/xul.pdb/{D}/xul.sym")
    headers = {"Debug": "true", "Origin": "https://x"}
    r = local.request(url, method=method, expect_errors=True, headers=headers)
    assert_405(r, method, path)


def test_405_with_body(local):
    r = local.post(
        f"/xul.pdb/{D}/xul.sym",
        params=b"x" * 1000,
        content_type="application/octet-stream",
        expect_errors=True,
    )
    assert_405(r, "POST", f"/xul.pdb/{D}/xul.sym")
