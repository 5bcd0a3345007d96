"""Trigram indexes for the console's code_file / code_id filters (PostgreSQL only).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = ("code_file", "code_id")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no pg_trgm; substring filters scan there.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        op.execute(
            f"CREATE INDEX IF NOT EXISTS ix_missing_symbol_{column}_trgm "
            f"ON missing_symbol USING gin ({column} gin_trgm_ops)"
        )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.execute(f"DROP INDEX IF EXISTS ix_missing_symbol_{column}_trgm")
