"""The existence cache on the download path (SPEC §5): memcached, ?_refresh,
invalidate, in-process.

Real components: a local directory, moto's S3 server over HTTP, a real memcached,
a migrated database, the real command line and, for raw bytes, a real waitress.
"""

import os

import pytest
import requests

from tests.conftest import (
    PRIVATE_BUCKET,
    PUBLIC_BUCKET,
    TRY_BUCKET,
    put_file,
    put_public,
)
from tests.functional.download_prelude import D
from tests.functional.download_support import (
    DEVELOPMENT_INI,
    NOT_FOUND_BODY,
    assert_download,
    run_cli,
)


# =====================================================================================
# The existence cache: memcached, ?_refresh, invalidate, in-process
# =====================================================================================
@pytest.fixture
def cached_private(make_app, s3, memcached_clean):
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET, "pfx"), memcached_servers=memcached_clean.address)
    app.key = f"pfx/v1/xul.pdb/{D}/xul.sym"
    app.env = {
        "TECKEN_SYMBOL_URLS": s3.url(PRIVATE_BUCKET, "pfx"),
        "TECKEN_MEMCACHED_SERVERS": memcached_clean.address,
    }
    return app


def test_found_served_from_memcached(cached_private, s3, make_app, memcached_clean):
    app = cached_private
    s3.put(PRIVATE_BUCKET, app.key)
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    s3.delete(PRIVATE_BUCKET, app.key)
    r = app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    assert_download(r, 302, "found", cache="no-store")
    assert_download(app.head(f"/xul.pdb/{D.lower()}/xul.sym", status=200), 200, "found")
    # Shared: another app process with the same memcached sees the entry.
    other = make_app(symbol_urls=s3.url(PRIVATE_BUCKET, "pfx"), memcached_servers=memcached_clean.address)
    assert other.get(f"/xul.pdb/{D}/xul.sym", status=302)


@pytest.mark.parametrize(
    "refresh", ["_refresh", "_refresh=", "_refresh=0", "_refresh=1", "_refresh=%FF", "x=1&_refresh"]
)
def test_refresh_skips_cache_and_writes_fresh_result(cached_private, s3, refresh):
    app = cached_private
    s3.put(PRIVATE_BUCKET, app.key)
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    s3.delete(PRIVATE_BUCKET, app.key)
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=302)  # cached
    r = app.get(f"/xul.pdb/{D}/xul.sym?{refresh}", status=404)
    assert_download(r, 404, "not-found", body=NOT_FOUND_BODY)
    # The fresh not-found was written: a plain request now says 404 without storage.
    s3.put(PRIVATE_BUCKET, app.key)
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    assert_download(app.head(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    # And a refresh finds it and writes the found.
    assert app.head(f"/xul.pdb/{D}/xul.sym?{refresh}", status=200)
    s3.delete(PRIVATE_BUCKET, app.key)
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=302)


def test_negative_cache_until_invalidate(cached_private, s3, db):
    app = cached_private
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=404)
    s3.put(PRIVATE_BUCKET, app.key)
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    assert_download(app.head(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    result = run_cli(
        "invalidate",
        DEVELOPMENT_INI,
        f"xul.pdb/{D.lower()}/xul.sym",
        env_overrides={**app.env, "TECKEN_DATABASE_URL": db.url},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "invalidated 1 keys in 2 locations\n"
    r = app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    assert_download(r, 302, "found", cache="no-store")


def test_invalidate_drops_try_entries(cached_private, s3, db):
    app = cached_private
    assert app.get(f"/try/xul.pdb/{D}/xul.sym", status=404)  # both locations cached as not found
    s3.put(PRIVATE_BUCKET, f"try/{app.key}", b"try")
    assert app.get(f"/try/xul.pdb/{D}/xul.sym", status=404)
    assert app.get(f"/xul.pdb/{D}/xul.sym?try", status=404)
    result = run_cli(
        "invalidate",
        DEVELOPMENT_INI,
        f"xul.pdb/{D}/xul.sym",
        env_overrides={**app.env, "TECKEN_DATABASE_URL": db.url},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "invalidated 1 keys in 2 locations\n"
    r = app.get(f"/try/xul.pdb/{D}/xul.sym", status=302)
    assert r.headers["Location"].startswith(f"{s3.endpoint}/{PRIVATE_BUCKET}/try/pfx/v1/xul.pdb/{D}/xul.sym?")
    assert requests.get(r.headers["Location"], timeout=10).content == b"try"


def test_invalidate_several_keys_and_locations(make_app, s3, memcached_clean, db):
    urls = f"{s3.url(PRIVATE_BUCKET)},{s3.url(PUBLIC_BUCKET, public=True)}"
    app = make_app(
        symbol_urls=urls, try_symbol_url=s3.url(TRY_BUCKET), memcached_servers=memcached_clean.address
    )
    k1, k2 = f"xul.pdb/{D}/xul.sym", f"ntdll.pdb/{D}/ntdll.sym"
    for k in (k1, k2):
        assert app.get(f"/try/{k}", status=404)
    s3.put(TRY_BUCKET, f"v1/{k1}")
    put_public(s3, f"v1/{k2}")
    assert app.get(f"/try/{k1}", status=404)
    assert app.get(f"/{k2}", status=404)
    env = {
        "TECKEN_SYMBOL_URLS": urls,
        "TECKEN_TRY_SYMBOL_URL": s3.url(TRY_BUCKET),
        "TECKEN_MEMCACHED_SERVERS": memcached_clean.address,
        "TECKEN_DATABASE_URL": db.url,
    }
    result = run_cli("invalidate", DEVELOPMENT_INI, k1, k1.replace(D, D.lower()), k2, env_overrides=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "invalidated 2 keys in 3 locations\n"
    assert app.get(f"/try/{k1}", status=302).headers["Location"].startswith(f"{s3.endpoint}/{TRY_BUCKET}/")
    assert app.get(f"/{k2}", status=302).headers["Location"] == f"{s3.endpoint}/{PUBLIC_BUCKET}/v1/{k2}"


def test_invalidate_usage_errors_and_in_process(db, memcached_clean, s3):
    env = {
        "TECKEN_SYMBOL_URLS": s3.url(PRIVATE_BUCKET),
        "TECKEN_MEMCACHED_SERVERS": memcached_clean.address,
        "TECKEN_DATABASE_URL": db.url,
    }
    for bad in ("xul.pdb/xul.sym", "xul.pdb/XYZ/xul.sym", "a/b/c/d"):
        result = run_cli("invalidate", DEVELOPMENT_INI, bad, env_overrides=env)
        assert result.returncode == 2, (bad, result.stderr)
        assert "usage:" in result.stderr
        assert "Traceback" not in result.stderr
    result = run_cli(
        "invalidate",
        DEVELOPMENT_INI,
        f"xul.pdb/{D}/xul.sym",
        env_overrides={**env, "TECKEN_MEMCACHED_SERVERS": ""},
    )
    assert result.returncode == 3
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1


def test_local_directories_are_never_cached(make_app, symbols_dir, memcached_clean):
    app = make_app(symbol_urls=str(symbols_dir), memcached_servers=memcached_clean.address)
    for url in (f"/xul.pdb/{D}/xul.sym", f"/try/xul.pdb/{D}/xul.sym"):
        assert_download(app.get(url, status=404), 404, "not-found")
    path = put_file(symbols_dir, f"v1/xul.pdb/{D}/xul.sym")
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=302), 302, "found", cache="max-age=0")
    os.remove(path)
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    assert_download(app.head(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")
    put_file(symbols_dir / "try", f"v1/xul.pdb/{D}/xul.sym")
    assert app.get(f"/try/xul.pdb/{D}/xul.sym", status=302)


def test_in_process_cache_mode(make_app, s3):
    app = make_app(symbol_urls=s3.url(PRIVATE_BUCKET))
    key = f"v1/xul.pdb/{D}/xul.sym"
    assert not app.registry.cache.shared
    s3.put(PRIVATE_BUCKET, key)
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=302)
    s3.delete(PRIVATE_BUCKET, key)
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=302), 302, "found", cache="no-store")
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym?_refresh", status=404), 404, "not-found")
    s3.put(PRIVATE_BUCKET, key)
    assert_download(app.get(f"/xul.pdb/{D}/xul.sym", status=404), 404, "not-found")  # negative cached
    assert app.get(f"/xul.pdb/{D}/xul.sym?_refresh", status=302)
    # Another process has its own cache.
    other = make_app(symbol_urls=s3.url(PRIVATE_BUCKET))
    s3.delete(PRIVATE_BUCKET, key)
    assert other.get(f"/xul.pdb/{D}/xul.sym", status=404)
    assert app.get(f"/xul.pdb/{D}/xul.sym", status=302)
