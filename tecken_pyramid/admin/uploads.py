"""Console area: uploads (SPEC §9 "Console"), read-only.

The list, newest first, 100 a page, paged like the missing symbols. Parameters (GET,
all optional; the last value wins; unknown ones are ignored):

- ``user``: a username (any case);
- ``from`` / ``to``: an inclusive range of UTC days of ``created_at`` (the date
  inputs; ``today``, ``yesterday`` and §6 date-times as on the missing-symbols page);
- ``status``: ``pending``, ``complete`` or ``failed`` (empty: all);
- ``try``: ``yes``, ``no`` or ``all`` (empty: all);
- ``page``: 1 to 100000.

A bad value answers the page with the form and what is wrong, status 400, and runs
no query. Each upload's page shows its fields and what it did with each member, 500
members a page.
"""

import logging
import math
import operator
import re

from sqlalchemy import and_, func, select
from sqlalchemy.exc import SQLAlchemyError

from .. import reports
from ..models import ApiToken, Upload, UploadFile, User
from ..rawrequest import query_text
from ..users import same_name
from .common import admin_view, html_error
from .missing import date_input_type, day_range

log = logging.getLogger(__name__)

PAGE_SIZE = 100
FILE_PAGE_SIZE = 500
MAX_PAGE = 100_000
STATUSES = ("pending", "complete", "failed")
STATUS_CHOICES = [(s, s.capitalize()) for s in STATUSES]
TRY_CHOICES = {"": None, "all": None, "yes": True, "no": False}
FORM_FIELDS = ("user", "from", "to", "status", "try")
LABELS = {"user": "User", "from": "From", "to": "To", "status": "Status", "try": "Try", "page": "Page"}
OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "=": operator.eq}


def when(value):
    value = reports.as_utc(value)
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def read_page(raw, errors):
    """The ``page`` parameter (1 when absent); a bad one goes into ``errors``."""
    value = raw.get("page", "")
    if value is None:
        errors["page"] = "Invalid characters are not allowed."
    elif value and not (re.fullmatch(r"[0-9]{1,7}", value) and 1 <= int(value) <= MAX_PAGE):
        errors["page"] = f"Invalid page: expected a whole number from 1 to {MAX_PAGE}"
    else:
        return int(value or 1)
    return 1


def read_filters(request):
    """``(conditions, page, errors, form)`` from the raw query string."""
    raw = query_text(request.environ.get("QUERY_STRING", ""))
    errors = {
        name: "Invalid characters are not allowed." for name in FORM_FIELDS if raw.get(name, "") is None
    }
    form = {name: raw[name].strip() for name in FORM_FIELDS if raw.get(name)}
    conditions = []
    if form.get("user") and "user" not in errors:
        user = same_name(request.dbsession, form["user"])
        if user is None:
            errors["user"] = f"No user named {form['user']!r}."
        else:
            form["user"] = user.username
            conditions.append(Upload.user_id == user.id)
    if "from" not in errors and "to" not in errors:
        text, problems = day_range(form.get("from", ""), form.get("to", ""))
        errors.update(problems)
        if text and not problems:
            for op, value in reports.parse_time_conditions(text):
                column_value = reports.db_time(value, request.registry.dbengine.dialect.name)
                conditions.append(OPS[op](Upload.created_at, column_value))
    status = form.get("status", "")
    if status and status not in STATUSES:
        errors["status"] = f"Invalid status {status!r}: expected one of {', '.join(STATUSES)}"
    elif status:
        conditions.append(Upload.status == status)
    try_value = form.get("try", "")
    if "try" not in errors and try_value not in TRY_CHOICES:
        errors["try"] = f"Invalid try {try_value!r}: expected yes, no or all"
    elif TRY_CHOICES.get(try_value) is not None:
        conditions.append(Upload.try_symbols.is_(TRY_CHOICES[try_value]))
    page = read_page(raw, errors)
    return conditions, page, errors, form


def fetch(dbsession, conditions, page):
    """(total, rows of the page): the page's ids first, then only those rows, by the
    ``(created_at, id)`` index (as the missing-symbol list does)."""
    where = and_(*conditions) if conditions else None
    count = select(func.count()).select_from(Upload)
    total = dbsession.scalar(count.where(where) if where is not None else count)
    if (page - 1) * PAGE_SIZE >= total:
        return total, []
    order = (Upload.created_at.desc(), Upload.id.desc())
    ids = select(Upload.id).order_by(*order).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    ids = (ids.where(where) if where is not None else ids).subquery("page_ids")
    query = (
        select(Upload, User.username, ApiToken.hint)
        .join(ids, ids.c.id == Upload.id)
        .join(User, User.id == Upload.user_id)
        .outerjoin(ApiToken, ApiToken.id == Upload.token_id)
        .order_by(*order)
    )
    return total, dbsession.execute(query).all()


def upload_row(upload, username, hint):
    return {
        "id": upload.id,
        "username": username,
        "user_id": upload.user_id,
        "token": f"{hint}…" if hint else "",
        "filename": upload.filename,
        "size": upload.size,
        "sha256": upload.sha256,
        "target": upload.target,
        "try_symbols": upload.try_symbols,
        "status": upload.status,
        "error": upload.error,
        "download_url": upload.download_url,
        "redirect_urls": upload.redirect_urls,
        "files_stored": upload.files_stored,
        "files_skipped": upload.files_skipped,
        "files_ignored": upload.files_ignored,
        "bytes_stored": upload.bytes_stored,
        "created_at": when(upload.created_at),
        "updated_at": when(upload.updated_at),
        "completed_at": when(upload.completed_at),
    }


def page_links(request, route_name, query, page, pages, **route_kw):
    def link(number):
        return request.route_path(route_name, _query={**query, "page": str(number)}, **route_kw)

    links = {}
    if page > 1:
        links.update(first=link(1), prev=link(min(page - 1, pages)))
    if page < pages:
        links.update(next=link(page + 1), last=link(pages))
    return links


def database_unavailable(request, exc):
    log.warning("uploads page: database error: %s", type(exc).__name__)
    return html_error(request, 503, "Database unavailable", "The uploads cannot be read now.")


def user_choices(dbsession):
    return [u.username for u in dbsession.scalars(select(User).order_by(func.lower(User.username), User.id))]


@admin_view("admin.uploads", renderer="admin/uploads.jinja2")
def uploads_list(request):
    conditions, page, errors, form = read_filters(request)
    context = {"form": form, "errors": [(LABELS[k], v) for k, v in errors.items()], "rows": [], "links": {}}
    context.update(
        total=None, page=page, pages=1, status_choices=STATUS_CHOICES, date_input_type=date_input_type
    )
    try:
        context["usernames"] = user_choices(request.dbsession)
        if errors:
            request.response.status = 400
            return context
        total, rows = fetch(request.dbsession, conditions, page)
    except SQLAlchemyError as exc:
        return database_unavailable(request, exc)
    pages = min(max(1, math.ceil(total / PAGE_SIZE)), MAX_PAGE)
    links = page_links(request, "admin.uploads", form, page, pages)
    return dict(context, rows=[upload_row(*r) for r in rows], total=total, pages=pages, links=links)


def upload_files(dbsession, upload_id, page):
    """(counts by status, the page's members by key)."""
    by_status = select(UploadFile.status, func.count()).where(UploadFile.upload_id == upload_id)
    counts = dict(dbsession.execute(by_status.group_by(UploadFile.status)).all())
    files = dbsession.scalars(
        select(UploadFile)
        .where(UploadFile.upload_id == upload_id)
        .order_by(UploadFile.key, UploadFile.id)
        .limit(FILE_PAGE_SIZE)
        .offset((page - 1) * FILE_PAGE_SIZE)
    ).all()
    return counts, [{"key": f.key, "status": f.status, "size": f.size, "sha256": f.sha256} for f in files]


@admin_view("admin.upload", renderer="admin/upload_detail.jinja2")
def upload_detail(request):
    errors = {}
    page = read_page(query_text(request.environ.get("QUERY_STRING", "")), errors)
    if errors:
        return html_error(request, 400, "Bad request", errors["page"])
    query = select(Upload, User.username, ApiToken.hint).join(User, User.id == Upload.user_id)
    query = query.outerjoin(ApiToken, ApiToken.id == Upload.token_id)
    try:
        found = request.dbsession.execute(query.where(Upload.id == int(request.matchdict["id"]))).first()
        if found is None:
            return html_error(request, 404, "No such upload", "That upload does not exist (any more).")
        counts, files = upload_files(request.dbsession, found.Upload.id, page)
    except SQLAlchemyError as exc:
        return database_unavailable(request, exc)
    pages = max(1, math.ceil(sum(counts.values()) / FILE_PAGE_SIZE))
    links = page_links(request, "admin.upload", {}, page, pages, id=found.Upload.id)
    context = {"upload": upload_row(*found), "counts": counts, "files": files, "links": links}
    return dict(context, page=page, pages=pages, page_size=FILE_PAGE_SIZE)
