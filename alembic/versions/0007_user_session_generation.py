"""A per-user session generation: logout, a password reset and deactivation end
every session cookie issued before (the stamp in the cookie includes it).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    # An ADD COLUMN with a default on both databases; batch mode so that the SQLite
    # downgrade (DROP COLUMN) works on old SQLite versions too.
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_generation", sa.Integer, nullable=False, server_default="0"))


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_generation")
