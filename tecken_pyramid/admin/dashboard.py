"""The dashboard (SPEC §7): misses per day, top missing symbols, counts, health, configuration.

Definitions shown on the page:

- A day is a UTC calendar day; the window is the last 30 of them, today included.
- The chart counts, for each day, the missing-symbol rows whose ``modified_at``
  falls on it: distinct symbol/debug id/filename/code file/code id combinations
  last missed that day (a row missed again moves to the newer day). Each day is
  one index range count on ``(modified_at, id)`` with UTC bounds computed here,
  all 30 in one statement: about 60 ms at a million rows on PostgreSQL and SQLite
  alike, and the same on both (no per-dialect date functions, no session time
  zone involved).
- No "sum of counts" per day: it needs every row of the window read from the
  table (``count`` is not in the index), 2.8 s at a million rows on SQLite, and a
  row's count is its lifetime total, not that day's misses.
- Top missing symbols: the 20 rows with the largest ``count`` among rows modified
  in the window.
- Uploads per day (SPEC §9): the uploads whose ``created_at`` falls on each day
  (whatever their status) and the files they stored (``files_stored``; skipped and
  ignored members are not counted), the same 30 days, by the same UTC bounds, in one
  statement over the ``(created_at, id)`` index.
"""

import datetime
import logging

from sqlalchemy import and_, func, select
from sqlalchemy.exc import SQLAlchemyError

from .. import reports
from ..models import Upload
from ..settings import describe
from ..views.dockerflow import run_checks
from .common import admin_view

log = logging.getLogger(__name__)

T = reports.T
U = Upload.__table__
UTC = datetime.UTC
DAYS = 30
TOP = 20

# SVG geometry (user units; the viewBox scales it to the page).
BAR_WIDTH = 18
BAR_GAP = 6
PLOT_HEIGHT = 160
TOP_MARGIN = 18  # room for the count above the tallest bar
LEFT_MARGIN = 8
LABEL_HEIGHT = 44  # rotated day labels under the bars


def day_start(day, dialect_name):
    """00:00:00 UTC of ``day`` as the column compares it."""
    return reports.db_time(datetime.datetime(day.year, day.month, day.day, tzinfo=UTC), dialect_name)


def window_days(today):
    """The 30 UTC days ending today, oldest first."""
    return [today - datetime.timedelta(days=n) for n in range(DAYS - 1, -1, -1)]


def on_day(column, d, dialect_name):
    """``column`` falls on the UTC day ``d``."""
    end = d + datetime.timedelta(days=1)
    return and_(column >= day_start(d, dialect_name), column < day_start(end, dialect_name))


def misses_per_day(connection, dialect_name, today):
    """[{"day": date, "rows": int}] for the 30 UTC days ending today."""
    days = window_days(today)
    counts = [
        select(func.count())
        .select_from(T)
        .where(on_day(T.c.modified_at, d, dialect_name))
        .scalar_subquery()
        .label(f"d{index}")
        for index, d in enumerate(days)
    ]
    row = connection.execute(select(*counts)).one()
    return [{"day": d, "rows": int(n or 0)} for d, n in zip(days, row, strict=True)]


def uploads_per_day(connection, dialect_name, today):
    """[{"day": date, "uploads": int, "files": int}] for the 30 UTC days ending today."""
    days = window_days(today)
    columns = []
    for index, d in enumerate(days):
        window = on_day(U.c.created_at, d, dialect_name)
        files = func.coalesce(func.sum(U.c.files_stored), 0)
        columns.append(select(func.count()).select_from(U).where(window).scalar_subquery().label(f"u{index}"))
        columns.append(select(files).where(window).scalar_subquery().label(f"f{index}"))
    row = connection.execute(select(*columns)).one()
    return [
        {"day": d, "uploads": int(row[2 * i] or 0), "files": int(row[2 * i + 1] or 0)}
        for i, d in enumerate(days)
    ]


def chart(days, key="rows"):
    """Bar geometry for an inline SVG of ``d[key]`` per day (rendered, and escaped, by
    the template); each bar carries its day's whole record too."""
    peak = max((d[key] for d in days), default=0)
    step = BAR_WIDTH + BAR_GAP
    bars = []
    for index, d in enumerate(days):
        height = round(PLOT_HEIGHT * d[key] / peak, 1) if peak else 0
        if d[key] and height < 1:
            height = 1
        x = LEFT_MARGIN + index * step
        bars.append(
            {
                **d,
                "day": d["day"].isoformat(),
                "label": d["day"].strftime("%m-%d"),
                "value": d[key],
                "x": x,
                "y": TOP_MARGIN + PLOT_HEIGHT - height,
                "width": BAR_WIDTH,
                "height": height,
                "cx": x + BAR_WIDTH / 2,
            }
        )
    return {
        "bars": bars,
        "peak": peak,
        "width": LEFT_MARGIN * 2 + len(days) * step - BAR_GAP,
        "height": TOP_MARGIN + PLOT_HEIGHT + LABEL_HEIGHT,
        "baseline": TOP_MARGIN + PLOT_HEIGHT,
        "label_y": TOP_MARGIN + PLOT_HEIGHT + 10,
    }


def top_missing(connection, dialect_name, today):
    since = day_start(today - datetime.timedelta(days=DAYS - 1), dialect_name)
    stmt = select(*T.c).where(T.c.modified_at >= since).order_by(T.c.count.desc(), T.c.id.desc()).limit(TOP)
    return connection.execute(stmt).all()


def configuration(tecken):
    """[(field, source, value text)] for every setting but the secrets (the settings table)."""
    return describe(tecken)


def _when(value):
    value = reports.as_utc(value)
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def missing_figures(engine, today):
    """The chart, the per-day rows, the top list and the counts, in one connection."""
    dialect = engine.dialect.name
    with engine.connect() as connection:
        per_day = misses_per_day(connection, dialect, today)
        total = connection.execute(select(func.count()).select_from(T)).scalar_one()
        top = top_missing(connection, dialect, today)
    counts = {
        "total": total,
        "today": per_day[-1]["rows"],
        "yesterday": per_day[-2]["rows"],
        "window": sum(d["rows"] for d in per_day),
    }
    return {"per_day": per_day, "chart": chart(per_day), "top": top, "counts": counts}


def upload_figures(engine, today):
    with engine.connect() as connection:
        per_day = uploads_per_day(connection, engine.dialect.name, today)
    totals = {"uploads": sum(d["uploads"] for d in per_day), "files": sum(d["files"] for d in per_day)}
    return {"uploads_per_day": per_day, "uploads_chart": chart(per_day, "uploads"), "upload_totals": totals}


@admin_view("admin.dashboard", renderer="admin/dashboard.jinja2")
def dashboard(request):
    registry = request.registry
    engine = registry.dbengine
    now = datetime.datetime.now(UTC)
    today = now.date()
    context = {
        "now": now,
        "days": DAYS,
        "top_limit": TOP,
        "database_error": None,
        "chart": None,
        "per_day": [],
        "top": [],
        "counts": None,
        "when": _when,
        "missing_link": lambda **q: request.route_path("admin.missing", _query=q),
        "uploads_link": lambda day: request.route_path("admin.uploads", _query={"from": day, "to": day}),
        "uploads_chart": None,
    }
    try:
        context.update(missing_figures(engine, today))
        context.update(upload_figures(engine, today))
    except SQLAlchemyError as exc:
        log.warning("dashboard: database error: %s", type(exc).__name__)
        context["database_error"] = type(exc).__name__
    checks = run_checks(registry)
    context["checks"] = checks
    context["healthy"] = all(c["ok"] for c in checks.values())
    context["configuration"] = configuration(registry.tecken)
    return context
