"""Local-directory storage (SPEC §3): what /__files__/ serves and never serves.

Real components: a local directory, moto's S3 server over HTTP, a real memcached,
a migrated database, the real command line and, for raw bytes, a real waitress.
"""

import os

import pytest

from tests.conftest import (
    put_file,
)
from tests.functional.download_prelude import D, files_path
from tests.functional.download_support import (
    assert_download,
    assert_json_404,
    assert_no_cookie,
    raw_request,
)

# Nothing here depends on the database kind: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent


# =====================================================================================
# Local storage security and /__files__/
# =====================================================================================
def test_dot_segments_cannot_escape(make_app, tmp_path):
    symbols = tmp_path / "symbols"
    put_file(tmp_path, "secret.sym", b"SECRET")
    put_file(tmp_path, f"v1/xul.pdb/{D}/xul.sym", b"SECRET")
    app = make_app(symbol_urls=str(symbols))
    for url, path in [
        (f"/../{D}/secret.sym", f"/../{D}/secret.sym"),
        (f"/%2E%2E/{D}/secret.sym", f"/../{D}/secret.sym"),
        (f"/xul.pdb/{D}/..%2F..%2F..%2Fsecret.sym", f"/xul.pdb/{D}/../../../secret.sym"),
        (f"/xul.pdb/%2e%2e/{D}/xul.sym", f"/xul.pdb/../{D}/xul.sym"),
        (f"/try/../../{D}/x.sym", f"/try/../../{D}/x.sym"),
    ]:
        r = app.get(url, expect_errors=True)
        assert_json_404(r, path)
        assert b"SECRET" not in r.body


def test_symlink_outside_directory_is_not_found(make_app, tmp_path):
    symbols = tmp_path / "symbols"
    outside = put_file(tmp_path / "outside", "secret.sym", b"SECRET")
    inside_target = put_file(symbols, "real/xul.sym", b"INSIDE")
    link_dir = symbols / "v1" / "xul.pdb" / D
    link_dir.mkdir(parents=True)
    os.symlink(outside, link_dir / "evil.sym")
    os.symlink(inside_target, link_dir / "good.sym")
    os.symlink(tmp_path / "outside", symbols / "v1" / "evil.pdb")  # a directory link leaving DIR
    app = make_app(symbol_urls=str(symbols))
    assert_download(app.get(f"/xul.pdb/{D}/evil.sym", status=404), 404, "not-found")
    assert_download(app.head(f"/xul.pdb/{D}/evil.sym", status=404), 404, "not-found")
    r = app.get(f"/__files__/0/v1/xul.pdb/{D}/evil.sym", expect_errors=True)
    assert r.status_int == 404
    assert b"SECRET" not in r.body
    r = app.get("/__files__/0/v1/evil.pdb/secret.sym", expect_errors=True)
    assert r.status_int == 404
    assert b"SECRET" not in r.body
    # A link that stays inside DIR is a regular file inside DIR.
    r = app.get(f"/xul.pdb/{D}/good.sym", status=302)
    assert app.get(files_path(r.headers["Location"]), status=200).body == b"INSIDE"


def test_directory_is_not_a_file(local):
    (local.dir / "v1" / "xul.pdb" / D / "dir.sym").mkdir(parents=True)
    assert_download(local.get(f"/xul.pdb/{D}/dir.sym", status=404), 404, "not-found")
    assert local.get(f"/__files__/0/v1/xul.pdb/{D}/dir.sym", expect_errors=True).status_int == 404


def test_files_head_range_and_missing(local):
    body = b"0123456789abcdef"
    put_file(local.dir, f"v1/xul.pdb/{D}/xul.sym", body)
    url = f"/__files__/0/v1/xul.pdb/{D}/xul.sym"
    r = local.get(url, status=200)
    assert r.body == body
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Length"] == str(len(body))
    r = local.head(url, status=200)
    assert r.body == b""
    assert r.headers["Content-Length"] == str(len(body))
    assert r.headers["Content-Type"] == "application/octet-stream"
    r = local.get(url, headers={"Range": "bytes=2-5"}, status=206)
    assert r.body == b"2345"
    assert r.headers["Content-Range"] == f"bytes 2-5/{len(body)}"
    assert r.headers["Content-Length"] == "4"
    r = local.get(url, headers={"Range": "bytes=-3"}, status=206)
    assert r.body == b"def"
    assert r.headers["Content-Range"] == f"bytes 13-15/{len(body)}"
    r = local.get(url, headers={"Range": "bytes=10-"}, status=206)
    assert r.body == body[10:]
    for missing in (
        f"/__files__/0/v1/xul.pdb/{D}/nope.sym",
        f"/__files__/7/v1/xul.pdb/{D}/xul.sym",
        f"/__files__/x/v1/xul.pdb/{D}/xul.sym",
        "/__files__/0/",
        "/__files__/0",
    ):
        for method in ("GET", "POST", "DELETE"):
            r = local.request(missing, method=method, expect_errors=True)
            assert r.status_int == 404, (method, missing)
            assert r.headers["Content-Type"] == "application/json"
    # Other methods on a file that is served: 405.
    r = local.request(url, method="PUT", expect_errors=True)
    assert r.status_int == 405
    assert r.headers["Allow"] == "GET, HEAD"
    assert_no_cookie(local.get(url))


def test_files_serves_only_inside_directory(make_app, tmp_path, serve):
    symbols = tmp_path / "symbols"
    put_file(symbols, "v1/inside.sym", b"inside")
    put_file(tmp_path, "secret.txt", b"SECRET")
    app = make_app(symbol_urls=str(symbols))
    for url in (
        "/__files__/0/../secret.txt",
        "/__files__/0/..%2Fsecret.txt",
        "/__files__/0/%2E%2E/secret.txt",
        "/__files__/0/v1/../../secret.txt",
        "/__files__/0//etc/passwd",
        "/__files__/0/%2Fetc%2Fpasswd",
        "/__files__/try/../secret.txt",
    ):
        r = app.get(url, expect_errors=True)
        assert r.status_int == 404, url
        assert b"SECRET" not in r.body and b"root:" not in r.body
    served = serve(app)
    for target in (
        b"/__files__/0/../secret.txt",
        b"/__files__/0/../../../../etc/passwd",
        b"/__files__/0/%2e%2e/secret.txt",
    ):
        r = raw_request(served.port, "GET", target)
        assert r.status_int == 404, target
        assert b"SECRET" not in r.body and b"root:" not in r.body
    assert raw_request(served.port, "GET", "/__files__/0/v1/inside.sym").body == b"inside"
