"""The missing-symbol log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "missing_symbol",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(150), nullable=False),
        sa.Column("debugid", sa.String(150), nullable=False),
        sa.Column("filename", sa.String(150), nullable=False),
        sa.Column("code_file", sa.String(150)),
        sa.Column("code_id", sa.String(150)),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("hash", name="uq_missing_symbol_hash"),
    )
    op.create_index("ix_missing_symbol_modified_at", "missing_symbol", ["modified_at"])


def downgrade():
    op.drop_index("ix_missing_symbol_modified_at", "missing_symbol")
    op.drop_table("missing_symbol")
