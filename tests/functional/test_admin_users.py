"""Console users page (SPEC §7): list, create, make or unmake superuser, deactivate,
reset password; the last active superuser cannot be locked out; every change audited."""

import json

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tecken_pyramid.models import AuditLog, User
from tecken_pyramid.passwords import verify_password
from tests.conftest import create_user, login


def users(db):
    engine = db.engine()
    with Session(engine) as session:
        out = {u.username: u for u in session.scalars(select(User))}
    engine.dispose()
    return out


def audit_rows(db):
    engine = db.engine()
    with Session(engine) as session:
        rows = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
    engine.dispose()
    return rows


@pytest.fixture(autouse=True)
def empty_audit(db):
    from sqlalchemy import text

    engine = db.engine()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    engine.dispose()


def user_id(db, name):
    return users(db)[name].id


def row_form(page, kind, uid):
    return page.forms[f"{kind}-{uid}"]


def flashes(page, queue=None):
    selector = "p.flash" + (f".{queue}" if queue else "")
    return [p.text for p in page.html.select(selector)]


def test_list_shows_every_user_with_flags_and_dates(admin_app, db):
    create_user(db, "viewer", "correct-horse", superuser=False)
    create_user(db, "gone", "correct-horse", active=False)
    page = admin_app.get("/admin/users")
    assert page.html.find("h1").text == "Users"
    rows = {
        tr.find("td").find("a").text: [td.text.strip() for td in tr.find_all("td")]
        for tr in page.html.select("table.users-table tbody tr")
    }
    assert set(rows) == {"admin", "viewer", "gone"}
    assert rows["admin"][1:3] == ["yes", "yes"]
    assert rows["viewer"][1:3] == ["no", "yes"]
    assert rows["gone"][1:3] == ["yes", "no"]
    assert rows["admin"][3].endswith("+00:00")  # created, UTC ISO
    assert rows["admin"][4].endswith("+00:00")  # signed in by the fixture
    assert rows["viewer"][4] == "never"
    assert "Content-Security-Policy" in page.headers


def test_create_user_and_superuser_sign_in(admin_app, db, make_app, symbols_dir):
    form = admin_app.get("/admin/users").forms["create-user"]
    form["username"] = "alice"
    form["password"] = "alice-password"
    form["superuser"] = False
    page = form.submit(status=303).follow()
    assert any("Created user" in m and "alice" in m for m in flashes(page, "info"))
    alice = users(db)["alice"]
    assert not alice.is_superuser and alice.is_active
    assert verify_password(alice.password_hash, "alice-password")

    form = page.forms["create-user"]
    form["username"] = "bob"
    form["password"] = "bob-password"
    form.submit(status=303)
    assert users(db)["bob"].is_superuser

    rows = audit_rows(db)
    assert [(r.username, r.action, r.target) for r in rows] == [
        ("admin", "user.create", "alice"),
        ("admin", "user.create", "bob"),
    ]
    assert rows[0].before is None
    assert json.loads(rows[0].after) == {"username": "alice", "superuser": False, "active": True}
    for r in rows:
        assert "argon2" not in (r.after or "") and "password" not in (r.after or "")

    other = make_app(symbol_urls=str(symbols_dir))
    login(other, "bob", "bob-password")
    other.get("/admin/users", status=200)
    login(other, "alice", "alice-password")
    other.get("/admin/users", status=403)


@pytest.mark.parametrize(
    "username, password, message",
    [
        ("admin", "long-enough", "already exists"),
        ("ADMIN", "long-enough", "already exists"),
        ("carol", "short", "at least 8"),
        ("", "long-enough", "required"),
        ("has space", "long-enough", "no spaces"),
        ("x" * 151, "long-enough", "at most 150"),
        # The same rules as create-superuser (tecken_pyramid/users.py).
        ("del\x7fname", "long-enough", "control characters"),
        ("c1\x85name", "long-enough", "control characters"),
        ("zero\u200bwidth", "long-enough", "control characters"),
        ("line\u2028sep", "long-enough", "control characters"),
        ("carol", "x" * 1025, "at most 1024"),
    ],
)
def test_create_refuses_bad_input(admin_app, db, username, password, message):
    form = admin_app.get("/admin/users").forms["create-user"]
    form["username"].force_value(username)
    form["password"].force_value(password)
    page = form.submit(status=303).follow()
    errors = flashes(page, "error")
    assert errors and message in errors[0]
    assert set(users(db)) == {"admin"}
    assert audit_rows(db) == []


def test_names_differing_only_in_case_are_refused_unicode_too(admin_app, db):
    create_user(db, "Élodie", "correct-horse")
    form = admin_app.get("/admin/users").forms["create-user"]
    form["username"] = "éLODIE"
    form["password"] = "long-enough"
    page = form.submit(status=303).follow()
    assert flashes(page, "error") == ["User not created: A user named Élodie already exists."]
    assert set(users(db)) == {"admin", "Élodie"}


def test_make_and_unmake_superuser(admin_app, db):
    create_user(db, "viewer", "correct-horse", superuser=False)
    uid = user_id(db, "viewer")
    page = admin_app.get("/admin/users")
    assert row_form(page, "superuser", uid).fields["value"][0].value == "1"
    page = row_form(page, "superuser", uid).submit(status=303).follow()
    assert "viewer is now a superuser." in flashes(page, "info")
    assert users(db)["viewer"].is_superuser
    page = row_form(page, "superuser", uid).submit(status=303).follow()
    assert not users(db)["viewer"].is_superuser
    rows = audit_rows(db)
    assert [r.action for r in rows] == ["user.superuser", "user.superuser"]
    assert json.loads(rows[0].before)["superuser"] is False
    assert json.loads(rows[0].after)["superuser"] is True
    assert json.loads(rows[1].after)["superuser"] is False


def test_deactivate_signs_the_user_out_and_reactivate(admin_app, db, make_app, symbols_dir):
    create_user(db, "second", "second-password")
    other = make_app(symbol_urls=str(symbols_dir))
    login(other, "second", "second-password")
    other.get("/admin/", status=200)

    uid = user_id(db, "second")
    page = admin_app.get("/admin/users")
    page = row_form(page, "active", uid).submit(status=303).follow()
    assert not users(db)["second"].is_active
    other.get("/admin/", status=303)  # signed out
    login(other, "second", "second-password", status=400)

    page = row_form(page, "active", uid).submit(status=303).follow()
    assert users(db)["second"].is_active
    login(other, "second", "second-password")
    rows = audit_rows(db)
    changes = [(r.action, json.loads(r.after)["active"]) for r in rows]
    assert changes == [("user.active", False), ("user.active", True)]


def test_stale_form_changes_nothing(admin_app, db):
    create_user(db, "viewer", "correct-horse", superuser=False)
    uid = user_id(db, "viewer")
    form = row_form(admin_app.get("/admin/users"), "superuser", uid)  # value=1
    form.submit(status=303)
    page = form.submit(status=303).follow()  # submitted again: already so
    assert "viewer is already a superuser." in flashes(page, "info")
    assert len(audit_rows(db)) == 1


def test_last_active_superuser_cannot_be_unmade_or_deactivated(admin_app, db):
    uid = user_id(db, "admin")
    page = admin_app.get("/admin/users")
    page = row_form(page, "superuser", uid).submit(status=303).follow()
    assert any("last active superuser" in m for m in flashes(page, "error"))
    page = row_form(page, "active", uid).submit(status=303).follow()
    assert any("last active superuser" in m for m in flashes(page, "error"))
    admin = users(db)["admin"]
    assert admin.is_superuser and admin.is_active
    assert audit_rows(db) == []
    # An inactive superuser and an active non-superuser do not count.
    create_user(db, "gone", "correct-horse", active=False)
    create_user(db, "viewer", "correct-horse", superuser=False)
    page = row_form(admin_app.get("/admin/users"), "active", uid).submit(status=303).follow()
    assert any("last active superuser" in m for m in flashes(page, "error"))
    assert users(db)["admin"].is_active


def test_with_another_superuser_you_may_step_down(admin_app, db):
    create_user(db, "second", "second-password")
    uid = user_id(db, "admin")
    row_form(admin_app.get("/admin/users"), "superuser", uid).submit(status=303)
    assert not users(db)["admin"].is_superuser
    admin_app.get("/admin/users", status=403)  # no longer a superuser
    # Back as a superuser: "second" may go, and then "admin" is the last one.
    other_uid = user_id(db, "second")
    create_user(db, "admin", "correct-horse")
    login(admin_app, "admin", "correct-horse")
    page = row_form(admin_app.get("/admin/users"), "active", other_uid).submit(status=303).follow()
    assert not flashes(page, "error")
    assert not users(db)["second"].is_active
    page = row_form(page, "active", uid).submit(status=303).follow()
    assert any("last active superuser" in m for m in flashes(page, "error"))


def test_deactivating_yourself_signs_you_out(admin_app, db):
    create_user(db, "second", "second-password")
    uid = user_id(db, "admin")
    r = row_form(admin_app.get("/admin/users"), "active", uid).submit(status=303)
    assert not users(db)["admin"].is_active
    r.follow(status=303)  # /admin/users -> the login page


def test_reset_password_signs_the_user_out_elsewhere(admin_app, db, make_app, symbols_dir):
    create_user(db, "second", "second-password")
    other = make_app(symbol_urls=str(symbols_dir))
    login(other, "second", "second-password")
    other.get("/admin/", status=200)
    uid = user_id(db, "second")
    page = admin_app.get(f"/admin/users/{uid}")
    assert page.html.find("h1").text == "User second"
    form = page.forms["reset-password"]
    form["password"] = "brand-new-password"
    page = form.submit(status=303).follow()
    assert any("Password of second reset" in m for m in flashes(page, "info"))
    assert verify_password(users(db)["second"].password_hash, "brand-new-password")
    other.get("/admin/", status=303)
    login(other, "second", "second-password", status=400)
    login(other, "second", "brand-new-password")
    (row,) = audit_rows(db)
    assert (row.action, row.target) == ("user.password", "second")
    assert "argon2" not in (row.before or "") + (row.after or "")
    assert "brand-new-password" not in (row.before or "") + (row.after or "")


def test_reset_own_password_keeps_this_session(admin_app, db, make_app, symbols_dir):
    elsewhere = make_app(symbol_urls=str(symbols_dir))
    login(elsewhere, "admin", "correct-horse")
    uid = user_id(db, "admin")
    form = admin_app.get(f"/admin/users/{uid}").forms["reset-password"]
    form["password"] = "another-horse"
    page = form.submit(status=303).follow(status=200)
    assert any("Your password was reset" in m for m in flashes(page, "info"))
    elsewhere.get("/admin/", status=303)
    admin_app.get("/admin/", status=200)


def test_reset_password_too_short(admin_app, db):
    uid = user_id(db, "admin")
    form = admin_app.get(f"/admin/users/{uid}").forms["reset-password"]
    form["password"].force_value("short")
    page = form.submit(status=303).follow()
    assert any("at least 8" in m for m in flashes(page, "error"))
    assert verify_password(users(db)["admin"].password_hash, "correct-horse")
    assert audit_rows(db) == []


def test_unknown_user_is_404(admin_app):
    admin_app.get("/admin/users/999999", status=404)
    admin_app.get("/admin/users/99999999999999999999", status=404)
    token = admin_app.get("/admin/users").forms["create-user"]["csrf_token"].value
    admin_app.post("/admin/users/999999/active", {"csrf_token": token, "value": "0"}, status=404)


def test_posts_without_csrf_are_400_and_change_nothing(admin_app, db):
    create_user(db, "viewer", "correct-horse", superuser=False)
    uid = user_id(db, "viewer")
    before = {n: (u.is_superuser, u.is_active, u.password_hash) for n, u in users(db).items()}
    admin_app.post("/admin/users/create", {"username": "eve", "password": "eve-password"}, status=400)
    admin_app.post(f"/admin/users/{uid}/superuser", {"value": "1"}, status=400)
    admin_app.post(f"/admin/users/{uid}/active", {"value": "0", "csrf_token": "wrong"}, status=400)
    admin_app.post(f"/admin/users/{uid}/password", {"password": "changed-password"}, status=400)
    after = {n: (u.is_superuser, u.is_active, u.password_hash) for n, u in users(db).items()}
    assert after == before
    assert audit_rows(db) == []


def test_anonymous_redirected_and_non_superuser_forbidden(make_app, db, symbols_dir):
    create_user(db, "viewer", "correct-horse", superuser=False)
    app = make_app(symbol_urls=str(symbols_dir))
    r = app.get("/admin/users", status=303)
    assert "/admin/login?next=%2Fadmin%2Fusers" in r.headers["Location"]
    app.get("/admin/login")
    app.post("/admin/users/create", {"username": "x", "password": "xxxxxxxxxx"}, status=303)
    assert "x" not in users(db)
    login(app, "viewer", "correct-horse")
    app.get("/admin/users", status=403)
    app.get(f"/admin/users/{user_id(db, 'viewer')}", status=403)
    token = app.get("/admin/login").forms[0]["csrf_token"].value
    uid = user_id(db, "viewer")
    app.post(f"/admin/users/{uid}/superuser", {"csrf_token": token, "value": "1"}, status=403)
    assert not users(db)["viewer"].is_superuser


def test_usernames_are_escaped(admin_app, db):
    form = admin_app.get("/admin/users").forms["create-user"]
    form["username"] = "<script>alert(1)</script>"
    form["password"] = "long-enough"
    page = form.submit(status=303).follow()
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    uid = user_id(db, "<script>alert(1)</script>")
    detail = admin_app.get(f"/admin/users/{uid}")
    assert "<script>alert" not in detail.text
    audit_page = admin_app.get("/admin/audit")
    assert "<script>alert" not in audit_page.text
    assert "&lt;script&gt;" in audit_page.text


def test_concurrent_changes_cannot_remove_the_last_two_superusers(admin_app, db):
    """Another transaction unmakes "second" while this one unmakes "admin": the
    second change to commit sees the first and is refused."""
    import threading

    create_user(db, "second", "second-password")
    form = row_form(admin_app.get("/admin/users"), "superuser", user_id(db, "admin"))
    engine = db.engine()
    result = {}
    with engine.connect() as conn:
        trans = conn.begin()
        if db.kind == "postgresql":
            conn.execute(text("SELECT id FROM users WHERE is_superuser AND is_active FOR UPDATE"))
        conn.execute(text("UPDATE users SET is_superuser = :f WHERE username = 'second'"), {"f": False})
        worker = threading.Thread(target=lambda: result.update(r=form.submit(expect_errors=True)))
        worker.start()
        worker.join(0.5)  # the console's change waits for this transaction
        trans.commit()
    engine.dispose()
    worker.join(10)
    response = result["r"]
    assert response.status_int == 303, response.status
    page = response.follow()
    assert any("last active superuser" in m for m in flashes(page, "error"))
    assert users(db)["admin"].is_superuser
    assert [r.action for r in audit_rows(db)] == []
