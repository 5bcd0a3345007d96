"""Console area: allowed extensions (SPEC §4, §7): list, add, remove.

The table is the source of truth: a download whose filename does not end with
one of these answers 404 ``extension-not-allowed``. An empty table allows
nothing, so removing the last row needs an explicit confirmation.

After each change this process reloads its rules at once; the others pick the
change up on their next background reload (within ``TECKEN_RULES_REFRESH_SECONDS``).
"""

import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..models import AllowedExtension
from ..settings import check_extension
from .common import admin_post, admin_route, admin_view, audit, flash, see_other

MAX_EXTENSION_LENGTH = 100  # the column's size
MAX_ID = 2**31 - 1  # the id columns are 32-bit integers


def utc_text(value):
    """A stored timestamp as ``YYYY-MM-DD HH:MM:SS UTC`` (SQLite returns naive UTC)."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def row_id(request):
    """The ``{id}`` of the route as an int, or None when it cannot name a row."""
    value = int(request.matchdict["id"])  # the route only matches digits
    return value if 0 < value <= MAX_ID else None


def apply_rules_now(request):
    """Make this process apply the saved rules at once (others follow on their own)."""
    if not request.registry.rules.reload():
        flash(
            request,
            "Saved, but this process could not reload its rules just now; it keeps retrying "
            "in the background.",
            "error",
        )


def extension_record(row):
    return {"extension": row.extension, "created_by": row.created_by, "created_at": utc_text(row.created_at)}


@admin_view("admin.extensions", renderer="admin/extensions.jinja2")
def extensions_list(request):
    rows = request.dbsession.scalars(select(AllowedExtension).order_by(AllowedExtension.extension)).all()
    configured = request.registry.tecken.download_file_extensions_allowed
    return {
        "extensions": [
            {"id": row.id, "extension": row.extension, "created_by": row.created_by or "",
             "created_at": utc_text(row.created_at)}
            for row in rows
        ],
        "configured": configured,
        "setting_differs": set(configured) != {row.extension for row in rows},
        "new_extension": request.GET.get("extension", ""),
        "refresh_seconds": request.registry.tecken.rules_refresh_seconds,
    }


@admin_post("admin.extensions.add")
def extension_add(request):
    # Stored as typed (matching is case-sensitive); only surrounding whitespace,
    # which a paste easily brings along, is dropped.
    extension = request.POST.get("extension", "").strip()
    problem = check_extension(extension) if extension else "type an extension, for example .sym"
    if problem is None and len(extension) > MAX_EXTENSION_LENGTH:
        problem = f"an extension is at most {MAX_EXTENSION_LENGTH} characters"
    if problem is not None:
        flash(request, f"Not added: {problem}.", "error")
        return see_other(request, "admin.extensions", _query={"extension": extension})
    session = request.dbsession
    exists = session.scalar(select(AllowedExtension.id).where(AllowedExtension.extension == extension))
    if exists is not None:
        flash(request, f"Not added: {extension} is already allowed.", "error")
        return see_other(request, "admin.extensions")
    row = AllowedExtension(extension=extension, created_by=request.identity.username)
    session.add(row)
    audit(request, "extension.add", extension, None, {"extension": extension})
    try:
        session.commit()
    except IntegrityError:  # added by someone else in the meantime
        session.rollback()
        flash(request, f"Not added: {extension} is already allowed.", "error")
        return see_other(request, "admin.extensions")
    apply_rules_now(request)
    flash(request, f"Added {extension}: downloads of files ending with it are looked up now.")
    return see_other(request, "admin.extensions")


@admin_post("admin.extensions.remove")
def extension_remove(request):
    session = request.dbsession
    ident = row_id(request)
    row = session.get(AllowedExtension, ident) if ident is not None else None
    if row is None:
        flash(request, "That extension was already removed.", "error")
        return see_other(request, "admin.extensions")
    total = session.scalar(select(func.count()).select_from(AllowedExtension))
    if total <= 1 and request.POST.get("confirm_empty") != "yes":
        flash(
            request,
            f"Not removed: {row.extension} is the last allowed extension. Without any, every download "
            "answers 404 extension-not-allowed. Tick the confirmation box to remove it anyway.",
            "error",
        )
        return see_other(request, "admin.extensions")
    before = extension_record(row)
    session.delete(row)
    audit(request, "extension.remove", row.extension, before, None)
    session.commit()
    apply_rules_now(request)
    if total <= 1:
        message = f"Removed {row.extension}. No extension is allowed now: every download is refused."
        flash(request, message, "error")
    else:
        flash(request, f"Removed {row.extension}.")
    return see_other(request, "admin.extensions")


def includeme(config):
    admin_route(config, "admin.extensions", "/admin/extensions")
    admin_route(config, "admin.extensions.add", "/admin/extensions/add")
    admin_route(config, "admin.extensions.remove", r"/admin/extensions/{id:\d{1,18}}/remove")
