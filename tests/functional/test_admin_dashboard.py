"""Console: the dashboard (SPEC §7): misses per day, top missing symbols, counts,
service health and effective configuration.

Rows are inserted directly by SQL across several UTC days, around midnight too,
into the real database (SQLite or PostgreSQL, TECKEN_TEST_DB).
"""

import dataclasses
import datetime
import json
import urllib.parse

import pytest
from sqlalchemy import text

from tests.conftest import create_user, login
from tests.functional.missing_helpers import UTC, MissingTable

SECRET = "a-very-secret-session-secret-0123456789abcdef"
NOW = datetime.datetime.now(UTC)
MIDNIGHT = NOW.replace(hour=0, minute=0, second=0, microsecond=0)


def at(days_back, hours=0, minutes=0, seconds=0, microseconds=0):
    """``days_back`` UTC days before today's midnight, plus a time of day."""
    return (
        MIDNIGHT
        - datetime.timedelta(days=days_back)
        + datetime.timedelta(hours=hours, minutes=minutes, seconds=seconds, microseconds=microseconds)
    )


def day(days_back):
    return (MIDNIGHT - datetime.timedelta(days=days_back)).strftime("%Y-%m-%d")


@pytest.fixture
def table(db):
    t = MissingTable(db)
    yield t
    t.close()


@pytest.fixture
def data(table):
    """Rows over several days, some a microsecond either side of a UTC midnight."""
    rows = [
        ("today-a", at(0), 1, None),
        ("today-b", at(0, seconds=1), 2, "<script>alert(1)</script>"),
        ("today-c", at(0, seconds=2), 3, "c.dll"),
        ("yesterday-late", at(1, hours=23, minutes=59, seconds=59, microseconds=999999), 4, None),
        ("yesterday-noon", at(1, hours=12), 50, "big.dll"),
        ("five-early", at(5), 6, None),
        ("five-late", at(5, hours=23, minutes=59, seconds=59), 7, None),
        ("first-day", at(29), 8, None),
        ("too-old", at(30, hours=23, minutes=59, seconds=59, microseconds=999999), 100, None),
        ("ancient", at(45), 200, None),
    ]
    return {
        name: table.insert(
            f"{name}.pdb",
            debugid=f"D{i:03d}",
            code_file=code_file,
            count=count,
            created_at=when,
            modified_at=when,
        )
        for i, (name, when, count, code_file) in enumerate(rows)
    }


EXPECTED_ROWS = {day(0): 3, day(1): 2, day(5): 2, day(29): 1}


def bars(page):
    return page.html.select("svg.dash-chart-svg rect.bar")


def test_anonymous_is_sent_to_login_and_non_superuser_gets_403(make_app, db, symbols_dir):
    create_user(db, "viewer", "correct-horse", superuser=False)
    app = make_app(symbol_urls=str(symbols_dir))
    assert "/admin/login" in app.get("/admin/", status=303).headers["Location"]
    login(app, "viewer", "correct-horse")
    app.get("/admin/", status=403)


def test_chart_has_30_bars_with_the_right_counts(admin_app, data):
    page = admin_app.get("/admin/", status=200)
    svg = page.html.select_one("svg.dash-chart-svg")
    assert svg["role"] == "img"
    assert svg.find("title").text and svg.find("desc").text
    found = bars(page)
    assert len(found) == 30
    days = [b["data-day"] for b in found]
    assert days == [day(n) for n in range(29, -1, -1)]  # oldest to today
    shown = {d: int(b["data-rows"]) for d, b in zip(days, found, strict=True)}
    assert shown == {d: EXPECTED_ROWS.get(d, 0) for d in days}
    # Day labels and counts are drawn; empty days have no height.
    labels = [t.text for t in svg.select("text.dash-day")]
    assert labels == [d[5:] for d in days]
    counts = [t.text for t in svg.select("text.dash-count")]
    assert counts == [str(EXPECTED_ROWS.get(d, 0)) for d in days]
    heights = {d: float(b["height"]) for d, b in zip(days, found, strict=True)}
    assert heights[day(0)] > heights[day(1)] > 0 and heights[day(3)] == 0
    # The same figures as a table.
    trs = page.html.select("table.dash-per-day tbody tr")
    table_rows = [[td.text for td in tr.find_all("td")] for tr in trs]
    assert table_rows[0] == [day(0), "3"] and table_rows[1] == [day(1), "2"]
    assert table_rows[5] == [day(5), "2"]
    assert len(table_rows) == 30


def test_chart_buckets_in_utc_whatever_the_database_time_zone(make_app, db, data, symbols_dir):
    """PostgreSQL: a session TimeZone far from UTC must not move rows between days."""
    create_user(db, "admin", "correct-horse")
    engine = db.engine()
    if db.kind == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            name = conn.execute(text("SELECT current_database()")).scalar_one()
            conn.execute(text(f"ALTER DATABASE \"{name}\" SET timezone TO 'Pacific/Kiritimati'"))
    try:
        app = make_app(symbol_urls=str(symbols_dir))
        login(app, "admin", "correct-horse")
        found = bars(app.get("/admin/"))
        assert {b["data-day"]: int(b["data-rows"]) for b in found if b["data-rows"] != "0"} == EXPECTED_ROWS
    finally:
        if db.kind == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" RESET timezone'))
        engine.dispose()


def test_a_bar_links_to_that_days_rows(admin_app, data):
    page = admin_app.get("/admin/")
    link = page.html.select_one(f'svg.dash-chart-svg rect.bar[data-day="{day(1)}"]').find_parent("a")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link["href"]).query))
    assert query == {"modified_from": day(1), "modified_to": day(1)}
    listing = admin_app.get(link["href"])
    ids = [int(tr.find("td").text) for tr in listing.html.select("table.missing-table tbody tr")]
    assert ids == [data["yesterday-late"], data["yesterday-noon"]]


def test_counts(admin_app, data):
    page = admin_app.get("/admin/")
    figures = {dd["id"]: dd.text.strip() for dd in page.html.select("dl.dash-counts dd")}
    assert figures == {
        "count-total": "10",
        "count-today": "3",
        "count-yesterday": "2",
        "count-window": "8",
    }


def test_top_missing_symbols(admin_app, data):
    page = admin_app.get("/admin/")
    trs = page.html.select("table.dash-top tbody tr")
    rows = [[td.text.strip() for td in tr.find_all("td")] for tr in trs]
    # Largest count first, only rows modified in the window (not too-old, ancient).
    assert [r[0] for r in rows] == [
        "yesterday-noon.pdb",
        "first-day.pdb",
        "five-late.pdb",
        "five-early.pdb",
        "yesterday-late.pdb",
        "today-c.pdb",
        "today-b.pdb",
        "today-a.pdb",
    ]
    assert rows[0] == [
        "yesterday-noon.pdb",
        "D004",
        "xul.sym",
        "big.dll",
        "—",
        "50",
        at(1, hours=12).strftime("%Y-%m-%d %H:%M:%S"),
    ]


def test_top_list_is_capped_at_20(admin_app, table):
    table.insert_many([dict(symbol=f"s{i:02d}.pdb", count=i + 1) for i in range(30)])
    page = admin_app.get("/admin/")
    rows = page.html.select("table.dash-top tbody tr")
    assert len(rows) == 20
    assert rows[0].find("td").text.strip() == "s29.pdb" and rows[-1].find("td").text.strip() == "s10.pdb"


def test_empty_log(admin_app):
    page = admin_app.get("/admin/")
    assert [int(b["data-rows"]) for b in bars(page)] == [0] * 30
    assert page.html.select_one("#count-total").text.strip() == "0"
    assert "No misses in the last 30 days" in page.text


def test_health_section_runs_the_heartbeat_checks(admin_app):
    page = admin_app.get("/admin/")
    rows = {
        tr.find_all("td")[0].text: tr.find_all("td")[1].text
        for tr in page.html.select("table.dash-health tbody tr")
    }
    heartbeat = json.loads(admin_app.get("/__heartbeat__").text)
    assert rows == {name: ("ok" if check["ok"] else "failed") for name, check in heartbeat["checks"].items()}
    assert set(rows) == {
        "database",
        "cache",
        f"storage {admin_app.registry.tecken.locations[0].url}",
        f"storage {admin_app.registry.tecken.try_location.url}",
    }
    assert set(rows.values()) == {"ok"}
    assert "all healthy" in page.text


def test_health_section_shows_a_failing_check(make_app, db, symbols_dir, tmp_path):
    create_user(db, "admin", "correct-horse")
    app = make_app(symbol_urls=f"{symbols_dir},{tmp_path / 'does-not-exist'}")
    login(app, "admin", "correct-horse")
    page = app.get("/admin/", status=200)
    failed = [tr.find_all("td")[0].text for tr in page.html.select("table.dash-health tbody tr.failed")]
    assert failed == [f"storage {app.registry.tecken.locations[1].url}"]
    assert "failing" in page.text


def test_configuration_without_secrets(make_app, db, symbols_dir, memcached_clean):
    create_user(db, "admin", "correct-horse")
    app = make_app(
        symbol_urls=f"{symbols_dir},http://LOCALHOST:1/Bucket/pfx/?access=public",
        session_secret=SECRET,
        memcached_servers=memcached_clean.address,
        cache_found_ttl="7200",
    )
    # The app's engine is built already; show a password-bearing URL as the effective setting.
    app.registry.tecken = dataclasses.replace(
        app.registry.tecken, database_url="postgresql+psycopg://tecken:hunter2@db.example.com:5432/tecken"
    )
    login(app, "admin", "correct-horse")
    page = app.get("/admin/")
    config = {
        tr.find_all("td")[0].text: tr.find_all("td")[2].text
        for tr in page.html.select("table.dash-config tbody tr")
    }
    assert SECRET not in page.text and "hunter2" not in page.text
    assert "session_secret" not in config
    fields = {f.name for f in dataclasses.fields(app.registry.tecken)} - {"session_secret"}
    assert set(config) == fields
    assert config["database_url"] == "postgresql+psycopg://tecken:***@db.example.com:5432/tecken"
    locations = app.registry.tecken.locations
    assert config["locations"].split("\n") == [
        locations[0].url,
        "http://localhost:1/Bucket/pfx?access=public",
    ]
    assert config["try_location"] == app.registry.tecken.try_location.url
    assert config["memcached_servers"] == memcached_clean.address
    assert config["cache_found_ttl"] == "7200"
    assert config["secure_cookies"] == "false"
    assert config["download_file_extensions_allowed"] == ".sym .dl_ .ex_ .pd_ .dbg.gz .tar.bz2"


def test_user_supplied_values_are_escaped(admin_app, data):
    page = admin_app.get("/admin/")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert page.html.find("script") is None
