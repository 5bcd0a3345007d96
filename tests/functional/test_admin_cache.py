"""Console cache page (SPEC §5, §7): invalidate keys (shared memcached or this
process's in-process cache), look a key up now with timings, audited, CSRF."""

import json
import re

import pytest
from pymemcache.client.base import Client as MemcacheClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tecken_pyramid import cache as cache_mod
from tecken_pyramid.models import AuditLog
from tests.conftest import DEBUG_ID, PRIVATE_BUCKET, create_user, free_port, login, put_file

KEY = ("xul.pdb", DEBUG_ID, "xul.sym")
KEY_TEXT = "/".join(KEY)
OTHER = ("other.pdb", DEBUG_ID, "other.sym")


@pytest.fixture(autouse=True)
def empty_audit(db):
    engine = db.engine()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    engine.dispose()


def audit_rows(db):
    engine = db.engine()
    with Session(engine) as session:
        rows = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
    engine.dispose()
    return rows


@pytest.fixture
def console(make_app, db):
    """console(**overrides) -> a TestApp signed in as a superuser."""

    def build(**overrides):
        create_user(db, "admin", "correct-horse")
        app = make_app(**overrides)
        login(app, "admin", "correct-horse")
        return app

    return build


def flashes(page, queue):
    return [p.text for p in page.html.select(f"p.flash.{queue}")]


def invalidate(app, keys):
    form = app.get("/admin/cache").forms["invalidate-form"]
    form["keys"] = keys
    return form.submit(status=303).follow()


def lookup(app, key=KEY_TEXT, status=200, **checks):
    form = app.get("/admin/cache").forms["lookup-form"]
    form["key"] = key
    for name in ("try", "refresh", "each"):
        if name in checks:
            form[name] = checks[name]
    return form.submit(status=status)


def result_text(page):
    return " ".join(page.html.select_one("div.cache-result").text.split())


def lookup_rows(page):
    rows = page.html.select("table.cache-lookup tbody tr")
    return [[" ".join(td.text.split()) for td in tr.find_all("td")] for tr in rows]


def test_page_shows_in_process_cache_ttls_and_locations(console, symbols_dir):
    app = console(symbol_urls=str(symbols_dir), cache_found_ttl="7200", cache_not_found_ttl="300")
    page = app.get("/admin/cache")
    body = " ".join(page.html.text.split())
    facts = dict(
        zip(
            [" ".join(dt.text.split()) for dt in page.html.select("dl.lookup dt")],
            [" ".join(dd.text.split()) for dd in page.html.select("dl.lookup dd")],
            strict=True,
        )
    )
    assert facts["Existence cache"].startswith("in-process")
    assert "each server process has its own" in facts["Existence cache"]
    assert facts["Found TTL"] == "2 h (7200 s, tecken.cache_found_ttl)"
    assert facts["Not found TTL"] == "5 min (300 s, tecken.cache_not_found_ttl)"
    assert "this server process only" in body
    urls = [td.text for td in page.html.select("table.cache-locations td code")]
    assert urls == [f"file://{symbols_dir}", f"file://{symbols_dir}/try"]
    assert "Content-Security-Policy" in page.headers


def test_page_shows_memcached_servers(console, symbols_dir, memcached_clean):
    app = console(symbol_urls=str(symbols_dir), memcached_servers=memcached_clean.address)
    body = " ".join(app.get("/admin/cache").html.text.split())
    assert f"memcached: {memcached_clean.address}" in body
    assert "shared by every server process" in body
    assert "in the shared memcached cluster" in body


def test_lookup_local_directory_found_not_found_and_try(console, symbols_dir):
    app = console(symbol_urls=str(symbols_dir))
    put_file(symbols_dir, "v1/" + KEY_TEXT)
    page = lookup(app)
    text_ = result_text(page)
    assert "found in location 0" in text_ and "key v1/" + KEY_TEXT in text_
    assert re.search(r"took \d+\.\d ms", text_)
    rows = lookup_rows(page)
    assert len(rows) == 1  # try not included
    assert rows[0][2] == "never cached (local directory)"
    assert rows[0][3] == "found" and rows[0][4].endswith(" ms")

    put_file(symbols_dir, "try/v1/other.pdb/" + DEBUG_ID + "/other.sym")
    page = lookup(app, "/".join(OTHER))
    assert "not found in any location (try not included)" in result_text(page)
    page = lookup(app, "other.pdb/" + DEBUG_ID.lower() + "/other.sym", **{"try": True})
    assert "found in location try" in result_text(page)
    assert [r[3] for r in lookup_rows(page)] == ["not found", "found"]
    # Without the per-location checks the table has no storage columns.
    page = lookup(app, **{"each": False})
    assert len(lookup_rows(page)[0]) == 3


def test_lookup_bad_key_is_400_with_a_message(console, symbols_dir):
    app = console(symbol_urls=str(symbols_dir))
    for bad in ("xul.pdb/xul.sym", "xul.pdb/NOTHEX/xul.sym", "a/b/c/d"):
        page = lookup(app, bad, status=400)
        assert "Not a SYMBOL/DEBUGID/FILENAME key" in page.text
        assert page.html.select_one("div.cache-result") is None


def test_lookup_and_invalidate_with_the_in_process_cache(console, s3, db):
    app = console(symbol_urls=s3.url(PRIVATE_BUCKET))
    page = lookup(app)
    assert "not found in any location" in result_text(page)
    assert lookup_rows(page)[0][2] == "no entry"
    s3.put(PRIVATE_BUCKET, "v1/" + KEY_TEXT)
    # The not-found is cached: the lookup still misses, storage itself has it.
    page = lookup(app)
    assert "not found in any location" in result_text(page)
    assert lookup_rows(page)[0][2:4] == ["not found", "found"]
    # "Skip cache" looks again and writes the answer.
    page = lookup(app, refresh=True, each=False)
    assert "found in location 0" in result_text(page) and "(cache skipped)" in result_text(page)
    assert lookup_rows(page)[0][2] == "not found"
    assert lookup_rows(lookup(app, each=False))[0][2] == "found"

    s3.delete(PRIVATE_BUCKET, "v1/" + KEY_TEXT)
    assert "found in location 0" in result_text(lookup(app, each=False))  # cached found
    page = invalidate(app, KEY_TEXT.replace(DEBUG_ID, DEBUG_ID.lower()))
    (message,) = flashes(page, "info")
    assert message == "Invalidated 1 key in 2 locations in this server process's in-process cache only."
    assert "not found in any location" in result_text(lookup(app, each=False))
    (row,) = audit_rows(db)
    assert (row.username, row.action, row.target, row.before) == ("admin", "cache.invalidate", KEY_TEXT, None)
    assert json.loads(row.after) == {"keys": [KEY_TEXT], "cache": "in-process", "locations": 2, "entries": 2}


def test_invalidate_drops_every_location_in_memcached(console, s3, memcached_clean, db):
    app = console(symbol_urls=s3.url(PRIVATE_BUCKET), memcached_servers=memcached_clean.address)
    locations = app.registry.tecken.all_locations
    client = MemcacheClient(("127.0.0.1", memcached_clean.port), default_noreply=False)

    def ck(loc, key):
        return cache_mod.existence_key(loc, loc.key(*key))

    named = [KEY, ("ntdll.pdb", "12AB", "ntdll.sym")]
    try:
        for loc in locations:
            for key in [*named, OTHER]:
                client.set(ck(loc, key), cache_mod.FOUND, expire=600)
        same = f"xul.pdb/{DEBUG_ID.lower()}/xul.sym"
        page = invalidate(app, f"{KEY_TEXT}\n  {same}\n\nntdll.pdb/12ab/ntdll.sym\n")
        (message,) = flashes(page, "info")
        assert message == "Invalidated 2 keys in 2 locations in the shared memcached cluster."
        for loc in locations:
            for key in named:
                assert client.get(ck(loc, key)) is None
            assert client.get(ck(loc, OTHER)) == cache_mod.FOUND
    finally:
        client.close()
    (row,) = audit_rows(db)
    after = json.loads(row.after)
    assert after["keys"] == [KEY_TEXT, "ntdll.pdb/12AB/ntdll.sym"] and after["cache"] == "memcached"


def test_invalidate_local_only_says_nothing_is_cached(console, symbols_dir, db):
    app = console(symbol_urls=str(symbols_dir))
    (message,) = flashes(invalidate(app, KEY_TEXT), "info")
    assert "local directories never are" in message
    assert len(audit_rows(db)) == 1


@pytest.mark.parametrize(
    "keys, message",
    [
        ("xul.pdb/xul.sym", "not a SYMBOL/DEBUGID/FILENAME key: xul.pdb/xul.sym"),
        ("xul.pdb/ZZZ/xul.sym", "not a SYMBOL/DEBUGID/FILENAME key"),
        (KEY_TEXT + "\nbad", "not a SYMBOL/DEBUGID/FILENAME key: bad"),
        ("  \n ", "give at least one"),
        ("\n".join(f"a{i}.pdb/AB/a.sym" for i in range(101)), "at most 100"),
    ],
)
def test_invalidate_refuses_bad_keys(console, s3, memcached_clean, db, keys, message):
    app = console(symbol_urls=s3.url(PRIVATE_BUCKET), memcached_servers=memcached_clean.address)
    loc = app.registry.tecken.locations[0]
    client = MemcacheClient(("127.0.0.1", memcached_clean.port), default_noreply=False)
    try:
        client.set(cache_mod.existence_key(loc, loc.key(*KEY)), cache_mod.FOUND, expire=600)
        form = app.get("/admin/cache").forms["invalidate-form"]
        form["keys"].force_value(keys)
        page = form.submit(status=303).follow()
        (error,) = flashes(page, "error")
        assert error.startswith("Nothing invalidated") and message in error
        assert client.get(cache_mod.existence_key(loc, loc.key(*KEY))) == cache_mod.FOUND
    finally:
        client.close()
    assert audit_rows(db) == []


def test_memcached_down_is_a_flash_error_not_a_500(console, s3, db):
    app = console(symbol_urls=s3.url(PRIVATE_BUCKET), memcached_servers=f"127.0.0.1:{free_port()}")
    page = app.get("/admin/cache")
    assert "failing" in page.html.select_one("dl.lookup").text
    page = invalidate(app, KEY_TEXT)
    (error,) = flashes(page, "error")
    assert error.startswith("Nothing invalidated: memcached is unavailable")
    assert audit_rows(db) == []
    # A lookup still works (a cache failure is a cache miss).
    assert "not found in any location" in result_text(lookup(app, each=False))


def test_invalidate_without_csrf_is_400_and_drops_nothing(console, s3, memcached_clean, db):
    app = console(symbol_urls=s3.url(PRIVATE_BUCKET), memcached_servers=memcached_clean.address)
    loc = app.registry.tecken.locations[0]
    client = MemcacheClient(("127.0.0.1", memcached_clean.port), default_noreply=False)
    try:
        client.set(cache_mod.existence_key(loc, loc.key(*KEY)), cache_mod.FOUND, expire=600)
        app.post("/admin/cache/invalidate", {"keys": KEY_TEXT}, status=400)
        app.post("/admin/cache/invalidate", {"keys": KEY_TEXT, "csrf_token": "forged"}, status=400)
        assert client.get(cache_mod.existence_key(loc, loc.key(*KEY))) == cache_mod.FOUND
    finally:
        client.close()
    assert audit_rows(db) == []


def test_anonymous_redirected_and_non_superuser_forbidden(make_app, db, symbols_dir):
    create_user(db, "viewer", "correct-horse", superuser=False)
    app = make_app(symbol_urls=str(symbols_dir))
    r = app.get("/admin/cache?key=" + KEY_TEXT, status=303)
    assert "/admin/login?next=" in r.headers["Location"]
    login(app, "viewer", "correct-horse")
    app.get("/admin/cache", status=403)
    token = app.get("/admin/login").forms[0]["csrf_token"].value
    app.post("/admin/cache/invalidate", {"keys": KEY_TEXT, "csrf_token": token}, status=403)
    assert audit_rows(db) == []


def test_user_supplied_text_is_escaped(console, symbols_dir):
    app = console(symbol_urls=str(symbols_dir))
    page = lookup(app, "<script>alert(1)<.pdb/ABC/<b>x<.sym")
    assert "not found in any location" in result_text(page)
    assert "<script>alert(1)" not in page.text and "<b>x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;.pdb" in page.text
    page = lookup(app, '"><img src=x onerror=alert(1)>/ABC/x.sym')
    assert "<img src=x" not in page.text
    assert page.html.select_one("#lookup-form input[name=key]")["value"].startswith('"><img')
    form = app.get("/admin/cache").forms["invalidate-form"]
    form["keys"] = "<i>bad</i>"
    page = form.submit(status=303).follow()
    assert "<i>bad</i>" not in page.text and "&lt;i&gt;bad&lt;/i&gt;" in page.text
