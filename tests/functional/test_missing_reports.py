"""The missing-symbol reports and clean-up (SPEC §6, §1): /missingsymbols.csv,
/missingsymbols/ and ``tecken-pyramid cleanse-missing-symbols``.

Data sets are inserted directly by SQL into the real database (SQLite or PostgreSQL,
TECKEN_TEST_DB); expected answers are written out by hand.
"""

import datetime
import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, AppFactory
from tests.functional.missing_helpers import UTC, MissingTable, utcnow

CSV_HEADER = b"debug_file,debug_id,code_file,code_id\r\n"
ISO = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?\+00:00\Z")


def dt(text):
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def table(db):
    t = MissingTable(db)
    yield t
    t.close()


@pytest.fixture
def app(make_app, symbols_dir):
    return make_app(symbol_urls=str(symbols_dir))


def attachment(when):
    return f'attachment; filename="missing-symbols-{(when - datetime.timedelta(days=1)):%Y-%m-%d}.csv"'


def get_csv(app, method="get"):
    """The report and the attachment names it may carry (yesterday's UTC date, which may
    turn during the request)."""
    before = utcnow()
    r = getattr(app, method)("/missingsymbols.csv", status=200)
    assert r.headers["Content-Disposition"] in {attachment(before), attachment(utcnow())}
    assert r.headers["Content-Type"].split(";")[0].strip() == "text/csv"
    return r


# -- /missingsymbols.csv --------------------------------------------------------------------------------
def assert_csv(body, expected_rows):
    """Exact bytes, rows in any order: header, then each expected row exactly once."""
    assert body.startswith(CSV_HEADER)
    positions = []
    for row in expected_rows:
        assert body.count(row) == 1, (row, body)
        positions.append((body.index(row), row))
    assert body == CSV_HEADER + b"".join(row for _, row in sorted(positions))


def test_csv_exact_bytes_for_a_known_data_set(app, table):
    now = utcnow()
    hours = lambda n: now - datetime.timedelta(hours=n)  # noqa: E731
    # Included: modified within 24 h, symbol *.pdb and filename *.sym in any case.
    table.insert(
        "xul.pdb",
        debugid="44E4EC8C2F41492B9369D6B9A059577C2",
        filename="xul.sym",
        code_file="xul.dll",
        code_id="5CF2591C6859000",
        modified_at=hours(1),
    )
    table.insert("Foo.PDB", debugid="abc123", filename="Foo.SYM", modified_at=hours(23.9))
    table.insert(
        'we,ird"name.pdb',
        debugid="DEADBEEF",
        filename="weird.sym",
        code_file='a "quoted" file',
        code_id="x,y",
        modified_at=hours(2),
    )
    table.insert(
        "汉字.pdb",
        debugid="0A",
        filename="汉字.sym",
        code_file="=cmd|' /C calc'!A0",
        code_id="-1+1",
        modified_at=hours(3),
    )
    table.insert(
        "recent.pdb",
        debugid="E5",
        filename="recent.sym",
        code_id="id",
        created_at=now - datetime.timedelta(days=40),
        modified_at=hours(0.1),
        count=7,
    )
    table.insert(
        "k.pdb", debugid="E6", filename="k.sym", code_file=" lead", code_id="a\r\nb", modified_at=hours(4)
    )
    # Excluded.
    table.insert(
        "old.pdb",
        debugid="E0",
        filename="old.sym",
        modified_at=hours(25),
        created_at=now - datetime.timedelta(days=30),
    )
    table.insert("xul.pdb", debugid="E1", filename="xul.dl_", modified_at=hours(1))
    table.insert("libxul.so", debugid="E2", filename="libxul.so.sym", modified_at=hours(1))
    table.insert("xul.pdbx", debugid="E3", filename="xul.sym", modified_at=hours(1))
    table.insert("a.pdb", debugid="E4", filename="a.sym.gz", modified_at=hours(1))
    table.insert("b.pdb", debugid="E7", filename="b.pd_", modified_at=hours(1))

    r = get_csv(app)
    assert not r.body.startswith(b"\xef\xbb\xbf")
    assert_csv(
        r.body,
        [
            b"xul.pdb,44E4EC8C2F41492B9369D6B9A059577C2,xul.dll,5CF2591C6859000\r\n",
            b"Foo.PDB,abc123,,\r\n",
            b'"we,ird""name.pdb",DEADBEEF,"a ""quoted"" file","x,y"\r\n',
            "汉字.pdb,0A,=cmd|' /C calc'!A0,-1+1\r\n".encode(),
            b"recent.pdb,E5,,id\r\n",
            b'k.pdb,E6, lead,"a\r\nb"\r\n',
        ],
    )


def test_csv_is_only_the_header_when_empty(app, table):
    table.insert("old.pdb", modified_at=utcnow() - datetime.timedelta(hours=24, minutes=5))
    assert get_csv(app).body == CSV_HEADER


def test_csv_head(app, table):
    table.insert("xul.pdb")
    assert get_csv(app, "head").body == b""


def test_csv_streams_many_rows(app, table):
    """More rows than one streamed chunk (a server-side cursor on PostgreSQL)."""
    now = utcnow()
    table.insert_many(
        [
            dict(symbol=f"s{i}.pdb", debugid=f"{i:X}", filename="s.sym", code_id=str(i), modified_at=now)
            for i in range(2500)
        ]
    )
    r = get_csv(app)
    lines = r.body.split(b"\r\n")
    assert lines[0] + b"\r\n" == CSV_HEADER and lines[-1] == b""
    assert sorted(lines[1:-1]) == sorted(f"s{i}.pdb,{i:X},,{i}".encode() for i in range(2500))


@pytest.mark.parametrize("url", ["/missingsymbols.csv", "/missingsymbols/"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_reports_answer_405_to_other_methods(app, url, method):
    r = app.request(url, method=method, status=405)
    assert r.headers["Allow"] == "GET, HEAD"
    assert r.headers["Content-Type"] == "application/json"
    assert r.json == {"error": f"Method Not Allowed ({method}): {url}"}


# -- /missingsymbols/ ----------------------------------------------------------------------------------------
def dataset_rows():
    now = utcnow()
    yesterday_noon = now.replace(hour=0, minute=0, second=0, microsecond=0) - datetime.timedelta(hours=12)
    return [
        dict(
            symbol="xul.pdb",
            debugid="ABC123",
            filename="xul.sym",
            code_file="xul.dll",
            code_id="5CF",
            count=1,
            created_at=dt("2024-01-01T00:00:00"),
            modified_at=dt("2024-01-10T12:00:00"),
        ),
        dict(
            symbol="XUL.pdb",
            debugid="abc123",
            filename="XUL.sym",
            count=5,
            created_at=dt("2024-01-02T00:00:00"),
            modified_at=dt("2024-01-10T23:59:59.999999"),
        ),
        dict(
            symbol="100%_real.pdb",
            debugid="DEF456",
            filename="a_b%.sym",
            count=1,
            created_at=dt("2024-01-03T00:00:00"),
            modified_at=dt("2024-01-11T00:00:00"),
        ),
        dict(
            symbol="100Xreal.pdb",
            debugid="DEF457",
            filename="aXb.sym",
            count=2,
            created_at=dt("2024-01-03T00:00:00"),
            modified_at=dt("2024-01-09T23:00:00"),
        ),
        dict(
            symbol="big.pdb",
            debugid="0000AAAA",
            filename="big.sym",
            count=2147483647,
            created_at=dt("2024-01-05T00:00:00"),
            modified_at=dt("2024-01-09T12:00:00"),
        ),
        dict(
            symbol="zero.pdb",
            debugid="FFFF",
            filename="zero.sym",
            count=0,
            created_at=dt("2023-12-01T00:00:00"),
            modified_at=dt("2023-12-31T23:59:59"),
        ),
        dict(
            symbol="yesterday.pdb",
            debugid="1111",
            filename="yesterday.sym",
            count=3,
            created_at=yesterday_noon,
            modified_at=yesterday_noon,
        ),
        dict(
            symbol="today.pdb", debugid="2222", filename="today.sym", count=3, created_at=now, modified_at=now
        ),
    ]


# The JSON tests below only read: one app and one data set serve them all (building an app
# per test would dominate the run time). ``dataset`` re-creates the rows whenever another
# test (through the ``db`` fixture) emptied the table, or the UTC day turned.
@pytest.fixture(scope="module")
def json_app(database, tmp_path_factory):
    factory = AppFactory(database)
    yield factory(symbol_urls=str(tmp_path_factory.mktemp("symbols")))
    factory.close()


@pytest.fixture(scope="module")
def json_table(database):
    t = MissingTable(database)
    yield t
    t.close()


_DATASET = {}


@pytest.fixture
def dataset(database, json_table):
    """Eight rows; returns {symbol: id}. Symbols are unique labels."""
    current = {r["symbol"]: r["id"] for r in json_table.rows()}
    if _DATASET.get("ids") != current or _DATASET.get("day") != utcnow().date():
        database.reset()
        ids = {}
        for row in dataset_rows():
            symbol = row.pop("symbol")
            ids[symbol] = json_table.insert(symbol, **row)
        _DATASET.update(ids=ids, day=utcnow().date())
    return _DATASET["ids"]


ALL = {
    "xul.pdb",
    "XUL.pdb",
    "100%_real.pdb",
    "100Xreal.pdb",
    "big.pdb",
    "zero.pdb",
    "yesterday.pdb",
    "today.pdb",
}


def symbols(answer):
    return {record["symbol"] for record in answer["records"]}


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", ALL),
        # Substrings: case-sensitive, % and _ literal.
        ("symbol=xul", {"xul.pdb"}),
        ("symbol=XUL", {"XUL.pdb"}),
        ("symbol=.pdb", ALL),
        ("symbol=100%25", {"100%_real.pdb"}),
        ("symbol=_real", {"100%_real.pdb"}),
        ("symbol=%25_", {"100%_real.pdb"}),
        ("symbol=%25", {"100%_real.pdb"}),
        ("symbol=_", {"100%_real.pdb"}),
        ("symbol=nothing", set()),
        ("debugid=abc", {"XUL.pdb"}),
        ("debugid=ABC", {"xul.pdb"}),
        ("debugid=123", {"xul.pdb", "XUL.pdb"}),
        ("debugid=DEF45", {"100%_real.pdb", "100Xreal.pdb"}),
        ("filename=_b%25", {"100%_real.pdb"}),
        ("filename=b%25", {"100%_real.pdb"}),
        ("filename=Xb", {"100Xreal.pdb"}),
        ("filename=xb", set()),
        ("filename=.sym", ALL),
        ("symbol=100&filename=X", {"100Xreal.pdb"}),
        # An empty value is no filter; the last value wins; unknown parameters are ignored.
        ("symbol=&debugid=&filename=&modified_at=&count=&sort=&reverse=&page=", ALL),
        ("symbol=xul&symbol=XUL", {"XUL.pdb"}),
        ("symbol=xul&symbol=", ALL),
        ("count=abc&count=5", {"XUL.pdb"}),
        ("foo=bar&batch_size=5&symbol=xul", {"xul.pdb"}),
        # modified_at: a date alone or with = is that whole UTC day.
        ("modified_at=2024-01-10", {"xul.pdb", "XUL.pdb"}),
        ("modified_at=%3D2024-01-10", {"xul.pdb", "XUL.pdb"}),
        ("modified_at=2023-12-31", {"zero.pdb"}),
        (
            "modified_at=%3E%3D2024-01-10",
            {"xul.pdb", "XUL.pdb", "100%_real.pdb", "yesterday.pdb", "today.pdb"},
        ),
        ("modified_at=%3C2024-01-10", {"100Xreal.pdb", "big.pdb", "zero.pdb"}),
        ("modified_at=%3C%3D2024-01-10", {"100Xreal.pdb", "big.pdb", "zero.pdb"}),
        ("modified_at=%3E2024-01-10", {"xul.pdb", "XUL.pdb", "100%_real.pdb", "yesterday.pdb", "today.pdb"}),
        # Date-times: exact instants, Z or an offset, seconds optional.
        ("modified_at=%3E2024-01-10T12:00", {"XUL.pdb", "100%_real.pdb", "yesterday.pdb", "today.pdb"}),
        (
            "modified_at=%3E%3D2024-01-10T12:00:00Z",
            {"xul.pdb", "XUL.pdb", "100%_real.pdb", "yesterday.pdb", "today.pdb"},
        ),
        ("modified_at=2024-01-10T12:00Z", {"xul.pdb"}),
        ("modified_at=%3D2024-01-10T12:00:00%2B00:00", {"xul.pdb"}),
        ("modified_at=%3C%3D2024-01-09T23:00:00Z", {"100Xreal.pdb", "big.pdb", "zero.pdb"}),
        ("modified_at=%3C2024-01-09T23:00:00Z", {"big.pdb", "zero.pdb"}),
        (
            "modified_at=%3E%3D2024-01-10T13:00%2B01:00",
            {"xul.pdb", "XUL.pdb", "100%_real.pdb", "yesterday.pdb", "today.pdb"},
        ),
        ("modified_at=%3C2024-01-10T07:00-05:00", {"100Xreal.pdb", "big.pdb", "zero.pdb"}),
        ("modified_at=2024-01-11T05:30%2B05:30", {"100%_real.pdb"}),
        ("modified_at=2024-01-10T18:59:59-05:00", set()),  # 23:59:59Z; XUL.pdb is 23:59:59.999999
        # today / yesterday.
        ("modified_at=today", {"today.pdb"}),
        ("modified_at=%3Dtoday", {"today.pdb"}),
        ("modified_at=yesterday", {"yesterday.pdb"}),
        ("modified_at=%3Dyesterday", {"yesterday.pdb"}),
        ("modified_at=%3E%3Dyesterday", {"yesterday.pdb", "today.pdb"}),
        ("modified_at=%3Ctoday", ALL - {"today.pdb"}),
        ("modified_at=%3Eyesterday", {"yesterday.pdb", "today.pdb"}),
        ("modified_at=%3C%3Dyesterday", ALL - {"yesterday.pdb", "today.pdb"}),
        # Comma-separated conditions are ANDed.
        ("modified_at=%3E%3D2024-01-10,%3C2024-01-11", {"xul.pdb", "XUL.pdb"}),
        (
            "modified_at=%3E2024-01-09,%3C%3D2024-01-10T12:00Z,%3E%3D2024-01-09T23:00Z",
            {"100Xreal.pdb", "xul.pdb"},
        ),
        ("modified_at=%3E%3D2024-01-01,%3C2023-01-01", set()),
        # count.
        ("count=5", {"XUL.pdb"}),
        ("count=%3D5", {"XUL.pdb"}),
        ("count=0", {"zero.pdb"}),
        ("count=%3E0", ALL - {"zero.pdb"}),
        ("count=%3E%3D0", ALL),
        ("count=%3C1", {"zero.pdb"}),
        ("count=2147483647", {"big.pdb"}),
        ("count=%3E%3D2147483647", {"big.pdb"}),
        ("count=%3C2147483647", ALL - {"big.pdb"}),
        ("count=%3E2147483647", set()),
        ("count=%3C%3D1", {"xul.pdb", "100%_real.pdb", "zero.pdb"}),
        ("count=%3E%3D2,%3C%3D3", {"100Xreal.pdb", "yesterday.pdb", "today.pdb"}),
        ("count=%3E1,%3C5,%3E2", {"yesterday.pdb", "today.pdb"}),
        # Everything together.
        (
            "symbol=.pdb&debugid=1&filename=.sym&modified_at=%3E%3D2024-01-01&count=%3E%3D1",
            {"xul.pdb", "XUL.pdb", "yesterday.pdb"},
        ),
    ],
)
def test_json_filters(json_app, dataset, query, expected):
    r = json_app.get("/missingsymbols/?" + query, status=200)
    assert r.headers["Content-Type"] == "application/json"
    answer = r.json
    assert symbols(answer) == expected
    assert answer["total_count"] == len(expected)
    assert answer["page"] == 1
    assert answer["batch_size"] == 100


def test_json_record_shape(json_app, dataset):
    answer = json_app.get("/missingsymbols/", status=200).json
    assert set(answer) == {"total_count", "page", "batch_size", "order_by", "records"}
    by_symbol = {record["symbol"]: record for record in answer["records"]}
    for record in answer["records"]:
        assert list(record) == [
            "id",
            "symbol",
            "debugid",
            "filename",
            "code_file",
            "code_id",
            "count",
            "created_at",
            "modified_at",
        ]
        assert ISO.match(record["created_at"]) and ISO.match(record["modified_at"]), record
    assert by_symbol["xul.pdb"] == {
        "id": dataset["xul.pdb"],
        "symbol": "xul.pdb",
        "debugid": "ABC123",
        "filename": "xul.sym",
        "code_file": "xul.dll",
        "code_id": "5CF",
        "count": 1,
        "created_at": by_symbol["xul.pdb"]["created_at"],
        "modified_at": by_symbol["xul.pdb"]["modified_at"],
    }
    assert datetime.datetime.fromisoformat(by_symbol["xul.pdb"]["created_at"]) == dt("2024-01-01T00:00:00")
    assert datetime.datetime.fromisoformat(by_symbol["xul.pdb"]["modified_at"]) == dt("2024-01-10T12:00:00")
    assert by_symbol["XUL.pdb"]["modified_at"] == "2024-01-10T23:59:59.999999+00:00"
    assert by_symbol["XUL.pdb"]["code_file"] is None and by_symbol["XUL.pdb"]["code_id"] is None
    assert by_symbol["big.pdb"]["count"] == 2147483647


def expected_order(table, key, descending):
    rows = table.rows()
    ordered = sorted(rows, key=lambda r: (r[key], r["id"]), reverse=descending)
    return [r["id"] for r in ordered]


@pytest.mark.parametrize(
    "query, sort, reverse",
    [
        ("", "modified_at", True),
        ("reverse=false", "modified_at", True),  # validated and ignored without sort
        ("reverse=TRUE", "modified_at", True),
        ("sort=&reverse=false", "modified_at", True),
        ("sort=modified_at", "modified_at", False),
        ("sort=modified_at&reverse=true", "modified_at", True),
        ("sort=modified_at&reverse=True", "modified_at", True),
        ("sort=created_at", "created_at", False),
        ("sort=created_at&reverse=false", "created_at", False),
        ("sort=created_at&reverse=TRUE", "created_at", True),
        ("sort=count", "count", False),
        ("sort=count&reverse=FaLsE", "count", False),
        ("sort=count&reverse=tRuE", "count", True),
        ("reverse=true&sort=count&sort=created_at", "created_at", True),
    ],
)
def test_json_sort_and_reverse(json_app, json_table, dataset, query, sort, reverse):
    answer = json_app.get("/missingsymbols/?" + query, status=200).json
    assert answer["order_by"] == {"sort": sort, "reverse": reverse}
    assert [r["id"] for r in answer["records"]] == expected_order(json_table, sort, reverse)


def test_json_pages(json_app, dataset):
    first = json_app.get("/missingsymbols/", status=200).json
    assert first["page"] == 1 and first["total_count"] == 8 and len(first["records"]) == 8
    assert json_app.get("/missingsymbols/?page=1", status=200).json == first
    for page in (2, 99999, 100000):
        answer = json_app.get(f"/missingsymbols/?page={page}", status=200).json
        assert answer["page"] == page
        assert answer["total_count"] == 8
        assert answer["records"] == []


def test_json_page_boundaries_with_shared_timestamps(app, table):
    """250 rows with one modified_at, created_at and count (and a second count value,
    interleaved): consecutive pages never overlap or skip a row, in every order."""
    when = utcnow() - datetime.timedelta(hours=1)
    table.insert_many(
        [
            {"symbol": f"dup{i:03d}.pdb", "count": 1 + i % 2, "created_at": when, "modified_at": when}
            for i in range(250)
        ]
    )
    for query, key, descending in [
        ("", "modified_at", True),
        ("sort=modified_at", "modified_at", False),
        ("sort=modified_at&reverse=true", "modified_at", True),
        ("sort=created_at", "created_at", False),
        ("sort=created_at&reverse=true", "created_at", True),
        ("sort=count", "count", False),
        ("sort=count&reverse=true", "count", True),
    ]:
        seen = []
        for page, size in ((1, 100), (2, 100), (3, 50), (4, 0)):
            answer = app.get(f"/missingsymbols/?{query}&page={page}", status=200).json
            assert answer["total_count"] == 250
            assert len(answer["records"]) == size, (query, page)
            seen += [r["id"] for r in answer["records"]]
        assert seen == expected_order(table, key, descending), query
        assert len(set(seen)) == 250


@pytest.mark.parametrize(
    "query, params",
    [
        ("page=0", {"page"}),
        ("page=100001", {"page"}),
        ("page=abc", {"page"}),
        ("page=-1", {"page"}),
        ("page=1.5", {"page"}),
        ("page=1e3", {"page"}),
        ("page=1&page=abc", {"page"}),
        ("page=99999999999999999999", {"page"}),
        ("sort=bogus", {"sort"}),
        ("sort=id", {"sort"}),
        ("sort=symbol", {"sort"}),
        ("sort=count&reverse=yes", {"reverse"}),
        ("sort=count&reverse=1", {"reverse"}),
        ("reverse=maybe", {"reverse"}),
        ("count=2147483648", {"count"}),
        ("count=%3E%3D2147483648", {"count"}),
        ("count=-1", {"count"}),
        ("count=abc", {"count"}),
        ("count=1.5", {"count"}),
        ("count=%3E%3D", {"count"}),
        ("count=%3D%3E1", {"count"}),
        ("count=%3E%3E1", {"count"}),
        ("count=1,", {"count"}),
        ("count=today", {"count"}),
        ("modified_at=2024-13-01", {"modified_at"}),
        ("modified_at=2024-02-30", {"modified_at"}),
        ("modified_at=garbage", {"modified_at"}),
        ("modified_at=tomorrow", {"modified_at"}),
        ("modified_at=%3E%3E2024-01-01", {"modified_at"}),
        ("modified_at=2024-01-10T25:00", {"modified_at"}),
        ("modified_at=2024-01-10T12", {"modified_at"}),
        ("modified_at=2024%2F01%2F10", {"modified_at"}),
        ("modified_at=%3D", {"modified_at"}),
        ("modified_at=,", {"modified_at"}),
        ("modified_at=2024-01-10,", {"modified_at"}),
        ("modified_at=5", {"modified_at"}),
        ("page=0&sort=bogus&count=x", {"page", "sort", "count"}),
        # Undecodable bytes are a 400, never a 500.
        ("symbol=%FF", {"symbol"}),
        ("debugid=%C3%28", {"debugid"}),
        ("filename=a%FFb", {"filename"}),
        ("modified_at=%FF", {"modified_at"}),
        ("count=%FF", {"count"}),
        ("sort=%FF", {"sort"}),
        ("reverse=%FF", {"reverse"}),
        ("page=%FF", {"page"}),
    ],
)
def test_json_bad_parameters_answer_400(json_app, dataset, query, params):
    r = json_app.get("/missingsymbols/?" + query, status=400)
    assert r.headers["Content-Type"] == "application/json"
    body = json.loads(r.body)
    assert set(body) == {"errors"}
    assert set(body["errors"]) == params
    for messages in body["errors"].values():
        assert isinstance(messages, list) and messages
        assert all(isinstance(m, str) and m for m in messages)


def test_json_head(json_app, dataset):
    r = json_app.head("/missingsymbols/", status=200)
    assert r.body == b""
    assert r.headers["Content-Type"] == "application/json"


def test_json_and_csv_see_what_the_app_recorded(app, table):
    """End to end: a GET miss is in both reports once written."""
    app.get("/xul.pdb/abc123/xul.sym?code_file=xul.dll&code_id=", status=404)
    assert app.registry.missing.wait_idle(10)
    [record] = app.get("/missingsymbols/?debugid=abc", status=200).json["records"]
    assert (record["symbol"], record["debugid"], record["code_file"], record["code_id"], record["count"]) == (
        "xul.pdb",
        "abc123",
        "xul.dll",
        None,
        1,
    )
    assert app.get("/missingsymbols.csv").body == CSV_HEADER + b"xul.pdb,abc123,xul.dll,\r\n"


# -- tecken-pyramid cleanse-missing-symbols ------------------------------------------------------------------
def cleanse(db, *args):
    env = dict(os.environ, TECKEN_DATABASE_URL=db.url)
    exe = os.path.join(os.path.dirname(sys.executable), "tecken-pyramid")
    return subprocess.run(
        [exe, "cleanse-missing-symbols", "development.ini", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_ok(db, *args):
    result = cleanse(db, *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_cleanse_missing_symbols(db, table):
    now = utcnow()
    table.insert("today.pdb", modified_at=now)
    days = lambda n: now - datetime.timedelta(days=n)  # noqa: E731
    table.insert("day29.pdb", modified_at=days(29), created_at=days(90))
    table.insert("day31.pdb", modified_at=days(31))
    remaining = lambda: sorted(r["symbol"] for r in table.rows())  # noqa: E731

    assert run_ok(db, "--days", "30", "--dry-run") == "would delete 1\n"
    assert run_ok(db, "--dry-run") == "would delete 1\n"  # the default is 30 days
    assert run_ok(db, "--days", "28", "--dry-run") == "would delete 2\n"
    assert remaining() == ["day29.pdb", "day31.pdb", "today.pdb"]

    assert run_ok(db, "--days", "30") == "deleted 1\n"
    assert remaining() == ["day29.pdb", "today.pdb"]
    assert run_ok(db) == "deleted 0\n"

    assert run_ok(db, "--days", "0", "--dry-run") == "would delete 2\n"
    assert remaining() == ["day29.pdb", "today.pdb"]
    assert run_ok(db, "--days", "0") == "deleted 2\n"
    assert remaining() == []


@pytest.mark.parametrize("args", [["--days", "-1"], ["--days", "abc"], ["--days"]])
def test_cleanse_usage_errors(db, args):
    result = cleanse(db, *args)
    assert result.returncode == 2
    assert result.stderr.startswith("usage:")
    assert "Traceback" not in result.stderr
