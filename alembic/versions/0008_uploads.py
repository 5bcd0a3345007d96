"""Uploads (SPEC §9): tokens, uploads and what each did per member, and the symbol index.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
KEY = 1024
WHEN = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hint", sa.String(8), nullable=False),
        sa.Column("can_upload", sa.Boolean, nullable=False),
        sa.Column("can_upload_try", sa.Boolean, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("expires_at", WHEN),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("created_by", sa.String(150), nullable=False),
        sa.Column("last_used_at", WHEN),
        sa.Column("revoked_at", WHEN),
    )
    op.create_index("ix_api_token_user_id", "api_token", ["user_id"])
    op.create_table(
        "upload",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("token_id", sa.Integer, sa.ForeignKey("api_token.id", ondelete="SET NULL")),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("target", sa.String(KEY), nullable=False),
        sa.Column("try_symbols", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("download_url", sa.Text),
        sa.Column("redirect_urls", sa.Text),
        sa.Column("files_stored", sa.Integer, nullable=False),
        sa.Column("files_skipped", sa.Integer, nullable=False),
        sa.Column("files_ignored", sa.Integer, nullable=False),
        sa.Column("bytes_stored", sa.BigInteger, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("completed_at", WHEN),
        sa.UniqueConstraint("sha256", "target", "try_symbols", name="uq_upload_archive"),
    )
    op.create_index("ix_upload_user_id", "upload", ["user_id"])
    op.create_index("ix_upload_created_at_id", "upload", ["created_at", "id"])
    op.create_table(
        "upload_file",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("upload_id", BIG_ID, sa.ForeignKey("upload.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(KEY), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("created_at", WHEN, nullable=False),
        sa.UniqueConstraint("upload_id", "key", name="uq_upload_file_member"),
    )
    op.create_table(
        "symbol_file",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("location", sa.String(KEY), nullable=False),
        sa.Column("key", sa.String(KEY), nullable=False),
        sa.Column("symbol", sa.String(255), nullable=False),
        sa.Column("debug_id", sa.String(150), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger),
        sa.Column("sha256", sa.String(64)),
        sa.Column("os", sa.String(50)),
        sa.Column("arch", sa.String(50)),
        sa.Column("code_id", sa.String(150)),
        sa.Column("code_file", sa.String(255)),
        sa.Column("generator", sa.String(255)),
        sa.Column("try_symbols", sa.Boolean, nullable=False),
        sa.Column("upload_id", BIG_ID, sa.ForeignKey("upload.id", ondelete="SET NULL")),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.UniqueConstraint("location", "key", name="uq_symbol_file_location_key"),
    )
    op.create_index("ix_symbol_file_code", "symbol_file", ["code_file", "code_id"])
    op.create_index("ix_symbol_file_debug", "symbol_file", ["symbol", "debug_id"])


def downgrade():
    op.drop_table("symbol_file")
    op.drop_table("upload_file")
    op.drop_index("ix_upload_created_at_id", "upload")
    op.drop_index("ix_upload_user_id", "upload")
    op.drop_table("upload")
    op.drop_index("ix_api_token_user_id", "api_token")
    op.drop_table("api_token")
