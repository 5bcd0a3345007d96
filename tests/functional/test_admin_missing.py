"""Console: the missing-symbol browser and its CSV export (SPEC §7, §6).

Rows are inserted directly by SQL into the real database (SQLite or PostgreSQL,
TECKEN_TEST_DB); the pages are read through HTTP as a signed-in superuser.
"""

import datetime
import re
import urllib.parse

import pytest

from tests.conftest import create_user, login
from tests.functional.missing_helpers import UTC, MissingTable, wait_until

HTML_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy")
EXPORT_HEADER = "id,symbol,debugid,filename,code_file,code_id,count,created_at,modified_at\r\n"
EXPORT_NAME = re.compile(r'\Aattachment; filename="missing-symbols-export-\d{8}T\d{6}Z\.csv"\Z')
TODAY = datetime.datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def days_ago(n, hour=12, minute=0, second=0):
    return TODAY.replace(hour=hour, minute=minute, second=second) - datetime.timedelta(days=n)


def day(n):
    return days_ago(n).strftime("%Y-%m-%d")


@pytest.fixture
def table(db):
    t = MissingTable(db)
    yield t
    t.close()


@pytest.fixture
def data(table):
    """A known data set: {name: id}."""
    rows = {
        "xul": dict(
            symbol="xul.pdb",
            debugid="AAAA1111",
            filename="xul.sym",
            code_file="xul.dll",
            code_id="5F00AA",
            count=5,
            created_at=days_ago(10),
            modified_at=days_ago(2),
        ),
        "libfoo": dict(
            symbol="libfoo.so",
            debugid="BBBB2222",
            filename="libfoo.so.sym",
            count=1,
            created_at=days_ago(0, hour=1),
            modified_at=days_ago(0, hour=1),
        ),
        "pct": dict(
            symbol="Foo_Bar%.pdb",
            debugid="CCCC3333",
            filename="Foo_Bar%.sym",
            code_file="foo.dll",
            code_id="DEADBEEF",
            count=12,
            created_at=days_ago(5),
            modified_at=days_ago(1),
        ),
        "mac": dict(
            symbol="XUL",
            debugid="DDDD4444",
            filename="XUL.sym",
            code_file="XUL",
            code_id="ab12",
            count=3,
            created_at=days_ago(40),
            modified_at=days_ago(40),
        ),
    }
    return {name: table.insert(**values) for name, values in rows.items()}


def listed_ids(page):
    """The ids of the rows shown, in order."""
    out = []
    for tr in page.html.select("table.missing-table tbody tr"):
        cells = tr.find_all("td")
        if len(cells) == 9:
            out.append(int(cells[0].text))
    return out


def link(page, rel):
    a = page.html.select_one(f'a[rel="{rel}"]')
    return a["href"] if a is not None else None


def query_of(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True))


# -- access -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/admin/missing-symbols", "/admin/missing-symbols.csv?symbol=x"])
def test_anonymous_is_sent_to_login_and_non_superuser_gets_403(make_app, db, symbols_dir, url):
    create_user(db, "viewer", "correct-horse", superuser=False)
    app = make_app(symbol_urls=str(symbols_dir))
    r = app.get(url, status=303)
    assert "/admin/login?next=" in r.headers["Location"]
    assert urllib.parse.unquote(r.headers["Location"].split("next=", 1)[1]) == url
    login(app, "viewer", "correct-horse")
    app.get(url, status=403)


# -- the list ---------------------------------------------------------------------------------------
def test_lists_every_column_newest_first(admin_app, data):
    page = admin_app.get("/admin/missing-symbols", status=200)
    for name in HTML_HEADERS:
        assert name in page.headers
    assert listed_ids(page) == [data["libfoo"], data["pct"], data["xul"], data["mac"]]
    first = [td.text.strip() for td in page.html.select("table.missing-table tbody tr")[2].find_all("td")]
    assert first == [
        str(data["xul"]),
        "xul.pdb",
        "AAAA1111",
        "xul.sym",
        "xul.dll",
        "5F00AA",
        "5",
        days_ago(10).strftime("%Y-%m-%d %H:%M:%S"),
        days_ago(2).strftime("%Y-%m-%d %H:%M:%S"),
    ]
    assert "4 rows" in page.text and "page 1 of 1" in page.text
    assert link(page, "next") is None and link(page, "prev") is None


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"symbol": "xul"}, ["xul"]),  # case-sensitive: not "XUL"
        ({"symbol": "XUL"}, ["mac"]),
        ({"symbol": "%"}, ["pct"]),  # % and _ are literal
        ({"symbol": "_"}, ["pct"]),
        ({"debugid": "BBBB"}, ["libfoo"]),
        ({"filename": ".so.sym"}, ["libfoo"]),
        ({"code_file": ".dll"}, ["pct", "xul"]),
        ({"code_id": "BEEF"}, ["pct"]),
        ({"code_id": "ab"}, ["mac"]),
        ({"count": ">=5"}, ["pct", "xul"]),
        ({"count": ">1,<10"}, ["xul", "mac"]),
        ({"count": "1"}, ["libfoo"]),
        ({"symbol": ".pdb", "count": "<10"}, ["xul"]),
    ],
)
def test_filters_per_column(admin_app, data, query, expected):
    page = admin_app.get("/admin/missing-symbols", query, status=200)
    assert listed_ids(page) == [data[name] for name in expected]
    # The form shows the filters again.
    form = page.forms["missing-filters"]
    for name, value in query.items():
        assert form[name].value == value


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"modified_from": day(2), "modified_to": day(1)}, ["pct", "xul"]),  # both ends included
        ({"modified_from": day(1)}, ["libfoo", "pct"]),
        ({"modified_to": day(2)}, ["xul", "mac"]),
        ({"modified_from": day(2), "modified_to": day(2)}, ["xul"]),
        ({"created_from": day(10), "created_to": day(5)}, ["pct", "xul"]),
        ({"created_to": day(11)}, ["mac"]),
        ({"created_from": "today"}, ["libfoo"]),
        ({"modified_at": "yesterday"}, ["pct"]),  # the §6 grammar directly
        ({"modified_at": f">={day(2)}", "modified_to": day(2)}, ["xul"]),  # ANDed with the dates
        ({"created_at": f"<{day(30)}"}, ["mac"]),
    ],
)
def test_date_ranges(admin_app, data, query, expected):
    page = admin_app.get("/admin/missing-symbols", query, status=200)
    assert listed_ids(page) == [data[name] for name in expected]
    for name, value in query.items():
        assert page.forms["missing-filters"][name].value == value


def test_date_inputs_are_pickers_unless_the_value_is_not_a_date(admin_app, data):
    page = admin_app.get("/admin/missing-symbols", {"modified_from": day(2), "created_from": "today"})
    assert page.html.select_one('input[name="modified_from"]')["type"] == "date"
    assert page.html.select_one('input[name="modified_to"]')["type"] == "date"
    # A picker cannot hold "today": shown as text, so resubmitting the form keeps it.
    assert page.html.select_one('input[name="created_from"]')["type"] == "text"
    assert listed_ids(page.forms["missing-filters"].submit()) == [data["libfoo"]]


def test_filter_form_submits_through_webtest(admin_app, data):
    form = admin_app.get("/admin/missing-symbols").forms["missing-filters"]
    form["code_file"] = ".dll"
    form["sort"] = "count"
    form["reverse"] = "false"
    page = form.submit(status=200)
    assert listed_ids(page) == [data["xul"], data["pct"]]


@pytest.mark.parametrize(
    "query, expected",
    [
        ({}, ["libfoo", "pct", "xul", "mac"]),
        ({"sort": "count"}, ["libfoo", "mac", "xul", "pct"]),
        ({"sort": "count", "reverse": "true"}, ["pct", "xul", "mac", "libfoo"]),
        ({"sort": "created_at", "reverse": "false"}, ["mac", "xul", "pct", "libfoo"]),
        ({"sort": "created_at", "reverse": "true"}, ["libfoo", "pct", "xul", "mac"]),
        ({"sort": "modified_at", "reverse": "false"}, ["mac", "xul", "pct", "libfoo"]),
    ],
)
def test_sort(admin_app, data, query, expected):
    page = admin_app.get("/admin/missing-symbols", query, status=200)
    assert listed_ids(page) == [data[name] for name in expected]


def test_column_header_sort_links_keep_filters_and_flip_direction(admin_app, data):
    page = admin_app.get("/admin/missing-symbols", {"code_file": ".dll", "sort": "count", "reverse": "true"})
    header = page.html.select_one('table.missing-table thead a[href*="sort=count"]')
    q = query_of(header["href"])
    assert q["code_file"] == ".dll" and q["sort"] == "count" and q["reverse"] == "false"
    assert listed_ids(admin_app.get(header["href"])) == [data["xul"], data["pct"]]


def test_pagination_links_keep_the_filters(admin_app, table):
    base = days_ago(3)
    rows = [
        dict(
            symbol=f"page{i:03d}.pdb",
            debugid="EEEE",
            count=1 + i % 7,
            modified_at=base + datetime.timedelta(minutes=i),
        )
        for i in range(250)
    ]
    rows += [dict(symbol=f"other{i}.pdb", debugid="EEEE") for i in range(5)]
    table.insert_many(rows)
    query = {
        "symbol": "page",
        "modified_from": day(3),
        "count": ">=1",
        "sort": "modified_at",
        "reverse": "false",
    }
    page = admin_app.get("/admin/missing-symbols", query, status=200)
    assert "250 rows" in page.text and "page 1 of 3" in page.text
    seen = listed_ids(page)
    assert len(seen) == 100
    while link(page, "next"):
        q = query_of(link(page, "next"))
        assert {k: q[k] for k in query} == query
        page = admin_app.get(link(page, "next"), status=200)
        seen += listed_ids(page)
    assert "page 3 of 3" in page.text
    assert len(seen) == 250 == len(set(seen))
    shown = [r["symbol"] for r in table.rows() if r["id"] in set(seen)]
    assert all(s.startswith("page") for s in shown)
    # Ascending modified_at: the ids come in insertion order.
    assert seen == sorted(seen)
    prev = link(page, "prev")
    assert query_of(prev)["page"] == "2" and query_of(prev)["symbol"] == "page"
    assert query_of(link(page, "first"))["page"] == "1"
    # A page past the end says so and links back to the last page.
    past = admin_app.get("/admin/missing-symbols", {**query, "page": "9"}, status=200)
    assert listed_ids(past) == [] and "page 9 of 3" in past.text
    assert query_of(link(past, "prev"))["page"] == "3"


@pytest.mark.parametrize(
    "query, field, fragment",
    [
        ({"count": "abc"}, "Count", "Invalid count condition"),
        ({"count": "99999999999"}, "Count", "larger than"),
        ({"modified_from": "31/12/2026"}, "Modified from", "Invalid value"),
        ({"created_to": "2026-02-30"}, "Created to", "Invalid date"),
        ({"modified_at": ">=soon"}, "Modified (conditions)", "Invalid value"),
        ({"sort": "symbol"}, "Sort", "Invalid sort"),
        ({"reverse": "maybe"}, "Direction", "Invalid reverse"),
        ({"page": "0"}, "Page", "Invalid page"),
        ({"symbol": "a\x01b"}, "Symbol", "Control characters"),
    ],
)
def test_bad_filters_show_their_messages(admin_app, data, query, field, fragment):
    page = admin_app.get("/admin/missing-symbols", query, status=200)
    box = page.html.select_one(".missing-errors")
    assert box is not None
    items = [li.text for li in box.find_all("li")]
    assert any(item.startswith(field + ":") and fragment in item for item in items), items
    assert listed_ids(page) == []
    assert "Export CSV" not in page.text


def test_invalid_utf8_is_a_message_not_a_500(admin_app, data):
    page = admin_app.get("/admin/missing-symbols?symbol=%ff", status=200)
    assert "Invalid characters" in page.html.select_one(".missing-errors").text


def test_user_supplied_values_are_escaped(admin_app, table):
    table.insert("evil.pdb", code_file="<script>alert(1)</script>", code_id='"><img src=x onerror=alert(1)>')
    page = admin_app.get("/admin/missing-symbols", {"symbol": "<b>x</b>"})
    assert "<b>x</b>" not in page.text and "&lt;b&gt;x&lt;/b&gt;" in page.text
    page = admin_app.get("/admin/missing-symbols")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<img" not in page.text
    assert page.html.find("script") is None


# -- the export ----------------------------------------------------------------------------------
@pytest.fixture
def export_data(table):
    """Rows whose cells a spreadsheet would run, and a comma/quote value."""
    t0 = datetime.datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    rows = [
        dict(
            symbol="=cmd|' /C calc'!A0",
            debugid="+1",
            filename="-1.sym",
            code_file="@x",
            code_id="\tx",
            count=2,
            created_at=t0,
            modified_at=t0 + datetime.timedelta(days=1),
        ),
        dict(
            symbol="\rx.pdb",
            debugid="AB-CD",
            filename='a,b "quoted".sym',
            code_file='say "hi", then =1',
            code_id=None,
            count=7,
            created_at=t0,
            modified_at=t0 + datetime.timedelta(days=2),
        ),
        dict(
            symbol="plain.pdb",
            debugid="0123",
            filename="plain.sym",
            code_file=None,
            code_id=None,
            count=1,
            created_at=t0,
            modified_at=t0 + datetime.timedelta(days=3),
        ),
        dict(
            symbol="ünïcode.pdb",
            debugid="FFFF",
            filename="ü.sym",
            code_file="日本.dll",
            code_id="-",
            count=40,
            created_at=t0 + datetime.timedelta(hours=1),
            modified_at=t0 + datetime.timedelta(days=4),
        ),
    ]
    return [table.insert(**row) for row in rows]


def expected_lines(ids):
    a, b, c, d = ids
    return {
        a: f"{a},'=cmd|' /C calc'!A0,'+1,'-1.sym,'@x,'\tx,2,2026-03-01T08:30:15.123456+00:00,"
        "2026-03-02T08:30:15.123456+00:00\r\n",
        b: f'{b},"\'\rx.pdb",AB-CD,"a,b ""quoted"".sym","say ""hi"", then =1",,7,'
        "2026-03-01T08:30:15.123456+00:00,2026-03-03T08:30:15.123456+00:00\r\n",
        c: f"{c},plain.pdb,0123,plain.sym,,,1,2026-03-01T08:30:15.123456+00:00,"
        "2026-03-04T08:30:15.123456+00:00\r\n",
        d: f"{d},ünïcode.pdb,FFFF,ü.sym,日本.dll,'-,40,2026-03-01T09:30:15.123456+00:00,"
        "2026-03-05T08:30:15.123456+00:00\r\n",
    }


def test_export_exact_csv_with_neutralised_cells(admin_app, export_data):
    lines = expected_lines(export_data)
    r = admin_app.get("/admin/missing-symbols.csv", status=200)
    assert EXPORT_NAME.match(r.headers["Content-Disposition"]), r.headers["Content-Disposition"]
    assert r.headers["Content-Type"].split(";")[0] == "text/csv"
    assert "no-store" in r.headers["Cache-Control"]
    a, b, c, d = export_data
    # Default order: newest modified_at first.
    assert r.body.decode("utf-8") == EXPORT_HEADER + lines[d] + lines[c] + lines[b] + lines[a]
    assert not r.body.startswith(b"\xef\xbb\xbf")


def test_export_link_carries_the_filters_and_order(admin_app, export_data):
    a, b, c, d = export_data
    lines = expected_lines(export_data)
    page = admin_app.get("/admin/missing-symbols", {"symbol": ".pdb", "sort": "count", "reverse": "false"})
    href = page.html.select_one("a.missing-export")["href"]
    assert urllib.parse.urlsplit(href).path == "/admin/missing-symbols.csv"
    assert query_of(href) == {"symbol": ".pdb", "sort": "count", "reverse": "false"}
    r = admin_app.get(href, status=200)
    assert r.body.decode("utf-8") == EXPORT_HEADER + lines[c] + lines[b] + lines[d]


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"code_file": "@"}, "a"),
        ({"code_id": "-", "count": ">10"}, "d"),
        ({"modified_from": "2026-03-03", "modified_to": "2026-03-03"}, "b"),
        ({"created_from": "2026-03-01", "created_to": "2026-03-01", "count": "1"}, "c"),
    ],
)
def test_export_filters(admin_app, export_data, query, expected):
    ids = dict(zip("abcd", export_data, strict=True))
    r = admin_app.get("/admin/missing-symbols.csv", query, status=200)
    assert r.body.decode("utf-8") == EXPORT_HEADER + expected_lines(export_data)[ids[expected]]


def test_export_is_every_page_not_just_one(admin_app, table):
    table.insert_many([dict(symbol=f"many{i:04d}.pdb", debugid="AB", count=i + 1) for i in range(2345)])
    r = admin_app.get("/admin/missing-symbols.csv", {"symbol": "many", "sort": "count", "reverse": "true"})
    lines = r.body.decode("utf-8").split("\r\n")
    assert lines[0] + "\r\n" == EXPORT_HEADER and lines[-1] == ""
    body = lines[1:-1]
    assert len(body) == 2345
    assert [int(line.split(",")[6]) for line in body] == list(range(2345, 0, -1))


def test_export_bad_filter_is_400_with_the_errors(admin_app, export_data):
    r = admin_app.get("/admin/missing-symbols.csv", {"count": "lots", "modified_to": "nope"}, status=400)
    assert "Invalid count condition" in r.text and "Modified to" in r.text
    assert "Content-Disposition" not in r.headers


def test_export_head(admin_app, export_data):
    r = admin_app.head("/admin/missing-symbols.csv", status=200)
    assert EXPORT_NAME.match(r.headers["Content-Disposition"])
    assert r.body == b""


def test_export_does_not_escape_for_html_but_neutralises(admin_app, table):
    table.insert("x.pdb", code_file="<script>alert(1)</script>", code_id='=HYPERLINK("http://evil")')
    r = admin_app.get("/admin/missing-symbols.csv")
    assert "<script>alert(1)</script>" in r.text  # a CSV attachment, not HTML: values as stored
    assert ',"\'=HYPERLINK(""http://evil"")",' in r.text


def _call(admin_app, url):
    """Call the WSGI app directly (no test client buffering): (status, headers, app_iter)."""
    import webob

    cookie = "; ".join(f"{k}={v}" for k, v in admin_app.cookies.items())
    req = webob.Request.blank(url, headers={"Cookie": cookie, "Host": "symbols.example.com"})
    return req.call_application(admin_app.app)


def test_export_streams_in_chunks_and_releases_its_connection(admin_app, table):
    table.insert_many([dict(symbol=f"many{i:04d}.pdb", debugid="AB") for i in range(2500)])
    pool = admin_app.registry.dbengine.pool
    status, headers, app_iter = _call(admin_app, "/admin/missing-symbols.csv?symbol=many")
    assert status.startswith("200")
    assert "Content-Length" not in dict(headers)
    # The query runs before the answer: the body holds an open connection.
    connection = app_iter.connection
    assert not connection.closed
    chunks = list(app_iter)
    app_iter.close()
    assert len(chunks) >= 3  # 1000 rows a chunk
    assert b"".join(chunks).count(b"\r\n") == 2501
    assert connection.closed
    # A client that leaves before the first chunk: close() still releases it.
    status, headers, app_iter = _call(admin_app, "/admin/missing-symbols.csv?symbol=many")
    connection = app_iter.connection
    assert not connection.closed
    app_iter.close()
    assert connection.closed
    # Nothing leaked (the rules reloader thread borrows one briefly now and then).
    assert wait_until(lambda: pool.checkedout() == 0, timeout=5)
