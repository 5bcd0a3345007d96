"""Database tables (SQLAlchemy 2 typed models). Alembic owns the schema."""

import datetime
import json

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow():
    return datetime.datetime.now(datetime.UTC)


class AllowedExtension(Base):
    __tablename__ = "allowed_extension"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    extension: Mapped[str] = mapped_column(String(100), unique=True)
    created_by: Mapped[str | None] = mapped_column(String(150))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IgnorePattern(Base):
    __tablename__ = "ignore_pattern"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pattern: Mapped[str] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str | None] = mapped_column(String(150))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_superuser: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    # Part of every session's stamp (security.session_stamp): moving it on ends every
    # session issued so far (logout, password reset, deactivation).
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class MissingSymbol(Base):
    __tablename__ = "missing_symbol"
    # One btree per listing order, ``(column, id)`` (migration 0004); the pg_trgm
    # GIN indexes for substring filters exist on PostgreSQL only (migration 0003).
    __table_args__ = (
        Index("ix_missing_symbol_modified_at_id", "modified_at", "id"),
        Index("ix_missing_symbol_created_at_id", "created_at", "id"),
        Index("ix_missing_symbol_count_id", "count", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    symbol: Mapped[str] = mapped_column(String(150))
    debugid: Mapped[str] = mapped_column(String(150))
    filename: Mapped[str] = mapped_column(String(150))
    code_file: Mapped[str | None] = mapped_column(String(150))
    code_id: Mapped[str | None] = mapped_column(String(150))
    count: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    modified_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AuditLog(Base):
    """Every change made in the console: who, when, what, before -> after."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(150))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(Text, default="")
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)

    @classmethod
    def entry(cls, actor, action, target="", before=None, after=None):
        """One row; ``before``/``after`` other than text are stored as sorted JSON.
        Written by the console (actor: the signed-in user) and the command line."""

        def text(value):
            if value is None or isinstance(value, str):
                return value
            return json.dumps(value, sort_keys=True, default=str)

        return cls(username=actor, action=action, target=target, before=text(before), after=text(after))


# -- uploads (SPEC §9) ---------------------------------------------------------------------------
BIG_ID = BigInteger().with_variant(Integer, "sqlite")
KEY_LENGTH = 1024  # storage keys; longer member names are refused at upload


class ApiToken(Base):
    """An upload token: only its sha256 is stored (the token is shown once, at creation)."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first 4 characters, to tell tokens apart in lists (16 of 128 bits).
    hint: Mapped[str] = mapped_column(String(8))
    can_upload: Mapped[bool] = mapped_column(Boolean, default=False)
    can_upload_try: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(150), default="")
    last_used_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))


class Upload(Base):
    """One archive sent to one target: a retry of the same archive (sha256, target,
    try) finds this row again instead of writing twice (SPEC §9 "Idempotent retries")."""

    __tablename__ = "upload"
    __table_args__ = (
        UniqueConstraint("sha256", "target", "try_symbols", name="uq_upload_archive"),
        Index("ix_upload_created_at_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_token.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(KEY_LENGTH))  # the location URL written to
    try_symbols: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|complete|failed
    error: Mapped[str | None] = mapped_column(Text)
    download_url: Mapped[str | None] = mapped_column(Text)
    redirect_urls: Mapped[str | None] = mapped_column(Text)  # JSON list, upload by download
    files_stored: Mapped[int] = mapped_column(Integer, default=0)
    files_skipped: Mapped[int] = mapped_column(Integer, default=0)
    files_ignored: Mapped[int] = mapped_column(Integer, default=0)
    bytes_stored: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Moved on as members complete: a pending row that stops moving was abandoned.
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))


class UploadFile(Base):
    """What one upload did with one member: stored, skipped or ignored."""

    __tablename__ = "upload_file"
    __table_args__ = (UniqueConstraint("upload_id", "key", name="uq_upload_file_member"),)

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("upload.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    status: Mapped[str] = mapped_column(String(16))  # stored|skipped|ignored
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SymbolFile(Base):
    """The index: one row per file known in a location (stored by an upload, or
    found by ``tecken-pyramid index``), with its .sym header's fields."""

    __tablename__ = "symbol_file"
    __table_args__ = (
        UniqueConstraint("location", "key", name="uq_symbol_file_location_key"),
        Index("ix_symbol_file_code", "code_file", "code_id"),
        Index("ix_symbol_file_debug", "symbol", "debug_id"),
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    location: Mapped[str] = mapped_column(String(KEY_LENGTH))  # Location.url
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    symbol: Mapped[str] = mapped_column(String(255))
    debug_id: Mapped[str] = mapped_column(String(150))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    os: Mapped[str | None] = mapped_column(String(50))
    arch: Mapped[str | None] = mapped_column(String(50))
    code_id: Mapped[str | None] = mapped_column(String(150))
    code_file: Mapped[str | None] = mapped_column(String(255))
    generator: Mapped[str | None] = mapped_column(String(255))
    try_symbols: Mapped[bool] = mapped_column(Boolean, default=False)
    upload_id: Mapped[int | None] = mapped_column(ForeignKey("upload.id", ondelete="SET NULL"))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
