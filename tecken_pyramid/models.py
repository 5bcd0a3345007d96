"""Database tables (SQLAlchemy 2 typed models). Alembic owns the schema."""

import datetime
import json

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, MetaData, String, Text, func
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
