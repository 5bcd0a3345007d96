"""Console area: the audit log (SPEC §7), read-only.

Every change made in the console, newest first, 50 a page: who, when (UTC),
action, target, before -> after.
"""

from sqlalchemy import func, select

from ..models import AuditLog
from .common import admin_view, html_error, utc_iso

PAGE_SIZE = 50
MAX_PAGE = 100_000


def parse_page(raw):
    if raw is None or raw == "":
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        return None
    return int(raw)


@admin_view("admin.audit", renderer="admin/audit.jinja2")
def audit_log(request):
    page = parse_page(request.GET.get("page"))
    if page is None:
        return html_error(request, 400, "Bad request", f"page must be a whole number from 1 to {MAX_PAGE}.")
    dbsession = request.dbsession
    total = dbsession.scalar(select(func.count()).select_from(AuditLog))
    entries = dbsession.scalars(
        select(AuditLog)
        .order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    pages = max(1, -(-total // PAGE_SIZE))
    return {
        "entries": [
            {
                "username": e.username,
                "when": utc_iso(e.created_at),
                "action": e.action,
                "target": e.target,
                "before": e.before,
                "after": e.after,
            }
            for e in entries
        ],
        "total": total,
        "page": page,
        "pages": pages,
        "previous": min(page - 1, pages) if page > 1 else None,
        "next": page + 1 if page < pages else None,
        "page_size": PAGE_SIZE,
    }
