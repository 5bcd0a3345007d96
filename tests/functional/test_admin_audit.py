"""Console audit log (SPEC §7): newest first, 50 a page, who / when / action /
target / before -> after, read-only, escaped."""

import datetime
import json

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tecken_pyramid.models import AuditLog
from tests.conftest import create_user, login

T0 = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def empty_audit(db):
    engine = db.engine()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    engine.dispose()


def add_rows(db, count, start=T0):
    engine = db.engine()
    with Session(engine) as session, session.begin():
        for i in range(count):
            session.add(
                AuditLog(
                    created_at=start + datetime.timedelta(minutes=i),
                    username=f"user{i % 3}",
                    action="pattern.add",
                    target=f"target-{i}",
                    before=None,
                    after=json.dumps({"n": i}),
                )
            )
    engine.dispose()


def table(page):
    rows = page.html.select("table.audit-table tbody tr")
    return [[" ".join(td.text.split()) for td in tr.find_all("td")] for tr in rows]


def test_empty_log(admin_app):
    page = admin_app.get("/admin/audit")
    assert page.html.find("h1").text == "Audit log"
    assert table(page) == [["Nothing has been changed in the console yet."]]
    assert "Content-Security-Policy" in page.headers


def test_newest_first_fifty_a_page(admin_app, db):
    add_rows(db, 120)
    page = admin_app.get("/admin/audit")
    rows = table(page)
    assert len(rows) == 50
    assert rows[0] == ["2026-03-01T13:59:00+00:00", "user2", "pattern.add", "target-119", '— → {"n": 119}']
    assert rows[49][3] == "target-70"
    assert "page 1 of 3" in page.text
    assert page.html.select_one("a[rel=next]")["href"] == "/admin/audit?page=2"
    assert page.html.select_one("a[rel=prev]") is None

    page = page.click(linkid=None, href=r"page=2")
    assert [r[3] for r in table(page)][:1] == ["target-69"]
    page = admin_app.get("/admin/audit?page=3")
    rows = table(page)
    assert len(rows) == 20 and rows[-1][3] == "target-0"
    assert page.html.select_one("a[rel=next]") is None
    assert page.html.select_one("a[rel=prev]")["href"] == "/admin/audit?page=2"

    page = admin_app.get("/admin/audit?page=9")
    assert table(page) == [["No entries on this page."]]
    assert page.html.select_one("a[rel=prev]")["href"] == "/admin/audit?page=3"


@pytest.mark.parametrize("page", ["0", "-1", "x", "1.5", "100001"])
def test_bad_page_is_400(admin_app, page):
    admin_app.get(f"/admin/audit?page={page}", status=400)


def test_console_changes_appear_with_who_and_before_after(admin_app, db):
    create_user(db, "viewer", "correct-horse", superuser=False)
    page = admin_app.get("/admin/users")
    uid = int(page.html.find("a", string="viewer")["href"].rsplit("/", 1)[1])
    page.forms[f"superuser-{uid}"].submit(status=303)
    form = admin_app.get("/admin/cache").forms["invalidate-form"]
    form["keys"] = "xul.pdb/ABC/xul.sym"
    form.submit(status=303)
    rows = table(admin_app.get("/admin/audit"))
    assert [r[1:4] for r in rows] == [
        ["admin", "cache.invalidate", "xul.pdb/ABC/xul.sym"],
        ["admin", "user.superuser", "viewer"],
    ]
    assert rows[1][4] == (
        '{"active": true, "superuser": false, "username": "viewer"} → '
        '{"active": true, "superuser": true, "username": "viewer"}'
    )
    now = datetime.datetime.now(datetime.UTC)
    when = datetime.datetime.fromisoformat(rows[0][0])
    assert when.utcoffset() == datetime.timedelta(0)
    assert abs((now - when).total_seconds()) < 60


def test_everything_is_escaped(admin_app, db):
    engine = db.engine()
    with Session(engine) as session, session.begin():
        session.add(
            AuditLog(
                username="<b>who</b>",
                action="<i>act</i>",
                target="<script>alert(1)</script>",
                before='"><img src=x onerror=alert(1)>',
                after="<svg onload=alert(1)>",
            )
        )
    engine.dispose()
    page = admin_app.get("/admin/audit")
    for raw in ("<b>who</b>", "<i>act</i>", "<script>alert(1)</script>", "<img src=x", "<svg onload"):
        assert raw not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert table(page)[0][1:4] == ["<b>who</b>", "<i>act</i>", "<script>alert(1)</script>"]


def test_read_only(admin_app, db):
    add_rows(db, 1)
    token = admin_app.get("/admin/users").forms["create-user"]["csrf_token"].value
    for method in (admin_app.post, admin_app.put, admin_app.delete):
        params = {"csrf_token": token} if method is admin_app.post else ""
        r = method("/admin/audit", params, expect_errors=True)
        assert r.status_int in (404, 405)
    assert len(table(admin_app.get("/admin/audit"))) == 1


def test_anonymous_redirected_and_non_superuser_forbidden(make_app, db, symbols_dir):
    create_user(db, "viewer", "correct-horse", superuser=False)
    app = make_app(symbol_urls=str(symbols_dir))
    r = app.get("/admin/audit?page=2", status=303)
    assert r.headers["Location"].endswith("/admin/login?next=%2Fadmin%2Faudit%3Fpage%3D2")
    login(app, "viewer", "correct-horse")
    app.get("/admin/audit", status=403)
