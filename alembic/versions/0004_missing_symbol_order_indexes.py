"""Indexes that serve every listing order of the missing-symbol log, deep pages included.

The JSON API and the console sort by modified_at (default), created_at or count,
each followed by the row id (SPEC §6). With one btree per order, ``(column, id)``,
a page is an index walk: ``reports.page_select`` picks the page's ids with an
index-only scan (skipping OFFSET rows costs index tuples, not heap rows) and then
reads those rows. Measured at 1,000,000 rows on PostgreSQL 15 (bench/missing_symbols.py):
page 5000 1.1 s -> 28 ms, page 10000 2.1 s -> 67 ms, sort=count first page 129 ms -> 0.7 ms,
sort=created_at first page 128 ms -> 0.7 ms.

``(modified_at, id)`` replaces the single-column ``ix_missing_symbol_modified_at``: its
leading column serves the same range scans (the CSV report, modified_at filters,
cleanse-missing-symbols).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_missing_symbol_modified_at_id", ["modified_at", "id"]),
    ("ix_missing_symbol_created_at_id", ["created_at", "id"]),
    ("ix_missing_symbol_count_id", ["count", "id"]),
)


def upgrade():
    for name, columns in INDEXES:
        op.create_index(name, "missing_symbol", columns)
    op.drop_index("ix_missing_symbol_modified_at", "missing_symbol")


def downgrade():
    op.create_index("ix_missing_symbol_modified_at", "missing_symbol", ["modified_at"])
    for name, _columns in INDEXES:
        op.drop_index(name, "missing_symbol")
