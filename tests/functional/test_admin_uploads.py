"""Console: uploads (SPEC §9 "Console"), read-only.

The list (newest first, paged, filtered by user, UTC day range, status and try) and
each upload's page (its fields and its members). Upload and upload_file rows are
inserted directly into the real database (SQLite or PostgreSQL, TECKEN_TEST_DB).
"""

import datetime
import hashlib
import urllib.parse

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from tecken_pyramid.models import ApiToken, Upload, UploadFile, User
from tests.conftest import create_user, login

UTC = datetime.UTC
HTML_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy")
MIDNIGHT = datetime.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
TARGET = "file:///srv/symbols"


def at(days_back, **time):
    return MIDNIGHT - datetime.timedelta(days=days_back) + datetime.timedelta(**time)


def day(days_back):
    return at(days_back).strftime("%Y-%m-%d")


class Rows:
    """Direct inserts (never through the app)."""

    def __init__(self, db):
        self.engine = db.engine()
        self.serial = 0
        self.users = {}

    def user(self, name):
        if name not in self.users:
            with Session(self.engine) as session:
                self.users[name] = session.scalars(select(User.id).where(User.username == name)).one()
        return self.users[name]

    def upload(self, username="admin", created_at=None, **values):
        self.serial += 1
        created_at = created_at or at(0, hours=1)
        row = {
            "user_id": self.user(username),
            "filename": f"symbols-{self.serial}.zip",
            "size": 1000 + self.serial,
            "sha256": hashlib.sha256(str(self.serial).encode()).hexdigest(),
            "target": TARGET,
            "try_symbols": False,
            "status": "complete",
            "files_stored": 1,
            "files_skipped": 0,
            "files_ignored": 0,
            "bytes_stored": 10,
            "created_at": created_at,
            "updated_at": created_at,
            "completed_at": created_at + datetime.timedelta(seconds=5),
            **values,
        }
        with self.engine.begin() as conn:
            return conn.execute(insert(Upload).values(**row).returning(Upload.id)).scalar_one()

    def files(self, upload_id, members):
        """``members``: (key, status, size, sha256) tuples."""
        rows = [
            {"upload_id": upload_id, "key": k, "status": s, "size": n, "sha256": h, "created_at": at(0)}
            for k, s, n, h in members
        ]
        with self.engine.begin() as conn:
            conn.execute(insert(UploadFile), rows)

    def token(self, username, hint):
        with self.engine.begin() as conn:
            return conn.execute(
                insert(ApiToken)
                .values(
                    user_id=self.user(username),
                    key_hash=hashlib.sha256(hint.encode()).hexdigest(),
                    hint=hint,
                    can_upload=True,
                    can_upload_try=False,
                    note="",
                    created_at=at(3),
                    created_by="test",
                )
                .returning(ApiToken.id)
            ).scalar_one()

    def close(self):
        self.engine.dispose()


@pytest.fixture
def rows(db, admin_app):
    r = Rows(db)
    yield r
    r.close()


def listed(page):
    """[(id, [cell texts])] of the uploads table, in order."""
    return [
        (int(tr["id"].split("-")[1]), [" ".join(td.get_text(" ").split()) for td in tr.find_all("td")])
        for tr in page.html.select("table.uploads-table tbody tr[id]")
    ]


def ids(page):
    return [i for i, _ in listed(page)]


def link(page, rel):
    a = page.html.select_one(f".missing-pager a[rel={rel}]")
    return a["href"] if a else None


# -- access ------------------------------------------------------------------------------------------
def test_anonymous_is_sent_to_login_and_non_superusers_get_403(make_app, db, symbols_dir):
    create_user(db, "viewer", "correct-horse", superuser=False)
    app = make_app(symbol_urls=str(symbols_dir))
    for path in ("/admin/uploads", "/admin/uploads/1"):
        assert "/admin/login" in app.get(path, status=303).headers["Location"]
    login(app, "viewer", "correct-horse")
    app.get("/admin/uploads", status=403)
    app.get("/admin/uploads/1", status=403)


def test_read_only(admin_app, rows):
    upload = rows.upload()
    csrf = admin_app.get("/admin/tokens").forms["create-token"]["csrf_token"].value
    for path in ("/admin/uploads", f"/admin/uploads/{upload}"):
        r = admin_app.post(path, {"csrf_token": csrf}, expect_errors=True)
        assert r.status_int in (404, 405)


# -- the list ------------------------------------------------------------------------------------------
def test_list_newest_first_with_its_columns(admin_app, db, rows):
    create_user(db, "ci", "correct-horse", superuser=False)
    old = rows.upload(created_at=at(2))
    failed = rows.upload(
        "ci", created_at=at(0, hours=2), status="failed", error="storage timed out", try_symbols=True
    )
    done = rows.upload(
        created_at=at(0, hours=3), files_stored=7, files_skipped=2, files_ignored=1, size=123456
    )
    page = admin_app.get("/admin/uploads", status=200)
    for name in HTML_HEADERS:
        assert name in page.headers
    assert ids(page) == [done, failed, old]
    cells = dict(listed(page))
    assert cells[done] == [
        str(done),
        at(0, hours=3).strftime("%Y-%m-%d %H:%M:%S"),
        "admin",
        f"symbols-{3}.zip",
        "123,456",
        "no",
        "complete",
        "7",
        "2",
        "1",
    ]
    assert cells[failed][2] == "ci" and cells[failed][5] == "yes"
    assert cells[failed][6] == "failed storage timed out"
    assert page.html.select_one(".uploads-total").text == "3 uploads"
    detail = page.html.select_one(f"#upload-{done} a")["href"]
    assert detail == f"/admin/uploads/{done}"


def test_filter_by_user_ignoring_case(admin_app, db, rows):
    create_user(db, "CI", "correct-horse", superuser=False)
    mine = rows.upload("CI")
    rows.upload("admin")
    page = admin_app.get("/admin/uploads", {"user": "ci"})
    assert ids(page) == [mine]
    assert page.html.select_one("#uploads-filters select[name=user] option[selected]")["value"] == "CI"


def test_filter_by_utc_day_range_both_ends_included(admin_app, rows):
    before = rows.upload(created_at=at(4, hours=23, minutes=59, seconds=59, microseconds=999999))
    first = rows.upload(created_at=at(3))
    middle = rows.upload(created_at=at(2, hours=12))
    last = rows.upload(created_at=at(1, hours=23, minutes=59, seconds=59, microseconds=999999))
    after = rows.upload(created_at=at(0))
    assert ids(admin_app.get("/admin/uploads", {"from": day(3), "to": day(1)})) == [last, middle, first]
    assert ids(admin_app.get("/admin/uploads", {"from": day(1)})) == [after, last]
    assert ids(admin_app.get("/admin/uploads", {"to": day(4)})) == [before]
    assert ids(admin_app.get("/admin/uploads", {"from": "today"})) == [after]


def test_filter_by_status_and_try(admin_app, rows):
    regular = rows.upload(status="complete")
    pending = rows.upload(status="pending", completed_at=None)
    failed_try = rows.upload(status="failed", try_symbols=True)
    done_try = rows.upload(status="complete", try_symbols=True)
    get = lambda **q: set(ids(admin_app.get("/admin/uploads", q)))  # noqa: E731
    assert get(status="pending") == {pending}
    assert get(status="failed") == {failed_try}
    assert get(status="complete") == {regular, done_try}
    assert get(**{"try": "yes"}) == {failed_try, done_try}
    assert get(**{"try": "no"}) == {regular, pending}
    assert get(**{"try": "all"}) == get(**{"try": ""}) == {regular, pending, failed_try, done_try}
    assert get(status="complete", **{"try": "yes"}) == {done_try}


@pytest.mark.parametrize(
    "query, label, message",
    [
        ("status=done", "Status", "Invalid status 'done'"),
        ("try=maybe", "Try", "Invalid try 'maybe'"),
        ("user=nobody", "User", "No user named 'nobody'"),
        ("from=2026-02-30", "From", "Invalid date"),
        ("to=yesterdayish", "To", "Invalid value"),
        ("page=0", "Page", "Invalid page"),
        ("page=100001", "Page", "Invalid page"),
        ("page=%C2%B2", "Page", "Invalid page"),
        ("status=%FF", "Status", "Invalid characters"),
        ("user=%C0%AF", "User", "Invalid characters"),
    ],
)
def test_bad_filters_are_a_400_page_naming_them(admin_app, rows, query, label, message):
    rows.upload()
    page = admin_app.get(f"/admin/uploads?{query}", status=400)
    assert page.content_type == "text/html"
    for name in HTML_HEADERS:
        assert name in page.headers
    problems = [li.text for li in page.html.select(".missing-errors li")]
    assert any(p.startswith(f"{label}:") and message in p for p in problems), problems
    assert listed(page) == []
    assert page.html.select_one("#uploads-filters")  # the form is there to fix it


def test_paged_a_hundred_at_a_time_with_the_filters_in_the_links(admin_app, rows):
    made = [rows.upload(created_at=at(1, seconds=n)) for n in range(230)]
    rows.upload(created_at=at(0), status="failed")
    newest_first = made[::-1]
    first = admin_app.get("/admin/uploads", {"status": "complete"})
    assert ids(first) == newest_first[:100]
    assert first.html.select_one(".uploads-page").text == "page 1 of 3"
    assert link(first, "prev") is None
    second = admin_app.get(link(first, "next"))
    assert ids(second) == newest_first[100:200]
    last = admin_app.get(link(second, "last"))
    assert ids(last) == newest_first[200:]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link(last, "first")).query))
    assert query == {"status": "complete", "page": "1"}
    past = admin_app.get("/admin/uploads", {"status": "complete", "page": "9"})
    assert listed(past) == [] and "No uploads match on this page" in past.text


def test_no_uploads(admin_app):
    page = admin_app.get("/admin/uploads")
    assert "No uploads match." in page.text
    assert page.html.select_one(".uploads-total").text == "0 uploads"


# -- one upload ---------------------------------------------------------------------------------------
def test_detail_shows_the_fields_and_the_members(admin_app, rows):
    token = rows.token("admin", "ab12")
    upload = rows.upload(
        token_id=token,
        filename="firefox-symbols.zip",
        size=4096,
        try_symbols=True,
        status="failed",
        error="storage failed part-way: timeout",
        files_stored=1,
        files_skipped=1,
        files_ignored=1,
        bytes_stored=300,
        completed_at=None,
        download_url="https://ci.example.com/symbols.zip",
    )
    sha = "f" * 64
    rows.files(
        upload,
        [
            ("v1/xul.pdb/ABC/xul.sym", "stored", 300, sha),
            ("v1/a.pdb/DEF/a.sym", "skipped", 200, "e" * 64),
            ("v1/b.pdb/123/b.txt", "ignored", 50, None),
        ],
    )
    page = admin_app.get(f"/admin/uploads/{upload}", status=200)
    for name in HTML_HEADERS:
        assert name in page.headers
    fields = dict(
        zip(
            [dt.text for dt in page.html.select("#upload-fields dt")],
            [" ".join(dd.get_text(" ").split()) for dd in page.html.select("#upload-fields dd")],
            strict=True,
        )
    )
    assert fields["Status"] == "failed"
    assert fields["Error"] == "storage failed part-way: timeout"
    assert fields["User"] == "admin" and fields["Token"] == "ab12…"
    assert fields["Archive"] == "firefox-symbols.zip" and fields["Size"] == "4,096 bytes"
    assert fields["SHA-256"] == hashlib.sha256(b"1").hexdigest()
    assert fields["Target"] == TARGET and fields["Try"] == "yes"
    assert fields["Files"] == "1 stored, 1 skipped, 1 ignored; 300 bytes stored"
    assert fields["Completed (UTC)"] == "—"
    assert fields["Downloaded from"] == "https://ci.example.com/symbols.zip"
    members = [
        [td.text.strip() for td in tr.find_all("td")]
        for tr in page.html.select("table.upload-files tbody tr")
    ]
    assert members == [  # by key
        ["v1/a.pdb/DEF/a.sym", "skipped", "200", "e" * 64],
        ["v1/b.pdb/123/b.txt", "ignored", "50", "—"],
        ["v1/xul.pdb/ABC/xul.sym", "stored", "300", sha],
    ]


def test_members_are_paged_500_at_a_time(admin_app, rows):
    upload = rows.upload()
    rows.files(upload, [(f"v1/s.pdb/{n:04X}/s.sym", "stored", n, None) for n in range(501)])
    page = admin_app.get(f"/admin/uploads/{upload}")
    assert len(page.html.select("table.upload-files tbody tr")) == 500
    assert "page 1 of 2" in page.text
    second = admin_app.get(link(page, "next"))
    assert [tr.find("td").text.strip() for tr in second.html.select("table.upload-files tbody tr")] == [
        "v1/s.pdb/01F4/s.sym"
    ]
    admin_app.get(f"/admin/uploads/{upload}?page=x", status=400)


def test_unknown_upload_is_a_404_page(admin_app):
    for path in ("/admin/uploads/999999", "/admin/uploads/999999999999999999"):
        r = admin_app.get(path, status=404)
        assert "No such upload" in r.text
        assert "Content-Security-Policy" in r.headers


def test_everything_is_escaped(admin_app, rows):
    upload = rows.upload(filename="<script>alert(1)</script>.zip", error="<img src=x onerror=alert(1)>")
    rows.files(upload, [("v1/<b>x</b>/ABC/x.sym", "stored", 1, None)])
    for path in ("/admin/uploads", f"/admin/uploads/{upload}"):
        page = admin_app.get(path)
        assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;.zip" in page.text
    assert "<b>x</b>" not in admin_app.get(f"/admin/uploads/{upload}").text


# -- the dashboard's uploads per day ----------------------------------------------------------------
def test_dashboard_counts_uploads_and_files_stored_per_utc_day(admin_app, rows):
    rows.upload(created_at=at(0), files_stored=3)
    rows.upload(created_at=at(0, hours=23, minutes=59, seconds=59), files_stored=4, status="failed")
    rows.upload(created_at=at(1, hours=23, minutes=59, seconds=59, microseconds=999999), files_stored=0)
    rows.upload(created_at=at(29), files_stored=10, try_symbols=True)
    rows.upload(created_at=at(30, hours=23, minutes=59, seconds=59), files_stored=100)  # before the window
    page = admin_app.get("/admin/")
    bars = page.html.select("svg.dash-uploads-svg rect.bar")
    assert [b["data-day"] for b in bars] == [day(n) for n in range(29, -1, -1)]
    shown = {b["data-day"]: (int(b["data-uploads"]), int(b["data-files"])) for b in bars}
    assert {d: v for d, v in shown.items() if v != (0, 0)} == {
        day(0): (2, 7),
        day(1): (1, 0),
        day(29): (1, 10),
    }
    heights = {b["data-day"]: float(b["height"]) for b in bars}
    assert heights[day(0)] > heights[day(1)] == heights[day(29)] > 0 and heights[day(5)] == 0
    table = [
        [td.text for td in tr.find_all("td")]
        for tr in page.html.select("table.dash-uploads-per-day tbody tr")
    ]
    assert len(table) == 30 and table[0] == [day(0), "2", "7"] and table[29] == [day(29), "1", "10"]
    assert "4 uploads and 17 files stored in all" in " ".join(page.text.split())
    # The misses chart is still the only svg.dash-chart-svg.
    assert len(page.html.select("svg.dash-chart-svg rect.bar")) == 30


def test_a_dashboard_upload_bar_lists_that_days_uploads(admin_app, rows):
    wanted = rows.upload(created_at=at(3, hours=5))
    rows.upload(created_at=at(2))
    page = admin_app.get("/admin/")
    href = page.html.select_one(f'svg.dash-uploads-svg rect.bar[data-day="{day(3)}"]').find_parent("a")[
        "href"
    ]
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(href).query)) == {"from": day(3), "to": day(3)}
    assert ids(admin_app.get(href)) == [wanted]


def test_dashboard_without_uploads(admin_app):
    page = admin_app.get("/admin/")
    bars = page.html.select("svg.dash-uploads-svg rect.bar")
    assert [(b["data-uploads"], b["data-files"], b["height"]) for b in bars] == [("0", "0", "0")] * 30


# -- end to end ----------------------------------------------------------------------------------------
def test_an_upload_with_a_console_token_shows_up_everywhere(admin_app, db):
    from tests.support.uploads import make_zip, post_upload, sym_member

    raw = (
        admin_app.get("/admin/tokens").forms["create-token"].submit(status=200).html.select_one("#new-token")
    )
    archive = make_zip(
        [sym_member("xul.pdb", "44e4ec8c2f41492b9369d6b9a059577c2"), ("a.pdb/ABC/a.txt", b"x")]
    )
    answer = post_upload(admin_app, archive, raw.text, name="nightly.zip", status=201).json["upload"]
    listing = admin_app.get("/admin/uploads", {"user": "admin", "status": "complete", "try": "no"})
    [(upload_id, cells)] = listed(listing)
    assert upload_id == answer["id"]
    assert cells[3:4] == ["nightly.zip"] and cells[6:] == ["complete", "1", "0", "1"]
    detail = admin_app.get(f"/admin/uploads/{upload_id}")
    members = {
        tr.find("td").text.strip(): tr.find_all("td")[1].text
        for tr in detail.html.select("table.upload-files tr")[1:]
    }
    assert members == {
        "xul.pdb/44E4EC8C2F41492B9369D6B9A059577C2/xul.sym": "stored",
        "a.pdb/ABC/a.txt": "ignored",
    }
    assert f"{raw.text[:4]}…" in detail.html.select_one("#upload-fields").text
    assert raw.text not in detail.text
    tokens_page = admin_app.get("/admin/tokens")
    assert "never" not in tokens_page.html.select_one("table.tokens-table tbody tr td:nth-of-type(7)").text
