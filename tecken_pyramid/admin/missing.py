"""Console area: the missing-symbol browser and its CSV export (SPEC §6, §7).

Both pages read the same parameters and build their SQL with
:mod:`tecken_pyramid.reports` (``parse_filters`` → ``filtered_select`` /
``page_select`` / ``count_select``), the query builder of ``/missingsymbols/``,
so what the list shows, what the JSON answers and what the export contains
cannot drift.

Parameters (GET, all optional; unknown ones are ignored, the last value wins):

- ``symbol``, ``debugid``, ``filename``, ``code_file``, ``code_id``: case-sensitive
  substrings, ``%`` and ``_`` literal.
- ``modified_from`` / ``modified_to`` and ``created_from`` / ``created_to``: the
  form's date inputs, an inclusive range of UTC days (``today`` / ``yesterday``
  and the §6 date-times are accepted too). :func:`day_range` turns them into the
  §6 grammar (``>=FROM,<TO+1 day``).
- ``modified_at`` / ``created_at``: the §6 grammar itself (``>=2026-11-01,<today``),
  ANDed with the date inputs; so a ``/missingsymbols/`` query string works here.
- ``count``: ``[OP]INTEGER`` conditions (``>=10``, ``>1,<5``).
- ``sort`` (``modified_at``, ``created_at``, ``count``), ``reverse`` (``true`` =
  newest / largest first), ``page`` (list only; 100 rows a page).
"""

import datetime
import logging
import math
import re

from pyramid.response import Response
from sqlalchemy.exc import SQLAlchemyError

from .. import csvstream, reports
from .common import admin_view, html_error

log = logging.getLogger(__name__)

SUBSTRING_FIELDS = ("symbol", "debugid", "filename", "code_file", "code_id")
TIME_FIELDS = ("modified_at", "created_at")
DAY_INPUTS = {"modified_at": ("modified_from", "modified_to"), "created_at": ("created_from", "created_to")}
# Every parameter the form carries, in the order links spell them.
FORM_FIELDS = (
    *SUBSTRING_FIELDS,
    "modified_from",
    "modified_to",
    "created_from",
    "created_to",
    "modified_at",
    "created_at",
    "count",
    "sort",
    "reverse",
)
EXPORT_COLUMNS = (
    "id",
    "symbol",
    "debugid",
    "filename",
    "code_file",
    "code_id",
    "count",
    "created_at",
    "modified_at",
)
# A spreadsheet reads a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
LABELS = {
    "symbol": "Symbol",
    "debugid": "Debug ID",
    "filename": "Filename",
    "code_file": "Code file",
    "code_id": "Code ID",
    "modified_from": "Modified from",
    "modified_to": "Modified to",
    "created_from": "Created from",
    "created_to": "Created to",
    "modified_at": "Modified (conditions)",
    "created_at": "Created (conditions)",
    "count": "Count",
    "sort": "Sort",
    "reverse": "Direction",
    "page": "Page",
}


def day_range(start, end, now=None):
    """The §6 grammar for an inclusive range of days: ``(text, errors)``.

    ``start`` → ``>=START``; ``end`` → ``<END + 1 day`` when it names a whole
    day (a date, ``today``, ``yesterday``), ``<=END`` for a date-time. Each
    value is checked by the grammar's own parser, so it cannot smuggle in a
    second condition.
    """
    conditions, errors = [], {}
    for name, value, op in (("from", start, ">="), ("to", end, "<")):
        if value is None:
            errors[name] = "Invalid characters are not allowed."
            continue
        value = value.strip()
        if not value:
            continue
        try:
            when, whole_day = reports.parse_time_value(value, now)
        except reports.BadParameter as exc:
            errors[name] = str(exc)
            continue
        if op == ">=":
            conditions.append(f">={value}")
        elif whole_day:
            conditions.append("<" + (when + datetime.timedelta(days=1)).strftime("%Y-%m-%d"))
        else:
            conditions.append(f"<={value}")
    return ",".join(conditions), errors


def read_filters(request, now=None):
    """``(filters, errors, form)`` from the request's query string.

    ``form`` holds the values to show again in the form and to carry in links
    (non-empty ones only; the page is not part of it).
    """
    raw = reports.raw_params(request.environ.get("QUERY_STRING", ""))
    form = {name: raw[name] for name in FORM_FIELDS if raw.get(name)}
    passed = (*SUBSTRING_FIELDS, "count", "sort", "reverse", "page")
    params = {name: raw[name] for name in passed if name in raw}
    errors = {}
    for field, (start_name, end_name) in DAY_INPUTS.items():
        text, problems = day_range(raw.get(start_name, ""), raw.get(end_name, ""), now)
        for which, message in problems.items():
            errors.setdefault(start_name if which == "from" else end_name, []).append(message)
        if field in raw:
            direct = raw[field]
            params[field] = direct if direct is None or not text else ",".join(p for p in (direct, text) if p)
        elif text:
            params[field] = text
    filters, problems = reports.parse_filters(
        params, now, substring_fields=SUBSTRING_FIELDS, time_fields=TIME_FIELDS
    )
    for name, messages in problems.items():
        errors.setdefault(name, []).extend(messages)
    return filters, errors, form


def error_list(errors):
    return [(LABELS.get(name, name), message) for name, messages in errors.items() for message in messages]


def database_unavailable(request):
    return html_error(request, 503, "Database unavailable", "The missing-symbol log cannot be read now.")


def date_input_type(value):
    """``date`` for the picker, ``text`` for a value it cannot show (``today``)."""
    return "date" if not value or re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else "text"


def _when(value):
    value = reports.as_utc(value)
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def page_links(request, form, page, pages, sort, descending):
    """The export, sort and paging links of the list, each carrying the filters."""

    def page_link(number):
        return request.route_path("admin.missing", _query={**form, "page": str(number)})

    def sort_link(column):
        # Clicking the current sort column flips its direction; another column
        # starts with the largest / newest first.
        reverse = "false" if (column == sort and descending) else "true"
        return request.route_path("admin.missing", _query={**form, "sort": column, "reverse": reverse})

    links = {
        "export": request.route_path("admin.missing_csv", _query=form),
        "sort": {column: sort_link(column) for column in reports.SORTS},
    }
    if page > 1:
        links["first"] = page_link(1)
        links["prev"] = page_link(min(page - 1, pages))
    if page < pages:
        links["next"] = page_link(page + 1)
        links["last"] = page_link(pages)
    return links


@admin_view("admin.missing", renderer="admin/missing.jinja2")
def missing_symbols(request):
    filters, errors, form = read_filters(request)
    sort, descending = filters.order
    context = {
        "form": form,
        "errors": error_list(errors),
        "labels": LABELS,
        "sort": sort,
        "descending": descending,
        "rows": [],
        "total": None,
        "page": filters.page,
        "pages": 1,
        "batch_size": reports.BATCH_SIZE,
        "links": {},
        "when": _when,
        "date_input_type": date_input_type,
    }
    if errors:
        return context
    try:
        total, rows = reports.fetch_page(request.registry.dbengine, filters)
    except SQLAlchemyError as exc:
        log.warning("missing-symbol browser: database error: %s", type(exc).__name__)
        return database_unavailable(request)
    pages = min(max(1, math.ceil(total / reports.BATCH_SIZE)), reports.MAX_PAGE)
    links = page_links(request, form, filters.page, pages, sort, descending)
    context.update(rows=rows, total=total, pages=pages, links=links)
    return context


def neutralise(value):
    """A CSV cell a spreadsheet will not run: one ``'`` before a formula start."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def export_row(row):
    record = reports.record(row)
    return [neutralise(record[name]) for name in EXPORT_COLUMNS]


@admin_view("admin.missing_csv")
def missing_symbols_csv(request):
    filters, errors, _form = read_filters(request)
    if errors:
        message = "; ".join(f"{label}: {text}" for label, text in error_list(errors))
        return html_error(request, 400, "Bad filter", message)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    response = Response(content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="missing-symbols-export-{stamp}.csv"'
    response.headers["Cache-Control"] = "no-store"
    if request.method == "HEAD":
        return response
    engine = request.registry.dbengine
    statement = reports.ordered(reports.filtered_select(filters, engine.dialect.name), filters)
    try:
        connection, result = csvstream.start_query(engine, statement)
    except SQLAlchemyError as exc:
        log.warning("missing-symbol export: database error: %s", type(exc).__name__)
        return database_unavailable(request)
    response.app_iter = csvstream.CsvStream(connection, result, EXPORT_COLUMNS, export_row)
    return response
