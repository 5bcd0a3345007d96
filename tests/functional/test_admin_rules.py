"""Console: allowed extensions and ignore patterns (SPEC §4, §7), and the home page's
superuser section. Everything goes through HTTP: the real forms, the real download path.
"""

import json
import urllib.parse

import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from tecken_pyramid.models import AllowedExtension, AuditLog, IgnorePattern
from tests.conftest import create_user, login
from tests.functional.download_support import poll

DEBUG_ID = "44E4EC8C2F41492B9369D6B9A059577C2"
SCRIPT = "<script>alert(1)</script>"


# -- fixtures and helpers --------------------------------------------------------------------------
class Tables:
    """Direct reads (and set-up writes) of the rules tables and the audit log."""

    def __init__(self, database):
        self.engine = database.engine()

    def extensions(self):
        with Session(self.engine) as s:
            return s.scalars(select(AllowedExtension.extension).order_by(AllowedExtension.extension)).all()

    def extension_rows(self):
        with Session(self.engine) as s:
            return s.scalars(select(AllowedExtension).order_by(AllowedExtension.id)).all()

    def patterns(self):
        with Session(self.engine) as s:
            return s.scalars(select(IgnorePattern).order_by(IgnorePattern.id)).all()

    def pattern(self, text):
        with Session(self.engine) as s:
            return s.scalars(select(IgnorePattern).where(IgnorePattern.pattern == text)).one_or_none()

    def audit_since(self, last_id):
        with Session(self.engine) as s:
            return s.scalars(select(AuditLog).where(AuditLog.id > last_id).order_by(AuditLog.id)).all()

    def last_audit_id(self):
        with Session(self.engine) as s:
            return max(s.scalars(select(AuditLog.id)).all(), default=0)

    def keep_only_extensions(self, *keep):
        with self.engine.begin() as conn:
            conn.execute(delete(AllowedExtension).where(AllowedExtension.extension.not_in(keep)))

    def add_pattern(self, pattern, enabled=True, note=""):
        with self.engine.begin() as conn:
            conn.execute(
                insert(IgnorePattern).values(pattern=pattern, enabled=enabled, note=note, created_by="test")
            )
        return self.pattern(pattern)


@pytest.fixture
def tables(db):
    """The rules tables as the test found them (seeded), restored afterwards:
    ``db.reset`` does not bring back a seeded row that a test removed or edited."""
    t = Tables(db)
    with t.engine.connect() as conn:
        exts = [dict(r._mapping) for r in conn.execute(select(AllowedExtension.__table__))]
        pats = [dict(r._mapping) for r in conn.execute(select(IgnorePattern.__table__))]
    yield t
    with t.engine.begin() as conn:
        conn.execute(delete(AllowedExtension))
        conn.execute(delete(IgnorePattern))
        if exts:
            conn.execute(insert(AllowedExtension), exts)
        if pats:
            conn.execute(insert(IgnorePattern), pats)
    t.engine.dispose()


@pytest.fixture
def console(make_app, db, tables, symbols_dir):
    """Signed in as a superuser; the background reload is slowed down to once an hour,
    so a change seen by the download path was applied by the console itself."""
    create_user(db, "admin", "correct-horse")
    app = make_app(symbol_urls=str(symbols_dir), rules_refresh_seconds="3600")
    login(app, "admin", "correct-horse")
    app.audit_start = tables.last_audit_id()
    return app


def lookup(app, path):
    r = app.get(path, expect_errors=True)
    return r.status_int, r.headers.get("X-Symbol-Lookup")


def text_of(element):
    """An element's text with runs of whitespace (template line breaks) as one space."""
    return " ".join(element.get_text(" ").split())


def token(page):
    return page.html.find("input", {"name": "csrf_token"})["value"]


def flashes(page, queue=None):
    cls = "flash" if queue is None else f"flash {queue}"
    return [text_of(p) for p in page.html.select("p.flash") if cls in " ".join(p["class"])]


def form_by_action(page, fragment, index=0):
    """The index-th form whose action contains ``fragment``."""
    forms = [f for f in page.forms.values() if fragment in (f.action or "")]
    return forms[index]


def row_form(page, value, action):
    """The form ``action`` (remove, enabled...) on the table row showing ``value``."""
    for tr in page.html.select("table tbody tr"):
        code = tr.find("code")
        if code is not None and code.get_text() == value:
            target = tr.find("form", action=lambda a: a and a.endswith("/" + action))
            for form in page.forms.values():
                if form.action == target["action"]:
                    return form
    raise AssertionError(f"no {action} form for {value!r}")


def audit_rows(app, tables):
    return tables.audit_since(app.audit_start)


# -- access ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/admin/extensions", "/admin/patterns", "/admin/patterns?path=a/B/c"])
def test_anonymous_is_sent_to_login(make_app, db, tables, symbols_dir, path):
    app = make_app(symbol_urls=str(symbols_dir))
    r = app.get(path, status=303)
    assert "/admin/login?next=" in r.headers["Location"]
    assert urllib.parse.unquote(r.headers["Location"].split("next=", 1)[1]) == path


def test_non_superuser_gets_403_and_changes_nothing(make_app, db, tables, symbols_dir):
    create_user(db, "viewer", "correct-horse", superuser=False)
    app = make_app(symbol_urls=str(symbols_dir))
    login(app, "viewer", "correct-horse")
    for path in ("/admin/extensions", "/admin/patterns", "/admin/patterns/1/edit"):
        app.get(path, status=403)
    # A valid CSRF token (the session's, from the login form) is not a permission.
    csrf = token(app.get("/admin/login"))
    app.post("/admin/extensions/add", {"csrf_token": csrf, "extension": ".xyz"}, status=403)
    first = tables.patterns()[0]
    app.post(f"/admin/patterns/{first.id}/remove", {"csrf_token": csrf}, status=403)
    assert ".xyz" not in tables.extensions()
    assert tables.pattern(first.pattern) is not None


# -- extensions ------------------------------------------------------------------------------------
def test_extensions_list_shows_who_and_when(console):
    page = console.get("/admin/extensions", status=200)
    assert "Content-Security-Policy" in page.headers
    rows = {tr.find("code").get_text(): tr for tr in page.html.select("table tbody tr")}
    assert set(rows) == {".sym", ".dl_", ".ex_", ".pd_", ".dbg.gz", ".tar.bz2"}
    cells = [td.get_text(strip=True) for td in rows[".sym"].find_all("td")]
    assert cells[1] == "migration"
    assert cells[2].endswith(" UTC") and cells[2][:2] == "20"
    assert not page.html.select(".rules-empty")


def test_add_extension_applies_at_once_to_the_download_path(console, tables):
    assert lookup(console, f"/xul.pdb/{DEBUG_ID}/file.xyz") == (404, "extension-not-allowed")
    form = form_by_action(console.get("/admin/extensions"), "/admin/extensions/add")
    form["extension"] = ".xyz"
    r = form.submit(status=303)
    assert r.headers["Location"].endswith("/admin/extensions")
    page = r.follow()
    assert any("Added .xyz" in m for m in flashes(page, "info"))
    row = [e for e in tables.extension_rows() if e.extension == ".xyz"][0]
    assert row.created_by == "admin"
    # Applied by this process at once (its background reload runs once an hour).
    assert lookup(console, f"/xul.pdb/{DEBUG_ID}/file.xyz") == (404, "not-found")
    [entry] = audit_rows(console, tables)
    assert (entry.username, entry.action, entry.target) == ("admin", "extension.add", ".xyz")
    assert entry.before is None and json.loads(entry.after) == {"extension": ".xyz"}
    listed = [tr.find("code").get_text() for tr in page.html.select("table tbody tr")]
    assert ".xyz" in listed


def test_another_process_applies_the_change_within_its_refresh(console, make_app, symbols_dir):
    other = make_app(symbol_urls=str(symbols_dir), rules_refresh_seconds="0.2")
    assert lookup(other, f"/xul.pdb/{DEBUG_ID}/file.xyz") == (404, "extension-not-allowed")
    form = form_by_action(console.get("/admin/extensions"), "/admin/extensions/add")
    form["extension"] = ".xyz"
    form.submit(status=303)
    assert poll(lambda: lookup(other, f"/xul.pdb/{DEBUG_ID}/file.xyz") == (404, "not-found"), timeout=10)


def test_extension_is_stored_as_typed_and_matched_case_sensitively(console, tables):
    form = form_by_action(console.get("/admin/extensions"), "/admin/extensions/add")
    form["extension"] = "  .XyZ  "  # surrounding whitespace from a paste is dropped
    form.submit(status=303)
    assert ".XyZ" in tables.extensions()
    assert lookup(console, f"/xul.pdb/{DEBUG_ID}/file.XyZ") == (404, "not-found")
    assert lookup(console, f"/xul.pdb/{DEBUG_ID}/file.xyz") == (404, "extension-not-allowed")


@pytest.mark.parametrize(
    "value, message",
    [
        ("xyz", "starts with '.'"),
        ("", "type an extension"),
        (".", "at least one character"),
        (".x y", "whitespace"),
        (".a/b", "'/'"),
        (".a<b", "invalid character"),
        (".a%b", "invalid character"),
        (".a\x01b", "invalid character"),
        ("." + "x" * 100, "at most 100"),
    ],
)
def test_invalid_extension_is_refused(console, tables, value, message):
    before = tables.extensions()
    page = console.get("/admin/extensions")
    r = console.post("/admin/extensions/add", {"csrf_token": token(page), "extension": value}, status=303)
    errors = flashes(r.follow(), "error")
    assert len(errors) == 1 and errors[0].startswith("Not added:") and message in errors[0]
    assert tables.extensions() == before
    assert audit_rows(console, tables) == []


def test_duplicate_extension_is_refused(console, tables):
    before = tables.extensions()
    form = form_by_action(console.get("/admin/extensions"), "/admin/extensions/add")
    form["extension"] = ".sym"
    page = form.submit(status=303).follow()
    assert flashes(page, "error") == ["Not added: .sym is already allowed."]
    assert tables.extensions() == before
    assert audit_rows(console, tables) == []


def test_remove_extension_is_one_post_from_the_list(console, tables):
    assert lookup(console, f"/xul.pdb/{DEBUG_ID}/xul.dl_") == (404, "not-found")
    page = console.get("/admin/extensions")
    r = row_form(page, ".dl_", "remove").submit(status=303)
    assert any("Removed .dl_" in m for m in flashes(r.follow(), "info"))
    assert ".dl_" not in tables.extensions()
    assert lookup(console, f"/xul.pdb/{DEBUG_ID}/xul.dl_") == (404, "extension-not-allowed")
    [entry] = audit_rows(console, tables)
    assert (entry.action, entry.target, entry.after) == ("extension.remove", ".dl_", None)
    before = json.loads(entry.before)
    assert before["extension"] == ".dl_" and before["created_by"] == "migration"


def test_removing_an_extension_already_gone_changes_nothing(console, tables):
    page = console.get("/admin/extensions")
    form = row_form(page, ".dl_", "remove")
    form.submit(status=303)
    r = form.submit(status=303)  # the same, stale form again
    assert flashes(r.follow(), "error") == ["That extension was already removed."]
    assert len(audit_rows(console, tables)) == 1
    r = console.post("/admin/extensions/99999999999/remove", {"csrf_token": token(page)}, status=303)
    assert flashes(r.follow(), "error") == ["That extension was already removed."]
    console.post("/admin/extensions/abc/remove", {"csrf_token": token(page)}, status=404)


def test_last_extension_needs_a_confirmation_and_the_empty_table_is_flagged(console, tables):
    page = console.get("/admin/extensions")
    for ext in (".dl_", ".ex_", ".pd_", ".dbg.gz", ".tar.bz2"):
        row_form(page, ext, "remove").submit(status=303)
        page = console.get("/admin/extensions")
    assert tables.extensions() == [".sym"]
    # The last row's form carries the warning and a confirmation box, unticked.
    form = row_form(page, ".sym", "remove")
    assert "confirm_empty" in form.fields
    assert "refuses every download" in text_of(page.html.select("table tbody tr")[0])
    r = form.submit(status=303)
    errors = flashes(r.follow(), "error")
    assert len(errors) == 1 and "last allowed extension" in errors[0]
    assert tables.extensions() == [".sym"]
    assert lookup(console, f"/xul.pdb/{DEBUG_ID}/xul.sym") == (404, "not-found")
    # Second step: ticked.
    form = row_form(console.get("/admin/extensions"), ".sym", "remove")
    form["confirm_empty"] = True
    r = form.submit(status=303)
    page = r.follow()
    assert any("No extension is allowed now" in m for m in flashes(page, "error"))
    assert tables.extensions() == []
    assert page.html.select(".rules-empty")
    assert "every download answers 404" in text_of(page.html.select_one(".rules-empty"))
    assert lookup(console, f"/xul.pdb/{DEBUG_ID}/xul.sym") == (404, "extension-not-allowed")
    assert [e.action for e in audit_rows(console, tables)] == ["extension.remove"] * 6
    # The home page says so too.
    assert "none: every download answers 404" in console.get("/").text


def test_extension_posts_without_csrf_token_are_400_and_change_nothing(console, tables):
    before = tables.extensions()
    sym = [e for e in tables.extension_rows() if e.extension == ".sym"][0]
    console.post("/admin/extensions/add", {"extension": ".xyz"}, status=400)
    console.post("/admin/extensions/add", {"extension": ".xyz", "csrf_token": "forged"}, status=400)
    r = console.post(f"/admin/extensions/{sym.id}/remove", status=400)
    assert "nothing was changed" in r.text
    assert tables.extensions() == before
    assert audit_rows(console, tables) == []


# -- ignore patterns -------------------------------------------------------------------------------
def test_patterns_list_shows_every_column(console, tables):
    tables.add_pattern("old/*", enabled=False, note="kept for later")
    page = console.get("/admin/patterns", status=200)
    rows = page.html.select("table tbody tr")
    texts = {tr.find("code").get_text(): [text_of(td) for td in tr.find_all("td")] for tr in rows}
    ptr = texts["*/*/file.ptr"]
    assert ptr[2] == "yes" and "file.ptr" in ptr[3] and ptr[4] == "migration" and ptr[5].endswith("UTC")
    old = texts["old/*"]
    assert old[2] == "no" and old[3] == "kept for later" and old[4] == "test"
    assert "Enable" in old[6] and "Edit" in old[6] and "Remove" in old[6]


def test_add_pattern_applies_at_once(console, tables):
    path = f"/xul.pdb/{DEBUG_ID}/xul.sym"
    assert lookup(console, path) == (404, "not-found")
    form = form_by_action(console.get("/admin/patterns"), "/admin/patterns/add")
    form["pattern"] = "xul.pdb/*"
    form["note"] = "  never uploaded  "
    page = form.submit(status=303).follow()
    assert any("Added ignore pattern xul.pdb/*" in m for m in flashes(page, "info"))
    row = tables.pattern("xul.pdb/*")
    assert (row.enabled, row.note, row.created_by) == (True, "never uploaded", "admin")
    assert lookup(console, path) == (404, "ignored")
    assert lookup(console, f"/try/xul.pdb/{DEBUG_ID}/xul.sym") == (404, "ignored")
    [entry] = audit_rows(console, tables)
    assert (entry.action, entry.target, entry.before) == ("pattern.add", f"#{row.id} xul.pdb/*", None)
    assert json.loads(entry.after) == {"pattern": "xul.pdb/*", "note": "never uploaded", "enabled": True}


@pytest.mark.parametrize(
    "pattern, note, message",
    [
        ("", "", "type a pattern"),
        ("   ", "", "type a pattern"),
        ("x" * 501, "", "at most 500"),
        ("a\x01b/*", "", "no control characters"),
        ("a\tb/*", "", "no control characters"),
        ("a/*", "line\x7f", "no control characters"),
        ("a/*", "n" * 1001, "at most 1000"),
        ("*/*/file.ptr", "", "already exists"),
    ],
)
def test_invalid_pattern_is_refused_and_the_form_keeps_what_was_typed(
    console, tables, pattern, note, message
):
    before = [(p.id, p.pattern, p.note, p.enabled) for p in tables.patterns()]
    page = console.get("/admin/patterns")
    r = console.post(
        "/admin/patterns/add", {"csrf_token": token(page), "pattern": pattern, "note": note}, status=303
    )
    page = r.follow()
    errors = flashes(page, "error")
    assert len(errors) == 1 and errors[0].startswith("Not added:") and message in errors[0]
    assert [(p.id, p.pattern, p.note, p.enabled) for p in tables.patterns()] == before
    assert audit_rows(console, tables) == []
    if message == "already exists":
        assert form_by_action(page, "/admin/patterns/add")["pattern"].value == pattern


def test_pattern_of_500_characters_is_accepted(console, tables):
    text = "a" * 499 + "*"
    page = console.get("/admin/patterns")
    console.post("/admin/patterns/add", {"csrf_token": token(page), "pattern": text, "note": ""}, status=303)
    assert tables.pattern(text) is not None


def test_edit_pattern_and_note(console, tables):
    row = tables.add_pattern("xul.pdb/*", note="first")
    assert lookup(console, f"/xul.pdb/{DEBUG_ID}/xul.sym") == (404, "not-found")  # not reloaded yet
    page = console.get("/admin/patterns")
    link = [a["href"] for a in page.html.select("a") if a["href"] == f"/admin/patterns/{row.id}/edit"]
    assert link
    edit = console.get(link[0], status=200)
    form = form_by_action(edit, "/edit")
    assert (form["pattern"].value, form["note"].value) == ("xul.pdb/*", "first")
    form["pattern"] = "nss3.pdb/*"
    form["note"] = "second"
    r = form.submit(status=303)
    assert any(f"Saved ignore pattern #{row.id}" in m for m in flashes(r.follow(), "info"))
    saved = tables.pattern("nss3.pdb/*")
    assert (saved.id, saved.note, saved.enabled) == (row.id, "second", True)
    assert lookup(console, f"/nss3.pdb/{DEBUG_ID}/nss3.sym") == (404, "ignored")
    assert lookup(console, f"/xul.pdb/{DEBUG_ID}/xul.sym") == (404, "not-found")
    [entry] = audit_rows(console, tables)
    assert (entry.action, entry.target) == ("pattern.edit", f"#{row.id} nss3.pdb/*")
    assert json.loads(entry.before) == {"pattern": "xul.pdb/*", "note": "first", "enabled": True}
    assert json.loads(entry.after) == {"pattern": "nss3.pdb/*", "note": "second", "enabled": True}


def test_edit_without_a_change_or_with_an_error_audits_nothing(console, tables):
    row = tables.add_pattern("xul.pdb/*", note="first")
    form = form_by_action(console.get(f"/admin/patterns/{row.id}/edit"), "/edit")
    r = form.submit(status=303)
    assert flashes(r.follow(), "info") == ["Nothing changed."]
    form["pattern"] = "*/*/file.ptr"  # another row's pattern
    r = form.submit(status=303)
    assert r.headers["Location"].split("?")[0].endswith(f"/admin/patterns/{row.id}/edit")
    page = r.follow()
    assert any("already exists" in m for m in flashes(page, "error"))
    assert form_by_action(page, "/edit")["pattern"].value == "*/*/file.ptr"  # kept as typed
    form["pattern"] = "bad\x00/*"
    r = form.submit(status=303)
    assert any("no control characters" in m for m in flashes(r.follow(), "error"))
    assert tables.pattern("xul.pdb/*").note == "first"
    assert audit_rows(console, tables) == []


def test_edit_of_a_missing_pattern(console, tables):
    r = console.get("/admin/patterns/99999/edit", status=303)
    assert flashes(r.follow(), "error") == ["That ignore pattern no longer exists."]
    console.get("/admin/patterns/99999999999999/edit", status=303)


def test_disable_and_enable_from_the_list(console, tables):
    path = f"/xul.pdb/{DEBUG_ID}/file.ptr"
    assert lookup(console, path) == (404, "ignored")
    page = console.get("/admin/patterns")
    form = row_form(page, "*/*/file.ptr", "enabled")
    assert form["enabled"].value == "false"
    page = form.submit(status=303).follow()
    assert any("is disabled" in m for m in flashes(page, "info"))
    assert tables.pattern("*/*/file.ptr").enabled is False
    assert lookup(console, path) == (404, "extension-not-allowed")  # .ptr is not allowed either
    # The same (stale) form again changes nothing.
    r = form.submit(status=303)
    assert any("already disabled" in m for m in flashes(r.follow(), "info"))
    form = row_form(console.get("/admin/patterns"), "*/*/file.ptr", "enabled")
    assert form["enabled"].value == "true"
    form.submit(status=303)
    assert tables.pattern("*/*/file.ptr").enabled is True
    assert lookup(console, path) == (404, "ignored")
    entries = audit_rows(console, tables)
    assert [e.action for e in entries] == ["pattern.disable", "pattern.enable"]
    states = [(json.loads(e.before)["enabled"], json.loads(e.after)["enabled"]) for e in entries]
    assert states == [(True, False), (False, True)]


def test_remove_pattern_is_one_post_from_the_list(console, tables):
    zeros = "0" * 33
    path = f"/xul.pdb/{zeros}/xul.sym"
    assert lookup(console, path) == (404, "ignored")
    pattern = f"*/{zeros}/*"
    row = tables.pattern(pattern)
    page = row_form(console.get("/admin/patterns"), pattern, "remove").submit(status=303).follow()
    assert any(f"Removed ignore pattern {pattern}" in m for m in flashes(page, "info"))
    assert tables.pattern(pattern) is None
    assert lookup(console, path) == (404, "not-found")
    [entry] = audit_rows(console, tables)
    assert (entry.action, entry.target, entry.after) == ("pattern.remove", f"#{row.id} {pattern}", None)
    assert json.loads(entry.before)["pattern"] == pattern
    r = console.post(f"/admin/patterns/{row.id}/remove", {"csrf_token": token(page)}, status=303)
    assert flashes(r.follow(), "error") == ["That ignore pattern was already removed."]


def test_pattern_posts_without_csrf_token_are_400_and_change_nothing(console, tables):
    row = tables.pattern("*/*/file.ptr")
    console.post("/admin/patterns/add", {"pattern": "x/*", "note": ""}, status=400)
    console.post(f"/admin/patterns/{row.id}/edit", {"pattern": "x/*", "note": ""}, status=400)
    console.post(f"/admin/patterns/{row.id}/enabled", {"enabled": "false"}, status=400)
    console.post(f"/admin/patterns/{row.id}/remove", {"csrf_token": "nope"}, status=400)
    after = tables.pattern("*/*/file.ptr")
    assert (after.id, after.enabled, after.note) == (row.id, True, row.note)
    assert tables.pattern("x/*") is None
    assert audit_rows(console, tables) == []
    assert lookup(console, f"/xul.pdb/{DEBUG_ID}/file.ptr") == (404, "ignored")


# -- the test-a-path box ---------------------------------------------------------------------------
def box(app, path):
    page = app.get("/admin/patterns", {"path": path}, status=200)
    section = page.html.select_one("section.rules-result")
    assert section is not None, page.text
    return section["data-outcome"], text_of(section)


def test_box_uses_a_get_form(console):
    page = console.get("/admin/patterns")
    form = [f for f in page.forms.values() if "path" in f.fields][0]
    assert form.method.upper() == "GET"
    form["path"] = f"xul.pdb/{DEBUG_ID}/file.ptr"
    section = form.submit(status=200).html.select_one("section.rules-result")
    assert section["data-outcome"] == "ignored"


def test_box_ignored_names_the_pattern_and_its_note(console, tables):
    outcome, text = box(console, f"xul.pdb/{DEBUG_ID}/file.ptr")
    row = tables.pattern("*/*/file.ptr")
    assert outcome == "ignored"
    assert f"#{row.id} */*/file.ptr" in text and row.note in text
    assert "X-Symbol-Lookup: ignored" in text and "404" in text


def test_box_extension_not_allowed_lists_the_extensions(console):
    outcome, text = box(console, f"/xul.pdb/{DEBUG_ID}/xul.exe")
    assert outcome == "extension-not-allowed"
    assert "X-Symbol-Lookup: extension-not-allowed" in text and ".sym" in text and ".dbg.gz" in text


def test_box_invalid_name(console):
    outcome, text = box(console, f"xul<.pdb/{DEBUG_ID}/xul.sym")
    assert outcome == "invalid-name"
    assert "'<'" in text and "400" in text and "X-Symbol-Lookup: invalid-name" in text
    assert lookup(console, f"/xul%3C.pdb/{DEBUG_ID}/xul.sym") == (400, "invalid-name")


def test_box_lookup_shows_the_keys_in_order(console):
    outcome, text = box(console, f"xul.pdb/{DEBUG_ID.lower()}/xul.sym")
    assert outcome == "lookup"
    assert f"v1/xul.pdb/{DEBUG_ID}/xul.sym" in text  # the key upper-cases the debug id
    assert "try" not in text.split("Keys, in order:")[1]
    outcome, text = box(console, f"/try/xul.pdb/{DEBUG_ID}/xul.sym")
    assert outcome == "lookup" and text.count(f"v1/xul.pdb/{DEBUG_ID}/xul.sym") == 2
    assert "try location" in text
    outcome, text = box(console, f"http://symbols.example.com/xul.pdb/{DEBUG_ID}/xul.sym?try=0")
    assert outcome == "lookup" and text.count(f"v1/xul.pdb/{DEBUG_ID}/xul.sym") == 2


def test_box_decodes_a_url_as_the_server_does(console):
    outcome, text = box(console, f"https://symbols.example.com/my%20lib.pdb/{DEBUG_ID}/my%20lib.sym")
    assert outcome == "lookup" and f"/my lib.pdb/{DEBUG_ID}/my lib.sym" in text
    outcome, text = box(console, f"/xul.pdb/{DEBUG_ID}/xul%FF.sym")
    assert outcome == "invalid-name" and "xul%FF.sym" in text  # not UTF-8: kept as %FF


@pytest.mark.parametrize(
    "path",
    [
        "xul.pdb/NOTHEX/xul.sym",
        "xul.pdb/ABC/xul.sym/",
        "xul.pdb/xul.sym",
        "a/b/ABC/c/d",
        "x/../ABC/y.sym",
        "TRY/xul.pdb/ABC/xul.sym",
        "admin/ABC/x.sym",
    ],
)
def test_box_not_a_download_path(console, path):
    outcome, text = box(console, path)
    assert outcome == "not-a-download"
    assert "404" in text
    assert lookup(console, "/" + path)[1] is None  # the JSON 404 (or the console) answers


def test_box_mentions_disabled_patterns_that_would_have_matched(console, tables):
    tables.add_pattern("xul.pdb/*", enabled=False, note="switched off")
    outcome, text = box(console, f"xul.pdb/{DEBUG_ID}/xul.sym")
    assert outcome == "lookup"
    assert "Disabled patterns that would have matched" in text
    assert "xul.pdb/*" in text and "switched off" in text
    outcome, text = box(console, f"xul.pdb/{DEBUG_ID}/file.ptr")
    assert outcome == "ignored" and "xul.pdb/*" in text.split("Disabled patterns")[1]


def test_box_answers_from_the_saved_rows(console, tables):
    # Written behind the console's back: this process has not reloaded (once an hour).
    tables.add_pattern("xul.pdb/*")
    assert lookup(console, f"/xul.pdb/{DEBUG_ID}/xul.sym") == (404, "not-found")
    outcome, text = box(console, f"xul.pdb/{DEBUG_ID}/xul.sym")
    assert outcome == "ignored" and "xul.pdb/*" in text
    assert "has not reloaded the latest saved rules yet" in text
    outcome, text = box(console, f"xul.pdb/{DEBUG_ID}/file.ptr")
    assert outcome == "ignored" and "Also matched by" in text and "has not reloaded" not in text


def test_box_rejects_an_overlong_path(console):
    page = console.get("/admin/patterns", {"path": "a" * 2001}, status=200)
    assert page.html.select_one("section.rules-result") is None
    assert any("at most 2000" in m for m in flashes(page, "error"))


# -- escaping --------------------------------------------------------------------------------------
def test_pattern_and_note_are_escaped_everywhere(console, tables):
    pattern = "*<script>*"  # one segment: the test box can be given a path it ignores
    page = console.get("/admin/patterns")
    r = console.post(
        "/admin/patterns/add", {"csrf_token": token(page), "pattern": pattern, "note": SCRIPT}, status=303
    )
    pages = [
        r.follow(),  # the list, with the flash message naming the pattern
        console.get(f"/admin/patterns/{tables.pattern(pattern).id}/edit"),
        console.get("/admin/patterns", {"path": f"xul.pdb/{DEBUG_ID}/<script>.sym"}),
        console.get("/admin/patterns", {"path": "x", "pattern": SCRIPT, "note": SCRIPT}),  # prefill
        console.get("/"),
    ]
    for page in pages:
        assert "<script>" not in page.text, page.request.url
        assert "&lt;script&gt;" in page.text, page.request.url
    section = pages[2].html.select_one("section.rules-result")
    assert section["data-outcome"] == "ignored"
    edit_form = form_by_action(pages[1], "/edit")
    assert edit_form["pattern"].value == pattern and edit_form["note"].value == SCRIPT


def test_extension_field_prefill_is_escaped(console):
    page = console.get("/admin/extensions", {"extension": '"><script>x</script>'})
    assert "<script>" not in page.text
    assert form_by_action(page, "/admin/extensions/add")["extension"].value == '"><script>x</script>'


# -- the home page ---------------------------------------------------------------------------------
def test_home_shows_the_rules_to_a_superuser_only(make_app, db, tables, symbols_dir):
    create_user(db, "admin", "correct-horse")
    create_user(db, "viewer", "correct-horse", superuser=False)
    app = make_app(symbol_urls=str(symbols_dir))
    r = app.get("/", status=200)
    assert "Set-Cookie" not in r.headers
    assert r.html.select_one("section.rules-home") is None
    # A request carrying a cookie that names nobody sets no cookie either.
    app.set_cookie("tecken_session", "garbage")
    r = app.get("/", status=200)
    assert "Set-Cookie" not in r.headers and r.html.select_one("section.rules-home") is None
    app.reset()

    login(app, "viewer", "correct-horse")
    assert app.get("/").html.select_one("section.rules-home") is None
    app.reset()

    login(app, "admin", "correct-horse")
    section = app.get("/").html.select_one("section.rules-home")
    text = text_of(section)
    for ext in (".sym", ".dl_", ".ex_", ".pd_", ".dbg.gz", ".tar.bz2"):
        assert ext in text
    assert "*/*/file.ptr" in text and "0" * 33 in text
    assert section.find("a", href="/admin/extensions") and section.find("a", href="/admin/patterns")
    # Disabled patterns are not in force, and are not listed.
    page = app.get("/admin/patterns")
    row_form(page, "*/*/file.ptr", "enabled").submit(status=303)
    assert "*/*/file.ptr" not in text_of(app.get("/").html.select_one("section.rules-home"))
    # Signed out again: the section is gone.
    app.post("/admin/logout", {"csrf_token": token(app.get("/admin/patterns"))}, status=303)
    assert app.get("/").html.select_one("section.rules-home") is None
