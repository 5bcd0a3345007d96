"""Console area: ignore patterns (SPEC §4, §7): list, add, edit, enable/disable,
remove, and a "test a path" box (:mod:`.explain`).

A pattern is matched with ``fnmatch.fnmatchcase`` against
``symbol/debugid/filename`` (debug id as requested, ``*`` also matches ``/``);
the first enabled one that matches answers 404 ``ignored``.
"""

from sqlalchemy import select

from ..models import IgnorePattern
from .common import Done, Refused, admin_view, audit, console_action, flash, get_row, see_other, utc_text
from .explain import MAX_TEST_PATH_LENGTH, explain_path
from .forms import EnabledForm, PatternForm

GONE = "That ignore pattern no longer exists."


def pattern_record(row):
    return {"pattern": row.pattern, "note": row.note or "", "enabled": bool(row.enabled)}


def pattern_target(row):
    return f"#{row.id} {row.pattern}"


def duplicate_problem(session, pattern, exclude_id=None):
    """Why ``pattern`` cannot be saved because another row has it, or None."""
    query = select(IgnorePattern.id).where(IgnorePattern.pattern == pattern)
    if exclude_id is not None:
        query = query.where(IgnorePattern.id != exclude_id)
    existing = session.scalars(query.order_by(IgnorePattern.id)).first()
    return None if existing is None else f"the same pattern already exists (#{existing})"


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


@console_action("admin.patterns.add", then="admin.patterns", reload_rules=True)
def pattern_add(request):
    form = PatternForm.parse(request.POST)
    problem = form.problem() or duplicate_problem(request.dbsession, form.pattern)
    if problem is not None:
        raise Refused(f"Not added: {problem}.", query=form.again())
    username = request.identity.username
    row = IgnorePattern(pattern=form.pattern, note=form.note, enabled=True, created_by=username)
    request.dbsession.add(row)
    request.dbsession.flush()
    audit(request, "pattern.add", pattern_target(row), None, pattern_record(row))
    return Done(f"Added ignore pattern {form.pattern} (enabled).")


@admin_view("admin.patterns.edit", renderer="admin/patterns_edit.jinja2")
def pattern_edit_form(request):
    try:
        row = get_row(request, IgnorePattern, GONE)
    except Refused as refusal:
        flash(request, refusal.message, "error")
        return see_other(request, "admin.patterns")
    return {
        "row": pattern_rows([row])[0],
        "pattern": request.GET.get("pattern", row.pattern),
        "note": request.GET.get("note", row.note or ""),
    }


@console_action("admin.patterns.edit", then="admin.patterns", reload_rules=True)
def pattern_edit(request):
    row = get_row(request, IgnorePattern, GONE)
    form = PatternForm.parse(request.POST)
    problem = form.problem() or duplicate_problem(request.dbsession, form.pattern, exclude_id=row.id)
    if problem is not None:
        raise Refused(f"Not saved: {problem}.", "admin.patterns.edit", query=form.again(), id=row.id)
    before = pattern_record(row)
    if before["pattern"] == form.pattern and before["note"] == form.note:
        return Done("Nothing changed.", changed=False)
    row.pattern = form.pattern
    row.note = form.note
    audit(request, "pattern.edit", pattern_target(row), before, pattern_record(row))
    return Done(f"Saved ignore pattern #{row.id}.")


@console_action("admin.patterns.enabled", then="admin.patterns", reload_rules=True)
def pattern_enabled(request):
    row = get_row(request, IgnorePattern, GONE)
    enabled = EnabledForm.parse(request.POST).enabled
    word = "enabled" if enabled else "disabled"
    if bool(row.enabled) == enabled:
        return Done(f"Ignore pattern #{row.id} was already {word}.", changed=False)
    before = pattern_record(row)
    row.enabled = enabled
    action = "pattern.enable" if enabled else "pattern.disable"
    audit(request, action, pattern_target(row), before, pattern_record(row))
    return Done(f"Ignore pattern #{row.id} {row.pattern} is {word}.")


@console_action("admin.patterns.remove", then="admin.patterns", reload_rules=True)
def pattern_remove(request):
    row = get_row(request, IgnorePattern, "That ignore pattern was already removed.")
    target, before = pattern_target(row), pattern_record(row)
    request.dbsession.delete(row)
    audit(request, "pattern.remove", target, before, None)
    return Done(f"Removed ignore pattern {before['pattern']}.")
