"""Console: upload tokens (SPEC §9 "Tokens", "Console").

List (user, hint, permissions, note, times, state), filter by user, create for a user
(the token shown once, on a no-store page, never in the audit log, a URL, a log or the
session), revoke; every change audited; CSRF on every POST; bad filters are 400 pages.
"""

import datetime
import hashlib
import io
import json
import logging
import re

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from tecken_pyramid import tokens
from tecken_pyramid.models import ApiToken, AuditLog, User
from tests.conftest import create_user, login

HTML_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy")
UTC = datetime.UTC


@pytest.fixture(autouse=True)
def empty_audit(db):
    engine = db.engine()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    engine.dispose()


def session_for(db):
    return Session(db.engine())


def all_rows(db, model):
    with session_for(db) as session:
        found = session.scalars(select(model).order_by(model.id)).all()
    return found


def make_token(db, username, permissions=("upload",), **kw):
    """A token made directly through tokens.create_token: (raw, id)."""
    with session_for(db) as session, session.begin():
        user = session.scalars(select(User).where(User.username == username)).one()
        raw, token = tokens.create_token(session, user, permissions, actor="test", **kw)
        return raw, token.id


def set_token(db, token_id, **values):
    with session_for(db) as session, session.begin():
        session.execute(update(ApiToken).where(ApiToken.id == token_id).values(**values))


def table(page):
    """{token id: [cell texts]} of the tokens table."""
    return {
        int(tr["id"].split("-")[1]): [" ".join(td.get_text(" ").split()) for td in tr.find_all("td")]
        for tr in page.html.select("table.tokens-table tbody tr[id]")
    }


def flashes(page, queue):
    return [p.text for p in page.html.select(f"p.flash.{queue}")]


def create_form(app, **values):
    form = app.get("/admin/tokens").forms["create-token"]
    for name, value in values.items():
        form[name] = value
    return form


# -- access ------------------------------------------------------------------------------------------
def test_anonymous_is_sent_to_login_and_non_superusers_get_403(make_app, db, symbols_dir):
    create_user(db, "viewer", "correct-horse", superuser=False)
    app = make_app(symbol_urls=str(symbols_dir))
    assert "/admin/login" in app.get("/admin/tokens", status=303).headers["Location"]
    login(app, "viewer", "correct-horse")
    app.get("/admin/tokens", status=403)
    token = app.get("/admin/login").forms[0]["csrf_token"].value
    app.post("/admin/tokens/create", {"csrf_token": token, "username": "viewer"}, status=403)
    assert all_rows(db, ApiToken) == []


def test_posts_without_csrf_are_400_and_change_nothing(admin_app, db):
    form = create_form(admin_app, expires_days="5")
    fields = dict(form.submit_fields())
    del fields["csrf_token"]
    r = admin_app.post("/admin/tokens/create", fields, status=400)
    assert "security token" in r.text
    _raw, token_id = make_token(db, "admin")
    admin_app.post(f"/admin/tokens/{token_id}/revoke", {}, status=400)
    assert [t.revoked_at for t in all_rows(db, ApiToken)] == [None]
    assert all_rows(db, AuditLog)[-1].action == "token.create"  # by the test, not the console


# -- the list ------------------------------------------------------------------------------------------
def test_list_shows_every_token_with_its_state(admin_app, db):
    create_user(db, "ci", "correct-horse", superuser=False)
    create_user(db, "gone", "correct-horse", superuser=False)
    _, active = make_token(db, "ci", ("upload", "upload_try"), note="build box", expires_days=10)
    _, used = make_token(db, "ci", ("upload_try",))
    _, revoked = make_token(db, "admin")
    _, expired = make_token(db, "admin", expires_days=1)
    _, inactive = make_token(db, "gone")
    last_use = datetime.datetime(2026, 11, 5, 8, 9, 10, tzinfo=UTC)
    set_token(db, used, last_used_at=last_use)
    set_token(db, revoked, revoked_at=datetime.datetime.now(UTC))
    set_token(db, expired, expires_at=datetime.datetime.now(UTC) - datetime.timedelta(minutes=1))
    create_user(db, "gone", "correct-horse", superuser=False, active=False)
    page = admin_app.get("/admin/tokens", status=200)
    for name in HTML_HEADERS:
        assert name in page.headers
    rows = table(page)
    assert list(rows) == [inactive, expired, revoked, used, active]  # newest first
    hints = {t.id: t.hint for t in all_rows(db, ApiToken)}
    assert rows[active][:4] == ["ci", hints[active] + "…", "upload, upload_try", "build box"]
    assert rows[active][4].endswith("by test")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows[active][5])
    assert rows[active][6:8] == ["never", "active"]
    assert rows[used][2] == "upload_try" and rows[used][3] == "—"
    assert rows[used][5:8] == ["never", "2026-11-05 08:09:10", "active"]
    assert rows[revoked][7].startswith("revoked ")
    assert rows[expired][7] == "expired"
    assert rows[inactive][7] == "user inactive"
    # A revoked token has no revoke button; the others have one.
    assert f"revoke-{revoked}" not in page.forms
    assert {f"revoke-{i}" for i in (active, used, expired, inactive)} <= set(page.forms)


def test_list_filtered_by_user_ignoring_case(admin_app, db):
    create_user(db, "CI", "correct-horse", superuser=False)
    _, mine = make_token(db, "CI")
    make_token(db, "admin")
    page = admin_app.get("/admin/tokens", {"user": "ci"}, status=200)
    assert list(table(page)) == [mine]
    assert page.html.select_one("#tokens-filter option[selected]")["value"] == "CI"
    # The create form offers that user first.
    assert page.forms["create-token"]["username"].value == "CI"
    assert len(table(admin_app.get("/admin/tokens", {"user": ""}))) == 2


@pytest.mark.parametrize("query", ["user=nobody", "user=%FF", "user=%C0%AF"])
def test_bad_user_filter_is_a_400_page(admin_app, query):
    r = admin_app.get(f"/admin/tokens?{query}", status=400)
    assert r.content_type == "text/html"
    assert "Bad filter" in r.text
    for name in HTML_HEADERS:
        assert name in r.headers


def test_everything_is_escaped(admin_app, db):
    create_user(db, "<b>bold</b>", "correct-horse", superuser=False)
    make_token(db, "<b>bold</b>", note="<script>alert(1)</script>")
    page = admin_app.get("/admin/tokens")
    assert "<script>alert(1)</script>" not in page.text and "<b>bold</b>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


# -- create -------------------------------------------------------------------------------------------
def test_create_shows_the_token_once_and_stores_only_its_hash(admin_app, db, caplog):
    caplog.set_level(logging.DEBUG)
    admin_app.app.writer.stream = io.StringIO()  # the access log
    create_user(db, "ci", "correct-horse", superuser=False)
    form = create_form(admin_app, username="ci", expires_days="7", note="nightly")
    form["permission"] = ["upload", "upload_try"]
    page = form.submit(status=200)
    assert page.headers["Cache-Control"] == "no-store"
    for name in HTML_HEADERS:
        assert name in page.headers
    raw = page.html.select_one("#new-token").text
    assert re.fullmatch(r"[0-9a-f]{32}", raw)
    assert "only time it is shown" in page.text
    [token] = all_rows(db, ApiToken)
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest() and token.hint == raw[:4]
    assert (token.can_upload, token.can_upload_try, token.note) == (True, True, "nightly")
    assert token.created_by == "admin"
    expires = token.expires_at.replace(tzinfo=UTC) if token.expires_at.tzinfo is None else token.expires_at
    left = expires - datetime.datetime.now(UTC)
    assert datetime.timedelta(days=6, hours=23) < left <= datetime.timedelta(days=7)
    details = page.html.select_one("#new-token-details").text
    assert "ci" in details and "upload, upload_try" in details and raw[:4] + "…" in details
    # It authenticates uploads.
    with session_for(db) as session:
        assert tokens.authenticate(session, raw).username == "ci"
    # Audited without the token; nowhere in a log, a cookie or a URL.
    [entry] = all_rows(db, AuditLog)
    assert (entry.username, entry.action, entry.target) == ("admin", "token.create", f"ci token {token.id}")
    assert raw not in f"{entry.before}{entry.after}" and token.key_hash not in f"{entry.after}"
    assert json.loads(entry.after)["permissions"] == ["upload", "upload_try"]
    admin_app.app.writer.flush()
    assert raw not in admin_app.app.writer.stream.getvalue()
    assert raw not in caplog.text
    assert all(raw not in value for value in admin_app.cookies.values())
    # The list afterwards shows the hint only.
    listing = admin_app.get("/admin/tokens")
    assert raw not in listing.text
    assert table(listing)[token.id][1] == raw[:4] + "…"


def test_the_default_form_makes_an_upload_token_that_never_expires(admin_app, db):
    page = create_form(admin_app).submit(status=200)
    [token] = all_rows(db, ApiToken)
    assert (token.user_id, token.can_upload, token.can_upload_try) == (
        all_rows(db, User)[0].id,
        True,
        False,
    )
    assert token.expires_at is None and token.note == ""
    assert "never" in page.html.select_one("#new-token-details").text


def test_sending_the_same_form_again_makes_no_second_token(admin_app, db):
    form = create_form(admin_app)
    form.submit(status=200)
    again = form.submit(status=303).follow()
    assert any("sent already" in m for m in flashes(again, "error"))
    assert len(all_rows(db, ApiToken)) == 1
    # A fresh form works.
    create_form(admin_app).submit(status=200)
    assert len(all_rows(db, ApiToken)) == 2


@pytest.mark.parametrize(
    "values, message",
    [
        ({"permission": []}, "at least one permission"),
        ({"permission": ["download"]}, "unknown permission 'download'"),
        ({"expires_days": "0"}, "from 1 to 3650"),
        ({"expires_days": "3651"}, "from 1 to 3650"),
        ({"expires_days": "1.5"}, "from 1 to 3650"),
        ({"expires_days": "²"}, "from 1 to 3650"),
        ({"note": "x" * 501}, "at most 500 characters"),
        ({"note": "a\x07b"}, "no control characters"),
        ({"username": "nobody"}, "no user named nobody"),
        ({"username": ""}, "choose a user"),
        ({"username": "gone"}, "user gone is not active"),
        ({"once": ""}, "out of date"),
    ],
)
def test_refused_forms_create_nothing(admin_app, db, values, message):
    create_user(db, "gone", "correct-horse", superuser=False, active=False)
    fields = {k: v for k, v in create_form(admin_app).submit_fields() if k != "permission"}
    permissions = values.pop("permission", ["upload"])
    body = [*{**fields, **values}.items(), *(("permission", p) for p in permissions)]
    page = admin_app.post("/admin/tokens/create", body, status=303).follow()
    assert any(m.startswith("Token not created:") and message in m for m in flashes(page, "error")), flashes(
        page, "error"
    )
    assert all_rows(db, ApiToken) == [] and all_rows(db, AuditLog) == []


def test_undecodable_create_form_is_a_400(admin_app, db):
    token = admin_app.get("/admin/tokens").forms["create-token"]["csrf_token"].value
    body = f"csrf_token={token}&username=admin&permission=upload&note=%FF&once={'a' * 32}"
    admin_app.post("/admin/tokens/create", body, content_type="application/x-www-form-urlencoded", status=400)
    assert all_rows(db, ApiToken) == []


# -- revoke -------------------------------------------------------------------------------------------
def test_revoke_is_audited_once_and_refuses_uploads(admin_app, db):
    raw, token_id = make_token(db, "admin", note="old")
    page = admin_app.get("/admin/tokens")
    done = page.forms[f"revoke-{token_id}"].submit(status=303)
    assert done.headers["Location"].endswith("/admin/tokens")
    listing = done.follow()
    assert any("Revoked the token" in m and raw[:4] in m for m in flashes(listing, "info"))
    assert table(listing)[token_id][7].startswith("revoked")
    [token] = all_rows(db, ApiToken)
    assert token.revoked_at is not None
    with session_for(db) as session, pytest.raises(tokens.TokenRefused, match=tokens.NOT_MATCHED):
        tokens.authenticate(session, raw)
    revokes = [e for e in all_rows(db, AuditLog) if e.action == "token.revoke"]
    assert [(e.username, e.target) for e in revokes] == [("admin", f"admin token {token_id}")]
    assert (
        json.loads(revokes[0].before)["revoked"] is False and json.loads(revokes[0].after)["revoked"] is True
    )
    # Again (a second tab): nothing changes, nothing more is audited.
    again = page.forms[f"revoke-{token_id}"].submit(status=303).follow()
    assert any("already revoked" in m for m in flashes(again, "info"))
    assert len([e for e in all_rows(db, AuditLog) if e.action == "token.revoke"]) == 1


@pytest.mark.parametrize("token_id", ["999999", "0", "99999999999"])
def test_revoking_a_missing_token_is_refused(admin_app, token_id):
    csrf = admin_app.get("/admin/tokens").forms["create-token"]["csrf_token"].value
    page = admin_app.post(f"/admin/tokens/{token_id}/revoke", {"csrf_token": csrf}, status=303).follow()
    assert any("does not exist" in m for m in flashes(page, "error"))


def test_revoke_is_post_only(admin_app, db):
    _raw, token_id = make_token(db, "admin")
    admin_app.get(f"/admin/tokens/{token_id}/revoke", status=404)
    assert all_rows(db, ApiToken)[0].revoked_at is None


# -- elsewhere in the console -----------------------------------------------------------------------
def test_audit_log_shows_token_changes_readably(admin_app, db):
    page = create_form(admin_app, note="für CI").submit(status=200)
    raw = page.html.select_one("#new-token").text
    token_id = all_rows(db, ApiToken)[0].id
    admin_app.get("/admin/tokens").forms[f"revoke-{token_id}"].submit(status=303)
    audit = admin_app.get("/admin/audit")
    rows = [[td.text for td in tr.find_all("td")] for tr in audit.html.select("table.audit-table tbody tr")]
    assert [r[1:4] for r in rows] == [
        ["admin", "token.revoke", f"admin token {token_id}"],
        ["admin", "token.create", f"admin token {token_id}"],
    ]
    created = rows[1][4]
    assert f'"hint": "{raw[:4]}…"' in created and '"note": "für CI"' in created
    assert "\\u" not in created and raw not in audit.text
    assert '"revoked": false} → {' in rows[0][4] and rows[0][4].endswith('"revoked": true}')


def test_user_page_lists_that_users_tokens(admin_app, db):
    create_user(db, "ci", "correct-horse", superuser=False)
    _, mine = make_token(db, "ci", note="theirs")
    _, other = make_token(db, "admin")
    with session_for(db) as session:
        ci = session.scalars(select(User).where(User.username == "ci")).one()
    page = admin_app.get(f"/admin/users/{ci.id}")
    assert list(table(page)) == [mine]
    assert f"revoke-{mine}" in page.forms and f"revoke-{other}" not in page.forms
    link = page.html.select_one("a#user-new-token")["href"]
    assert link == "/admin/tokens?user=ci#create"
