"""``/missingsymbols.csv`` and ``/missingsymbols/`` (SPEC §6): public reports."""

import datetime
import json
import logging

from pyramid.response import Response
from sqlalchemy.exc import SQLAlchemyError

from .. import csvstream, reports
from .errors import json_response

log = logging.getLogger(__name__)

CSV_HEADER = ("debug_file", "debug_id", "code_file", "code_id")


def database_unavailable(exc):
    log.warning("report unavailable, database error: %s", type(exc).__name__)
    return json_response(
        503, {"error": "Database unavailable"}, [("Retry-After", "5"), ("Cache-Control", "no-store")]
    )


def missing_symbols_csv(request):
    registry = request.registry
    yesterday = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    response = Response(content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="missing-symbols-{yesterday}.csv"'
    response.headers["Cache-Control"] = "max-age=0"
    if request.method == "HEAD":
        return response
    engine = registry.dbengine
    try:
        connection, result = csvstream.start_query(engine, reports.csv_report_select(engine.dialect.name))
    except SQLAlchemyError as exc:
        return database_unavailable(exc)
    response.app_iter = csvstream.CsvStream(connection, result, CSV_HEADER, _report_cells)
    return response


def _report_cells(row):
    # Values exactly as stored (scripts read this file); NULL is an empty field.
    return ["" if value is None else value for value in row]


def missing_symbols_json(request):
    engine = request.registry.dbengine
    params = reports.raw_params(request.environ.get("QUERY_STRING", ""))
    filters, errors = reports.parse_filters(params)
    if errors:
        return json_response(400, {"errors": errors})
    try:
        total, rows = reports.fetch_page(engine, filters)
    except SQLAlchemyError as exc:
        return database_unavailable(exc)
    sort, descending = filters.order
    payload = {
        "total_count": total,
        "page": filters.page,
        "batch_size": reports.BATCH_SIZE,
        "order_by": {"sort": sort, "reverse": descending},
        "records": [reports.record(row) for row in rows],
    }
    body = json.dumps(payload).encode("ascii")
    return Response(
        body=body, headerlist=[("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )


def includeme(config):
    config.add_public_view("missing_symbols_csv", missing_symbols_csv)
    config.add_public_view("missing_symbols_json", missing_symbols_json)
