"""The missing-symbol reports at a million rows, on PostgreSQL and on SQLite.

    .venv/bin/python bench/missing_symbols.py [--rows 1000000] [--runs 20] [--db postgresql,sqlite]

For each database it makes a throw-away, migrated database (PostgreSQL:
``CREATE DATABASE tecken_bench_<random>`` on the server at 127.0.0.1:5432 or
``--pg-url``; SQLite: a temporary file), seeds ``--rows`` realistic rows (the same
rows on both, from a fixed random seed), runs ANALYZE, then measures through the
real code paths:

* listings: ``tecken_pyramid.reports.page_select`` and ``count_select`` executed on
  an engine from ``tecken_pyramid.db.make_engine``, and the real view
  ``GET /missingsymbols/`` through ``webtest.TestApp`` around ``make_app`` —
  first page, substring filters, a date/count filter, the three sorts, deep pages;
* ``GET /missingsymbols.csv`` streamed through the real view in a fresh child
  process: rows/s and peak RSS growth, once on the realistic 24 h window and once
  after re-dating every row into the window, beside a buffered fetch of the same
  rows as a contrast (the streamed figure must not grow with the row count).

It drops the PostgreSQL database and deletes the SQLite file at the end.
"""

import argparse
import datetime
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import PYTHON, ROOT, fmt_ms, migrate, percentile, table  # noqa: E402

UTC = datetime.UTC
DEFAULT_PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SEED = 20261128

WINDOWS_MODULES = [
    "xul",
    "ntdll",
    "kernel32",
    "kernelbase",
    "mozglue",
    "nss3",
    "user32",
    "d3d11",
    "combase",
    "ucrtbase",
    "msvcp140",
    "vcruntime140",
    "gdi32",
    "dxgi",
    "nvwgf2umx",
    "igd10iumd64",
    "atidxx64",
    "win32u",
    "rpcrt4",
    "ole32",
    "shell32",
    "wininet",
    "mf",
    "mfplat",
    "xpcom",
    "lgpllibs",
    "freebl3",
    "softokn3",
    "firefox",
]


def log(message):
    print(message, file=sys.stderr, flush=True)


# -- data ---------------------------------------------------------------------------------------------
def generate_rows(n, now, seed=SEED):
    """Yield n realistic rows.

    Each is (hash, symbol, debugid, filename, code_file, code_id, count, created, modified);

    ~45 % Windows (``xul.pdb`` and friends, a long tail of ``module{n}.pdb``), ~45 %
    Linux (``libfoo{n}.so``), ~10 % macOS; 33-character hex debug ids; about a third
    of code_file/code_id NULL; counts 1..50 skewed to 1; modified_at over 30 days at
    minute resolution (many rows share a timestamp, as a batch flush does).
    """
    rng = random.Random(seed)
    rand, randrange, getrandbits = rng.random, rng.randrange, rng.getrandbits
    base = now.replace(second=0, microsecond=0)
    minutes = 30 * 24 * 60
    for i in range(n):
        debugid = f"{getrandbits(128):032X}{randrange(16):X}"
        kind = rand()
        if kind < 0.45:
            if rand() < 0.5:
                name = WINDOWS_MODULES[randrange(len(WINDOWS_MODULES))]
            else:
                name = f"module{randrange(20000)}"
            symbol, filename = f"{name}.pdb", f"{name}.sym"
            if rand() < 0.7:
                code_file, code_id = f"{name}.dll", f"{getrandbits(64):016X}"
            else:
                code_file = code_id = None
        elif kind < 0.9:
            symbol = f"libfoo{randrange(50000)}.so"
            filename = f"{symbol}.sym"
            if rand() < 0.6:
                code_file, code_id = symbol, f"{getrandbits(160):040x}"
            else:
                code_file = code_id = None
        else:
            symbol = "XUL" if rand() < 0.3 else f"libbar{randrange(5000)}.dylib"
            filename = f"{symbol}.sym"
            code_file, code_id = (symbol, f"{getrandbits(128):032X}") if rand() < 0.5 else (None, None)
        count = 1 + int(rand() ** 4 * 50)
        if count > 50:
            count = 50
        modified = base - datetime.timedelta(minutes=randrange(minutes))
        created = modified - datetime.timedelta(seconds=int(rand() ** 2 * 20 * 86400))
        yield (
            f"{i:016x}{getrandbits(192):048x}",
            symbol,
            debugid,
            filename,
            code_file,
            code_id,
            count,
            created,
            modified,
        )


# -- databases ------------------------------------------------------------------------------------------
class BenchDatabase:
    def __init__(self, kind, pg_admin):
        self.kind = kind
        self.tmp = tempfile.mkdtemp(prefix="tecken-bench-ms-")
        self.name = None
        if kind == "sqlite":
            self.path = os.path.join(self.tmp, "tecken.sqlite3")
            self.url = f"sqlite:///{self.path}"
        else:
            import psycopg

            self.admin_dsn = pg_admin.replace("postgresql+psycopg://", "postgresql://")
            self.name = f"tecken_bench_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
            self.url = pg_admin.rsplit("/", 1)[0] + "/" + self.name
            self.dsn = self.url.replace("postgresql+psycopg://", "postgresql://")

    def migrate(self):
        migrate(self.url)

    # -- seeding ----------------------------------------------------------------------------
    COLUMNS = (
        "hash",
        "symbol",
        "debugid",
        "filename",
        "code_file",
        "code_id",
        "count",
        "created_at",
        "modified_at",
    )

    def seed(self, n, now):
        """Returns {"load": s, "index": s, "analyze": s}."""
        return self._seed_pg(n, now) if self.kind == "postgresql" else self._seed_sqlite(n, now)

    def _seed_pg(self, n, now):
        import psycopg

        times = {}
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            # Secondary indexes (the migration's) are dropped during the COPY and rebuilt
            # with their exact definitions: a bulk build is much faster than n inserts.
            indexes = conn.execute(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i "
                "JOIN pg_class c ON c.relname = i.indexname JOIN pg_index x ON x.indexrelid = c.oid "
                "WHERE i.tablename = 'missing_symbol' AND NOT x.indisprimary AND NOT x.indisunique"
            ).fetchall()
            for name, _ in indexes:
                conn.execute(f'DROP INDEX "{name}"')
            t0 = time.perf_counter()
            with conn.cursor() as cur:
                with cur.copy(f"COPY missing_symbol ({', '.join(self.COLUMNS)}) FROM STDIN") as copy:
                    for row in generate_rows(n, now):
                        copy.write_row(row)
            times["load"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            conn.execute("SET maintenance_work_mem = '256MB'")
            for _, definition in indexes:
                conn.execute(definition)
            times["index"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            # VACUUM sets the visibility map as autovacuum would on a settled table.
            conn.execute("VACUUM ANALYZE missing_symbol")
            times["analyze"] = time.perf_counter() - t0
        return times

    @staticmethod
    def _sqlite_time(value):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DateTime format

    def _seed_sqlite(self, n, now):
        import sqlite3

        times = {}
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA cache_size=-262144")
            t0 = time.perf_counter()
            sql = (
                f"INSERT INTO missing_symbol ({', '.join(self.COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(self.COLUMNS))})"
            )
            batch = []
            conv = self._sqlite_time
            conn.execute("BEGIN")
            for row in generate_rows(n, now):
                batch.append(row[:7] + (conv(row[7]), conv(row[8])))
                if len(batch) >= 50_000:
                    conn.executemany(sql, batch)
                    batch.clear()
            if batch:
                conn.executemany(sql, batch)
            conn.execute("COMMIT")
            times["load"] = time.perf_counter() - t0
            times["index"] = 0.0  # the migration's indexes were kept (SQLite has only modified_at)
            t0 = time.perf_counter()
            conn.execute("ANALYZE")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            times["analyze"] = time.perf_counter() - t0
        finally:
            conn.close()
        return times

    def redate_into_window(self, now):
        """Move every row's modified_at into the last 23 hours (CSV-specific pass)."""
        t0 = time.perf_counter()
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(self.dsn, autocommit=True) as conn:
                # The trigram indexes serve only the listing filters, measured already; dropping
                # them first keeps this million-row UPDATE short. The CSV query does not use them.
                for (name,) in conn.execute(
                    "SELECT indexname FROM pg_indexes "
                    "WHERE tablename = 'missing_symbol' AND indexname LIKE '%trgm'"
                ).fetchall():
                    conn.execute(f'DROP INDEX "{name}"')
                conn.execute(
                    "UPDATE missing_symbol SET modified_at = %s - (id %% 1380) * interval '1 minute'", (now,)
                )
                conn.execute("VACUUM ANALYZE missing_symbol")
        else:
            import sqlite3

            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("BEGIN")
                conn.execute(
                    "UPDATE missing_symbol SET modified_at = strftime('%Y-%m-%d %H:%M:%f000', ?, "
                    "'-' || (id % 1380) || ' minutes')",
                    (now.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S"),),
                )
                conn.execute("COMMIT")
                conn.execute("ANALYZE")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
        return time.perf_counter() - t0

    def size_text(self):
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(self.dsn) as conn:
                table_, total = conn.execute(
                    "SELECT pg_size_pretty(pg_table_size('missing_symbol')), "
                    "pg_size_pretty(pg_total_relation_size('missing_symbol'))"
                ).fetchone()
            return f"table {table_}, with indexes {total}"
        return f"file {os.path.getsize(self.path) / 2**20:.0f} MiB"

    def explain(self, sql, params):
        import psycopg

        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF, SUMMARY ON) " + sql, params
            ).fetchall()
        return "\n".join("      " + r[0] for r in rows)

    def drop(self):
        if self.kind == "postgresql" and self.name:
            import psycopg

            with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.name = None
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- the app ----------------------------------------------------------------------------------------------
def app_settings(url, symbols_dir):
    from tecken_pyramid import settings as settings_mod

    ini = {
        "tecken.environment": "development",
        "tecken.symbol_urls": symbols_dir,
        "tecken.symbol_file_prefix": "v1",
        "sqlalchemy.url": url,
        "jinja2.directories": os.path.join(ROOT, "templates"),
    }
    return settings_mod.load(ini, environ={}, here=ROOT), ini


def build_app(url, symbols_dir):
    from tecken_pyramid import make_app

    tecken, ini = app_settings(url, symbols_dir)
    return make_app(tecken, ini, start_background=False)


# -- timing -------------------------------------------------------------------------------------------------
def timed_runs(fn, runs, budget, min_runs=5, warmup=1):
    """Up to ``runs`` timings of fn(), fewer (but at least min_runs) past ``budget`` seconds."""
    for _ in range(warmup):
        fn()
    times = []
    spent_from = time.perf_counter()
    while len(times) < runs:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= min_runs and time.perf_counter() - spent_from > budget:
            break
    return times


def listing_cases(rows, now):
    last_page = max(1, (rows + 99) // 100)
    three_days = (now - datetime.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    return [
        ("(i) first page, default order", ""),
        ("(ii) symbol substring", "symbol=libfoo12"),
        ("(ii) filename substring", "filename=ntdll"),
        ("(ii) debugid substring (rare)", "debugid=ABCDE"),
        ("(ii) modified_at + count range", f"modified_at=>={three_days}&count=>=10"),
        ("(ii) symbol + modified_at today", "symbol=xul.pdb&modified_at=today"),
        ("(ii) sort=count reverse", "sort=count&reverse=true"),
        ("(ii) sort=created_at", "sort=created_at"),
        ("(iii) page 50", "page=50"),
        ("(iii) page 5000", "page=5000"),
        (f"(iii) last page ({last_page})", f"page={last_page}"),
        ("(iii) page 100000 (past the end)", "page=100000"),
        ("(iii) filtered, page 100", "symbol=libfoo1&page=100"),
    ]


def measure_listings(db, runs, budget, explain):
    import webtest

    from tecken_pyramid import reports, shutdown
    from tecken_pyramid.db import make_engine

    now = datetime.datetime.now(UTC)
    engine = make_engine(db.url)
    dialect = engine.dialect.name
    symbols_dir = os.path.join(db.tmp, "symbols")
    os.makedirs(os.path.join(symbols_dir, "try"), exist_ok=True)
    app = build_app(db.url, symbols_dir)
    testapp = webtest.TestApp(app, extra_environ={"HTTP_HOST": "symbols.example.com"})
    results = []
    try:
        with engine.connect() as conn:
            for label, query in listing_cases(db.rows, now):
                params = reports.raw_params(query)
                filters, errors = reports.parse_filters(params)
                assert not errors, (query, errors)
                page_stmt = reports.page_select(filters, dialect)
                count_stmt = reports.count_select(filters, dialect)
                nrows = len(conn.execute(page_stmt).all())
                total = conn.execute(count_stmt).scalar_one()
                page_times = timed_runs(lambda stmt=page_stmt: conn.execute(stmt).all(), runs, budget)
                count_times = timed_runs(
                    lambda stmt=count_stmt: conn.execute(stmt).scalar_one(), runs, budget
                )
                holder = {}

                def view(query=query, holder=holder):
                    holder["r"] = testapp.get("/missingsymbols/" + (f"?{query}" if query else ""), status=200)

                view_times = timed_runs(view, runs, budget)
                body = holder["r"].json
                assert body["total_count"] == total and len(body["records"]) == nrows, (
                    label,
                    body["total_count"],
                )
                results.append(
                    {
                        "label": label,
                        "query": query or "(none)",
                        "total": total,
                        "rows": nrows,
                        "view": view_times,
                        "page": page_times,
                        "count": count_times,
                    }
                )
                log(
                    f"  {label}: view p50 {fmt_ms(percentile(view_times, 50))}, "
                    f"page p50 {fmt_ms(percentile(page_times, 50))}, "
                    f"count p50 {fmt_ms(percentile(count_times, 50))}"
                )
                if explain and dialect == "postgresql":
                    for what, stmt in (("page", page_stmt), ("count", count_stmt)):
                        compiled = stmt.compile(dialect=engine.dialect)
                        sql = str(compiled)
                        log(f"    EXPLAIN {what}:\n" + db.explain(sql, compiled.params))
    finally:
        shutdown(app.registry, flush_seconds=0.5)
        engine.dispose()
    return results


# -- CSV, in a fresh child process ------------------------------------------------------------------------
def csv_child(url, mode):
    """Stream /missingsymbols.csv through the real view; print a JSON line of figures."""
    import webob

    from tecken_pyramid import reports, shutdown

    symbols_dir = tempfile.mkdtemp(prefix="tecken-bench-csv-")
    app = build_app(url, symbols_dir)

    def get(path, method="GET"):
        req = webob.Request.blank(path, method=method, environ={"HTTP_HOST": "symbols.example.com"})
        status = {}

        def start_response(s, headers, exc_info=None):
            status["status"] = s
            status["headers"] = headers

        return req.environ, start_response, status

    # Warm up: imports, the engine's first connection, a listing page.
    for path, method in (("/missingsymbols.csv", "HEAD"), ("/missingsymbols/", "GET")):
        environ, start_response, _ = get(path, method)
        it = app(environ, start_response)
        for _ in it:
            pass
        if hasattr(it, "close"):
            it.close()

    def maxrss_kib():
        # VmHWM is this process's own peak RSS. ru_maxrss is not usable here: Linux carries
        # the parent's high-water mark over fork and exec into the child.
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    before = maxrss_kib()
    t0 = time.perf_counter()
    nbytes = nlines = 0
    if mode == "stream":
        environ, start_response, status = get("/missingsymbols.csv")
        it = app(environ, start_response)
        try:
            for chunk in it:
                nbytes += len(chunk)
                nlines += chunk.count(b"\r\n")
        finally:
            if hasattr(it, "close"):
                it.close()
        assert status["status"].startswith("200"), status
        nrows = nlines - 1  # header
    else:
        # Contrast: the same query, rows fetched into a list and written to one string,
        # as a non-streaming view would.
        import csv

        engine = app.registry.dbengine
        with engine.connect() as conn:
            rows = conn.execute(reports.csv_report_select(engine.dialect.name)).all()
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(("debug_file", "debug_id", "code_file", "code_id"))
        for row in rows:
            writer.writerow("" if v is None else v for v in row)
        data = buffer.getvalue().encode("utf-8")
        nbytes, nrows = len(data), len(rows)
    seconds = time.perf_counter() - t0
    after = maxrss_kib()
    shutdown(app.registry, flush_seconds=0.5)
    shutil.rmtree(symbols_dir, ignore_errors=True)
    print(
        json.dumps(
            {
                "rows": nrows,
                "bytes": nbytes,
                "seconds": seconds,
                "rss_before_kib": before,
                "rss_growth_kib": after - before,
            }
        )
    )


def run_csv_child(url, mode):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TECKEN_")}
    out = subprocess.run(
        [PYTHON, os.path.abspath(__file__), "--csv-child", url, "--csv-mode", mode],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"CSV child failed: {out.stderr.strip()[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- main ---------------------------------------------------------------------------------------------------
def bench_database(kind, args):
    log(f"== {kind}: creating and migrating a throw-away database")
    db = BenchDatabase(kind, args.pg_url)
    db.rows = args.rows
    out = {"kind": kind}
    try:
        t0 = time.perf_counter()
        db.migrate()
        out["migrate"] = time.perf_counter() - t0
        now = datetime.datetime.now(UTC)
        log(f"== {kind}: seeding {args.rows:,} rows")
        out["seed"] = db.seed(args.rows, now)
        out["size"] = db.size_text()
        log(f"   seeded: {out['seed']}, {out['size']}")
        log(f"== {kind}: listings ({args.runs} runs each, {args.budget:.0f} s budget per measurement)")
        out["listings"] = measure_listings(db, args.runs, args.budget, args.explain)
        log(f"== {kind}: CSV on the realistic 24 h window")
        out["csv"] = [("realistic 24 h window", "stream", run_csv_child(db.url, "stream"))]
        log(f"== {kind}: re-dating every row into the 24 h window")
        out["redate"] = db.redate_into_window(datetime.datetime.now(UTC))
        out["csv"].append(("every row in the window", "stream", run_csv_child(db.url, "stream")))
        out["csv"].append(
            ("every row in the window", "buffered (contrast)", run_csv_child(db.url, "buffered"))
        )
    finally:
        db.drop()
    return out


def report(all_results, args, elapsed):
    print()
    print(
        f"Missing-symbol reports, {args.rows:,} seeded rows; p50/p95 over up to {args.runs} runs "
        f"(fewer when one measurement passes {args.budget:.0f} s; n = runs taken for the view)."
    )
    print(
        "view = GET /missingsymbols/ through webtest (count + page + JSON); page = page_select; "
        "count = count_select (total_count alone)."
    )
    for res in all_results:
        seed = res["seed"]
        print()
        print(
            f"--- {res['kind']}: migrate {res['migrate']:.1f} s; seed: load {seed['load']:.1f} s, "
            f"index build {seed['index']:.1f} s, analyze {seed['analyze']:.1f} s; {res['size']}"
        )
        rows = []
        for r in res["listings"]:
            rows.append(
                (
                    r["label"],
                    r["query"],
                    f"{r['total']:,}",
                    r["rows"],
                    fmt_ms(percentile(r["view"], 50)),
                    fmt_ms(percentile(r["view"], 95)),
                    fmt_ms(percentile(r["page"], 50)),
                    fmt_ms(percentile(r["page"], 95)),
                    fmt_ms(percentile(r["count"], 50)),
                    fmt_ms(percentile(r["count"], 95)),
                    len(r["view"]),
                )
            )
        print(
            table(
                [
                    "case",
                    "query",
                    "total_count",
                    "rows",
                    "view p50",
                    "view p95",
                    "page p50",
                    "page p95",
                    "count p50",
                    "count p95",
                    "n",
                ],
                rows,
                ["<", "<", ">", ">", ">", ">", ">", ">", ">", ">", ">"],
            )
        )
    print()
    print(
        "GET /missingsymbols.csv through the real view, in a fresh process per line; RSS growth = "
        "peak RSS (VmHWM) after minus before the request, measured after a warm-up."
    )
    rows = []
    for res in all_results:
        for label, mode, c in res["csv"]:
            rows.append(
                (
                    res["kind"],
                    label,
                    mode,
                    f"{c['rows']:,}",
                    f"{c['bytes'] / 2**20:.1f}",
                    f"{c['seconds']:.2f}",
                    f"{c['rows'] / c['seconds']:,.0f}" if c["seconds"] > 0 else "-",
                    f"{c['rss_growth_kib'] / 1024:.1f}",
                    f"{c['rss_before_kib'] / 1024:.0f}",
                )
            )
        rows.append(
            (
                res["kind"],
                f"(re-dating {args.rows:,} rows took {res['redate']:.1f} s)",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
            )
        )
    print(
        table(
            [
                "db",
                "rows in window",
                "mode",
                "rows",
                "MiB",
                "seconds",
                "rows/s",
                "RSS growth MiB",
                "RSS before MiB",
            ],
            rows,
            ["<", "<", "<", ">", ">", ">", ">", ">", ">"],
        )
    )
    print()
    print(f"total bench time {elapsed:.0f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to seed (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per measurement (default 20)")
    parser.add_argument(
        "--budget",
        type=float,
        default=8.0,
        help="seconds after which a measurement stops at 5+ runs (default 8)",
    )
    parser.add_argument("--db", default="postgresql,sqlite", help="postgresql, sqlite or both (default both)")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("TECKEN_TEST_PG_URL", DEFAULT_PG_ADMIN),
        help="an admin URL on the PostgreSQL server (default %(default)s)",
    )
    parser.add_argument(
        "--explain", action="store_true", help="log PostgreSQL EXPLAIN ANALYZE for each listing"
    )
    parser.add_argument("--csv-child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--csv-mode", default="stream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.csv_child:
        return csv_child(args.csv_child, args.csv_mode)

    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if "postgresql" in kinds:
        import psycopg

        try:
            psycopg.connect(
                args.pg_url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3
            ).close()
        except Exception as exc:
            log(f"PostgreSQL does not answer at {args.pg_url} ({type(exc).__name__}): skipping it")
            kinds.remove("postgresql")
    started = time.monotonic()
    results = []
    for kind in kinds:
        results.append(bench_database(kind, args))
    report(results, args, time.monotonic() - started)


if __name__ == "__main__":
    main()
