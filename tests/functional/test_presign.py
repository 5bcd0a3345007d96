"""Presigned URLs: reused in-process for up to 60 s, never put in the shared cache."""

import urllib.parse
import urllib.request

import pytest

from tests.conftest import DEBUG_ID, PRIVATE_BUCKET

# Nothing here depends on the database kind: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent


def test_presigned_url_reused_within_a_process_and_fetchable(make_app, s3, memcached_clean):
    s3.put(PRIVATE_BUCKET, f"v1/xul.pdb/{DEBUG_ID}/xul.sym", b"MODULE presigned\n")
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET), memcached_servers=memcached_clean.address)
    first = app.get(f"/xul.pdb/{DEBUG_ID}/xul.sym", status=302).headers["Location"]
    second = app.get(f"/xul.pdb/{DEBUG_ID}/xul.sym", status=302).headers["Location"]
    assert first == second  # the same signature: reused, not re-signed
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(first).query)
    assert query["X-Amz-Expires"] == ["3600"]
    with urllib.request.urlopen(first, timeout=10) as response:
        assert response.read() == b"MODULE presigned\n"


def test_presigned_expiry_follows_the_setting_and_other_processes_sign_their_own(
    make_app, s3, memcached_clean
):
    s3.put(PRIVATE_BUCKET, f"v1/xul.pdb/{DEBUG_ID}/xul.sym")
    one = make_app(
        symbol_urls=s3.url(PRIVATE_BUCKET),
        memcached_servers=memcached_clean.address,
        presigned_url_expires="120",
    )
    location = one.get(f"/xul.pdb/{DEBUG_ID}/xul.sym", status=302).headers["Location"]
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["X-Amz-Expires"] == ["120"]
    # The shared cache holds existence only: a second process answers from it
    # (no storage call needed) and makes its own URL.
    s3.delete(PRIVATE_BUCKET, f"v1/xul.pdb/{DEBUG_ID}/xul.sym")
    two = make_app(
        symbol_urls=s3.url(PRIVATE_BUCKET),
        memcached_servers=memcached_clean.address,
        presigned_url_expires="120",
    )
    other = two.get(f"/xul.pdb/{DEBUG_ID}/xul.sym", status=302).headers["Location"]
    assert other.split("?")[0] == location.split("?")[0]
