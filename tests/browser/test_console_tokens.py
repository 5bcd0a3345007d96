"""Upload tokens and uploads in a real browser (Chromium): create a token, see it once,
see only its hint afterwards, revoke it; the uploads list and one upload's page; no
console errors or CSP violations. Screenshots of the pages go to the test's tmp_path
(``--basetemp=DIR`` keeps them where they can be looked at)."""

import datetime
import hashlib
import re

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from tecken_pyramid.models import ApiToken, Upload, UploadFile, User
from tests.browser.conftest import sign_in
from tests.browser.test_console import path_of
from tests.conftest import create_user

PNG = b"\x89PNG\r\n\x1a\n"


def tokens_in(db):
    engine = db.engine()
    with Session(engine) as session:
        found = session.scalars(select(ApiToken).order_by(ApiToken.id)).all()
    engine.dispose()
    return found


def screenshot(page, path):
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == PNG


def test_create_a_token_see_it_once_then_only_its_hint_and_revoke_it(page, site, db, tmp_path):
    create_user(db, "ci-bot", "correct-horse", superuser=False)
    sign_in(page, site)
    with page.expect_navigation():
        page.click("nav >> text=Tokens")
    assert path_of(page) == "/admin/tokens"
    page.select_option("#create-token select[name=username]", "ci-bot")
    page.check("#create-token input[value=upload_try]")
    page.fill("#create-token input[name=expires_days]", "90")
    page.fill("#create-token input[name=note]", "nightly builds")
    with page.expect_navigation() as shown:
        page.click("#create-token button[type=submit]")
    response = shown.value
    assert response.status == 200
    assert response.headers["cache-control"] == "no-store"
    assert path_of(page) == "/admin/tokens/create"  # the POST's own page: no token in any URL
    raw = page.inner_text("#new-token")
    assert re.fullmatch(r"[0-9a-f]{32}", raw)
    assert "only time it is shown" in page.inner_text("main")
    screenshot(page, tmp_path / "token-created.png")
    [token] = tokens_in(db)
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert (token.can_upload, token.can_upload_try, token.note) == (True, True, "nightly builds")

    # The list, loaded again and reloaded: only the hint.
    for _ in range(2):
        if path_of(page) == "/admin/tokens":
            page.reload()
        else:
            page.goto(site.url + "/admin/tokens")
        assert raw not in page.content()
        row = page.locator(f"#token-{token.id}")
        assert row.locator("code.token-hint").inner_text() == raw[:4] + "…"
        assert "ci-bot" in row.inner_text() and "nightly builds" in row.inner_text()
        assert row.locator(".tokens-state").inner_text() == "active"
    screenshot(page, tmp_path / "tokens.png")

    with page.expect_navigation():
        page.click(f"#revoke-{token.id} button")
    assert path_of(page) == "/admin/tokens"
    assert "Revoked the token" in page.inner_text("p.flash.info")
    assert page.locator(f"#token-{token.id} .tokens-state").inner_text().startswith("revoked")
    assert page.locator(f"#revoke-{token.id}").count() == 0
    assert tokens_in(db)[0].revoked_at is not None
    assert page.console_log.errors == []


def add_uploads(db):
    engine = db.engine()
    now = datetime.datetime.now(datetime.UTC)
    with engine.begin() as conn:
        admin = conn.execute(select(User.id).where(User.username == "admin")).scalar_one()
        ids = []
        for n, (status, try_symbols) in enumerate(
            [("complete", False), ("failed", False), ("complete", True), ("pending", False)]
        ):
            when = now - datetime.timedelta(hours=5 * n)
            ids.append(
                conn.execute(
                    insert(Upload)
                    .values(
                        user_id=admin,
                        filename=f"firefox-{n}-symbols.zip",
                        size=123_456 * (n + 1),
                        sha256=hashlib.sha256(bytes([n])).hexdigest(),
                        target="file:///srv/symbols",
                        try_symbols=try_symbols,
                        status=status,
                        error="storage timed out; retry" if status == "failed" else None,
                        files_stored=3 - n % 2,
                        files_skipped=n,
                        files_ignored=1,
                        bytes_stored=4096,
                        created_at=when,
                        updated_at=when,
                        completed_at=when if status != "pending" else None,
                    )
                    .returning(Upload.id)
                ).scalar_one()
            )
        members = [
            ("v1/xul.pdb/44E4EC8C2F41492B9369D6B9A059577C2/xul.sym", "stored", 2048, "a" * 64),
            ("v1/libxul.so/0123456789ABCDEF0123456789ABCDEF0/libxul.so.sym", "skipped", 1024, "b" * 64),
            ("v1/readme.pdb/00/readme.txt", "ignored", 12, None),
        ]
        conn.execute(
            insert(UploadFile),
            [
                {"upload_id": ids[0], "key": k, "status": s, "size": size, "sha256": h, "created_at": now}
                for k, s, size, h in members
            ],
        )
    engine.dispose()
    return ids


def test_uploads_list_filter_and_one_upload(page, site, db, tmp_path):
    ids = add_uploads(db)
    sign_in(page, site)
    assert page.locator("svg.dash-uploads-svg rect.bar").count() == 30
    screenshot(page, tmp_path / "dashboard.png")
    with page.expect_navigation():
        page.click("nav >> text=Uploads")
    assert path_of(page) == "/admin/uploads"
    assert page.locator("table.uploads-table tbody tr[id]").count() == 4
    screenshot(page, tmp_path / "uploads.png")
    page.select_option("#uploads-filters select[name=status]", "failed")
    with page.expect_navigation():
        page.click("#uploads-filters button[type=submit]")
    assert page.locator("table.uploads-table tbody tr[id]").count() == 1
    assert "storage timed out" in page.inner_text("table.uploads-table")
    page.goto(site.url + f"/admin/uploads/{ids[0]}")
    assert page.inner_text("h1") == f"Upload {ids[0]}: firefox-0-symbols.zip"
    assert page.locator("table.upload-files tbody tr").count() == 3
    screenshot(page, tmp_path / "upload.png")
    assert page.console_log.errors == []
