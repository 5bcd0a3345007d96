"""Console area: allowed extensions (SPEC §4, §7): list, add, remove.

The table is the source of truth: a download whose filename does not end with
one of these answers 404 ``extension-not-allowed``. An empty table allows
nothing, so removing the last row needs an explicit confirmation.

After each change this process reloads its rules at once; the others pick the
change up on their next background reload (within ``TECKEN_RULES_REFRESH_SECONDS``).
"""

from sqlalchemy import func, select

from ..models import AllowedExtension
from .common import Done, Refused, admin_view, audit, console_action, flush_or_refuse, get_row, utc_text
from .forms import ExtensionForm, RemoveExtensionForm


def extension_record(row):
    return {"extension": row.extension, "created_by": row.created_by, "created_at": utc_text(row.created_at)}


@admin_view("admin.extensions", renderer="admin/extensions.jinja2")
def extensions_list(request):
    rows = request.dbsession.scalars(select(AllowedExtension).order_by(AllowedExtension.extension)).all()
    configured = request.registry.tecken.download_file_extensions_allowed
    return {
        "extensions": [
            {
                "id": row.id,
                "extension": row.extension,
                "created_by": row.created_by or "",
                "created_at": utc_text(row.created_at),
            }
            for row in rows
        ],
        "configured": configured,
        "setting_differs": set(configured) != {row.extension for row in rows},
        "new_extension": request.GET.get("extension", ""),
        "refresh_seconds": request.registry.tecken.rules_refresh_seconds,
    }


@console_action("admin.extensions.add", then="admin.extensions", reload_rules=True)
def extension_add(request):
    form = ExtensionForm.parse(request.POST)
    extension = form.extension
    problem = form.problem()
    if problem is not None:
        raise Refused(f"Not added: {problem}.", query={"extension": extension})
    session = request.dbsession
    exists = session.scalar(select(AllowedExtension.id).where(AllowedExtension.extension == extension))
    if exists is not None:
        raise Refused(f"Not added: {extension} is already allowed.")
    session.add(AllowedExtension(extension=extension, created_by=request.identity.username))
    audit(request, "extension.add", extension, None, {"extension": extension})
    # Added by someone else in the meantime: the unique index says so.
    flush_or_refuse(request, f"Not added: {extension} is already allowed.")
    return Done(f"Added {extension}: downloads of files ending with it are looked up now.")


@console_action("admin.extensions.remove", then="admin.extensions", reload_rules=True)
def extension_remove(request):
    session = request.dbsession
    row = get_row(request, AllowedExtension, "That extension was already removed.")
    total = session.scalar(select(func.count()).select_from(AllowedExtension))
    if total <= 1 and not RemoveExtensionForm.parse(request.POST).confirm_empty:
        raise Refused(
            f"Not removed: {row.extension} is the last allowed extension. Without any, every download "
            "answers 404 extension-not-allowed. Tick the confirmation box to remove it anyway."
        )
    before = extension_record(row)
    session.delete(row)
    audit(request, "extension.remove", row.extension, before, None)
    if total <= 1:
        message = f"Removed {row.extension}. No extension is allowed now: every download is refused."
        return Done(message, "error")
    return Done(f"Removed {row.extension}.")
