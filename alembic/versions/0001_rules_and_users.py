"""Allowed extensions, ignore patterns (with their seed rows) and users.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import datetime

import sqlalchemy as sa

from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

DEFAULT_EXTENSIONS = [".sym", ".dl_", ".ex_", ".pd_", ".dbg.gz", ".tar.bz2"]
DEFAULT_PATTERNS = [
    ("*/*/file.ptr", "Debuggers always ask for file.ptr; it is never in the store."),
    (
        "*/000000000000000000000000000000000/*",
        "The 33-zero debug id stack walkers send when they know nothing.",
    ),
]


def upgrade():
    now = datetime.datetime.now(datetime.UTC)
    extensions = op.create_table(
        "allowed_extension",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("extension", sa.String(100), nullable=False),
        sa.Column("created_by", sa.String(150)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("extension", name="uq_allowed_extension_extension"),
    )
    patterns = op.create_table(
        "ignore_pattern",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("pattern", sa.String(500), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(150)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_superuser", sa.Boolean, nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("username", name="uq_users_username"),
    )
    # The seed rows belong to the migration itself, so that plain
    # `alembic upgrade head` gives a working service (SPEC §4). The extensions
    # come from the setting (env.py reads it); later runs never re-add rows.
    initial = context.config.attributes.get("initial_extensions") or DEFAULT_EXTENSIONS
    op.bulk_insert(
        extensions,
        [{"extension": e, "created_by": "migration", "created_at": now} for e in dict.fromkeys(initial)],
    )
    op.bulk_insert(
        patterns,
        [
            {"pattern": p, "enabled": True, "note": note, "created_by": "migration", "created_at": now}
            for p, note in DEFAULT_PATTERNS
        ],
    )


def downgrade():
    op.drop_table("users")
    op.drop_table("ignore_pattern")
    op.drop_table("allowed_extension")
