"""Console area: ignore patterns (SPEC §4, §7): list, add, edit, enable/disable,
remove, and a "test a path" box.

A pattern is matched with ``fnmatch.fnmatchcase`` against
``symbol/debugid/filename`` (debug id as requested, ``*`` also matches ``/``);
the first enabled one that matches answers 404 ``ignored``. The test box answers
from the rows saved in the database, in the order of SPEC §2 steps 1-3.
"""

import re
import urllib.parse

from sqlalchemy import select

from ..models import IgnorePattern
from ..resources import RESERVED, download_shape
from ..rules import EXTENSION_NOT_ALLOWED, IGNORED, Pattern, load_rules
from ..settings import INVALID_NAME_CHARS
from ..tweens import decoded_path
from .common import admin_post, admin_route, admin_view, audit, flash, see_other
from .extensions import apply_rules_now, row_id, utc_text

MAX_PATTERN_LENGTH = 500  # the column's size
MAX_NOTE_LENGTH = 1000
MAX_TEST_PATH_LENGTH = 2000
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TRUE_VALUES = ("1", "true", "yes", "on")


def pattern_record(row):
    return {"pattern": row.pattern, "note": row.note or "", "enabled": bool(row.enabled)}


def pattern_target(row):
    return f"#{row.id} {row.pattern}"


def check_pattern(pattern, note):
    """An error message for a pattern and note typed in the console, else None."""
    if not pattern.strip():
        return "type a pattern, for example */*/file.ptr"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"a pattern is at most {MAX_PATTERN_LENGTH} characters"
    if CONTROL.search(pattern):
        return "a pattern contains no control characters"
    if len(note) > MAX_NOTE_LENGTH:
        return f"a note is at most {MAX_NOTE_LENGTH} characters"
    if CONTROL.search(note):
        return "a note contains no control characters"
    return None


def duplicate_of(session, pattern, exclude_id=None):
    query = select(IgnorePattern.id).where(IgnorePattern.pattern == pattern)
    if exclude_id is not None:
        query = query.where(IgnorePattern.id != exclude_id)
    return session.scalars(query.order_by(IgnorePattern.id)).first()


def form_values(request):
    # The pattern is kept exactly as typed (a name may contain spaces); the
    # note is free text, trimmed.
    return request.POST.get("pattern", ""), request.POST.get("note", "").strip()


# -- the test box --------------------------------------------------------------------------------
def parse_test_path(text):
    """(path, is_try, problem): the decoded download path the box was given.

    The box takes what a client would request: a full ``http(s)://`` URL or a
    path (the leading ``/`` optional), percent-encoded or not; it is decoded the
    way the server decodes a request, and ``?try`` is honoured.
    """
    if re.match(r"https?://", text, re.I):
        parts = urllib.parse.urlsplit(text)
        raw_path, query = parts.path, parts.query
    else:
        raw_path, _sep, query = text.partition("?")
        if not raw_path.startswith("/"):
            raw_path = "/" + raw_path
    raw = urllib.parse.unquote_to_bytes(raw_path).decode("latin-1")
    path = decoded_path({"PATH_INFO": raw})  # bytes that are not UTF-8 stay %XX
    path = re.sub(r"^/+", "/", path)  # waitress collapses leading slashes
    is_try = any(name == "try" for name, _value in urllib.parse.parse_qsl(query, keep_blank_values=True))
    segments = path.split("/")[1:]
    if segments and segments[0] in RESERVED:
        return path, is_try, f"/{segments[0]}/ is reserved: it is never a download"
    if not download_shape(segments):
        return path, is_try, (
            "not a download path (exactly symbol/debugid/filename, optionally after /try/; "
            "no empty, '.' or '..' segment; a hexadecimal debug id)"
        )
    return path, is_try or segments[0] == "try", None


def explain_path(request, text):
    """Which rule, if any, decides this path, from the rules saved in the database."""
    path, is_try, problem = parse_test_path(text)
    result = {"input": text, "path": path, "is_try": is_try, "disabled": [], "also": []}
    if problem is not None:
        result.update(outcome="not-a-download", status="404", lookup=None, problem=problem)
        return result
    segments = path.split("/")[1:]
    if segments[0] == "try" and len(segments) == 4:
        segments = segments[1:]
    symbol, debugid, filename = segments
    name = f"{symbol}/{debugid}/{filename}"
    result["name"] = name

    session = request.dbsession
    rules = load_rules(session.connection())
    rows = {row.id: row for row in session.scalars(select(IgnorePattern).order_by(IgnorePattern.id))}
    matching = [p for p in rules.patterns if p.regex.match(name)]
    for row in rows.values():
        if not row.enabled and Pattern.compile(row.pattern, row.id).regex.match(name):
            result["disabled"].append({"id": row.id, "pattern": row.pattern, "note": row.note or ""})

    decision, pattern = rules.decide(symbol, debugid, filename)
    if decision == IGNORED:
        row = rows.get(pattern.id)
        result.update(
            outcome="ignored",
            status="404",
            lookup="ignored",
            pattern={"id": pattern.id, "pattern": pattern.pattern, "note": (row.note or "") if row else ""},
        )
        result["also"] = [{"id": p.id, "pattern": p.pattern} for p in matching if p.id != pattern.id]
    elif decision == EXTENSION_NOT_ALLOWED:
        result.update(outcome="extension-not-allowed", status="404", lookup=EXTENSION_NOT_ALLOWED,
                      extensions=rules.extensions)
    else:
        bad = sorted({c for part in (symbol, filename) for c in INVALID_NAME_CHARS.findall(part)})
        if bad:
            result.update(outcome="invalid-name", status="400", lookup="invalid-name",
                          invalid=[f"{c!r} (U+{ord(c):04X})" for c in bad])
        else:
            settings = request.registry.tecken
            locations = list(settings.locations) + ([settings.try_location] if is_try else [])
            result.update(
                outcome="lookup",
                status="302 / 404 / 503",
                lookup="found, not-found or unavailable",
                lookups=[
                    {"location": loc.url, "key": loc.key(symbol, debugid, filename)} for loc in locations
                ],
            )
    # This process applies its in-memory rules, reloaded in the background: say
    # so when they do not agree with the saved rows yet.
    live, _ = request.registry.rules.current.decide(symbol, debugid, filename)
    result["stale"] = live != decision
    return result


# -- views ---------------------------------------------------------------------------------------
def pattern_rows(rows):
    return [
        {
            "id": row.id,
            "pattern": row.pattern,
            "enabled": bool(row.enabled),
            "note": row.note or "",
            "created_by": row.created_by or "",
            "created_at": utc_text(row.created_at),
        }
        for row in rows
    ]


@admin_view("admin.patterns", renderer="admin/patterns.jinja2")
def patterns_list(request):
    rows = request.dbsession.scalars(select(IgnorePattern).order_by(IgnorePattern.id)).all()
    path = request.GET.get("path", "")
    result = None
    if path:
        if len(path) > MAX_TEST_PATH_LENGTH:
            flash(request, f"The path to test is at most {MAX_TEST_PATH_LENGTH} characters.", "error")
        else:
            result = explain_path(request, path)
    return {
        "patterns": pattern_rows(rows),
        "test_path": path,
        "result": result,
        "new_pattern": request.GET.get("pattern", ""),
        "new_note": request.GET.get("note", ""),
        "refresh_seconds": request.registry.tecken.rules_refresh_seconds,
    }


@admin_post("admin.patterns.add")
def pattern_add(request):
    pattern, note = form_values(request)
    problem = check_pattern(pattern, note)
    session = request.dbsession
    if problem is None:
        existing = duplicate_of(session, pattern)
        if existing is not None:
            problem = f"the same pattern already exists (#{existing})"
    if problem is not None:
        flash(request, f"Not added: {problem}.", "error")
        return see_other(request, "admin.patterns", _query={"pattern": pattern[:MAX_PATTERN_LENGTH],
                                                            "note": note[:MAX_NOTE_LENGTH]})
    row = IgnorePattern(pattern=pattern, note=note, enabled=True, created_by=request.identity.username)
    session.add(row)
    session.flush()
    audit(request, "pattern.add", pattern_target(row), None, pattern_record(row))
    session.commit()
    apply_rules_now(request)
    flash(request, f"Added ignore pattern {pattern} (enabled).")
    return see_other(request, "admin.patterns")


def _get_row(request):
    ident = row_id(request)
    return request.dbsession.get(IgnorePattern, ident) if ident is not None else None


@admin_view("admin.patterns.edit", renderer="admin/patterns_edit.jinja2")
def pattern_edit_form(request):
    row = _get_row(request)
    if row is None:
        flash(request, "That ignore pattern no longer exists.", "error")
        return see_other(request, "admin.patterns")
    return {
        "row": pattern_rows([row])[0],
        "pattern": request.GET.get("pattern", row.pattern),
        "note": request.GET.get("note", row.note or ""),
    }


@admin_post("admin.patterns.edit")
def pattern_edit(request):
    session = request.dbsession
    row = _get_row(request)
    if row is None:
        flash(request, "That ignore pattern no longer exists.", "error")
        return see_other(request, "admin.patterns")
    pattern, note = form_values(request)
    problem = check_pattern(pattern, note)
    if problem is None:
        existing = duplicate_of(session, pattern, exclude_id=row.id)
        if existing is not None:
            problem = f"the same pattern already exists (#{existing})"
    if problem is not None:
        flash(request, f"Not saved: {problem}.", "error")
        return see_other(request, "admin.patterns.edit", id=row.id, _query={
            "pattern": pattern[:MAX_PATTERN_LENGTH], "note": note[:MAX_NOTE_LENGTH]})
    before = pattern_record(row)
    if before["pattern"] == pattern and before["note"] == note:
        flash(request, "Nothing changed.")
        return see_other(request, "admin.patterns")
    row.pattern = pattern
    row.note = note
    audit(request, "pattern.edit", pattern_target(row), before, pattern_record(row))
    session.commit()
    apply_rules_now(request)
    flash(request, f"Saved ignore pattern #{row.id}.")
    return see_other(request, "admin.patterns")


@admin_post("admin.patterns.enabled")
def pattern_enabled(request):
    session = request.dbsession
    row = _get_row(request)
    if row is None:
        flash(request, "That ignore pattern no longer exists.", "error")
        return see_other(request, "admin.patterns")
    # The wanted state is explicit, so a repeated submit changes nothing twice.
    enabled = request.POST.get("enabled", "").lower() in TRUE_VALUES
    word = "enabled" if enabled else "disabled"
    if bool(row.enabled) == enabled:
        flash(request, f"Ignore pattern #{row.id} was already {word}.")
        return see_other(request, "admin.patterns")
    before = pattern_record(row)
    row.enabled = enabled
    audit(request, "pattern.enable" if enabled else "pattern.disable", pattern_target(row), before,
          pattern_record(row))
    session.commit()
    apply_rules_now(request)
    flash(request, f"Ignore pattern #{row.id} {row.pattern} is {word}.")
    return see_other(request, "admin.patterns")


@admin_post("admin.patterns.remove")
def pattern_remove(request):
    session = request.dbsession
    row = _get_row(request)
    if row is None:
        flash(request, "That ignore pattern was already removed.", "error")
        return see_other(request, "admin.patterns")
    target, before = pattern_target(row), pattern_record(row)
    session.delete(row)
    audit(request, "pattern.remove", target, before, None)
    session.commit()
    apply_rules_now(request)
    flash(request, f"Removed ignore pattern {before['pattern']}.")
    return see_other(request, "admin.patterns")


def includeme(config):
    admin_route(config, "admin.patterns", "/admin/patterns")
    admin_route(config, "admin.patterns.add", "/admin/patterns/add")
    admin_route(config, "admin.patterns.edit", r"/admin/patterns/{id:\d{1,18}}/edit")
    admin_route(config, "admin.patterns.enabled", r"/admin/patterns/{id:\d{1,18}}/enabled")
    admin_route(config, "admin.patterns.remove", r"/admin/patterns/{id:\d{1,18}}/remove")
