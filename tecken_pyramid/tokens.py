"""Upload tokens (SPEC §9 "Tokens"): made, checked, revoked; only a sha256 is stored.

A token is 32 lower-case hex characters, shown once when it is made. Everything from
its first ``-`` is a label the client may add (``KEY-uploadtry-20230913``) and is
ignored. The console (``admin/tokens.py``) and ``tecken-pyramid create-token`` make
and revoke tokens through :func:`create_token` and :func:`revoke_token` (both audited);
the upload view checks them with :func:`authenticate`.
"""

import dataclasses
import datetime
import hashlib
import re
import secrets

from sqlalchemy import select

from .models import ApiToken, AuditLog, User, utcnow

UPLOAD = "upload"
UPLOAD_TRY = "upload_try"
PERMISSIONS = (UPLOAD, UPLOAD_TRY)
MAX_EXPIRES_DAYS = 3650
_SHAPE = re.compile(r"[0-9a-f]{32}")

# The 403 texts (Tecken's, which clients and their logs know).
NO_TOKEN = "This requires an Auth-Token to authenticate the request"
NOT_MATCHED = "API Token not matched"
EXPIRED = "API Token found but expired"
INACTIVE = "API Token matched but user not active"
FORBIDDEN = "Forbidden"


class TokenRefused(Exception):
    """The request is refused (403); ``str(exc)`` is the ``{"error": ...}`` text."""


def token_hash(raw):
    """The stored form of a token as sent: the part before the first ``-``, hashed."""
    return hashlib.sha256(raw.split("-", 1)[0].strip().encode("utf-8", "surrogateescape")).hexdigest()


def new_token():
    return secrets.token_hex(16)


@dataclasses.dataclass(frozen=True)
class Authenticated:
    token_id: int
    user_id: int
    username: str
    can_upload: bool
    can_upload_try: bool

    def upload_as_try(self, asked_try):
        """Whether this upload goes to try: a try-only token always does (SPEC §9).
        Raises TokenRefused("Forbidden") when the token may not do what was asked."""
        if asked_try or not self.can_upload:
            if not self.can_upload_try:
                raise TokenRefused(FORBIDDEN)
            return True
        return False


def authenticate(session, header_value, now=None):
    """The token of an ``Auth-Token`` header value, or TokenRefused; records its last use.

    The caller commits (the last-use time is part of the request's transaction)."""
    raw = (header_value or "").strip()
    if not raw:
        raise TokenRefused(NO_TOKEN)
    if not _SHAPE.fullmatch(raw.split("-", 1)[0].strip()):
        raise TokenRefused(NOT_MATCHED)
    now = now or utcnow()
    query = select(ApiToken, User).join(User, User.id == ApiToken.user_id)
    row = session.execute(query.where(ApiToken.key_hash == token_hash(raw))).first()
    if row is None or row.ApiToken.revoked_at is not None:
        raise TokenRefused(NOT_MATCHED)
    token, user = row.ApiToken, row.User
    if token.expires_at is not None and _aware(token.expires_at) <= now:
        raise TokenRefused(EXPIRED)
    if not user.is_active:
        raise TokenRefused(INACTIVE)
    if not (token.can_upload or token.can_upload_try):
        raise TokenRefused(FORBIDDEN)
    token.last_used_at = now
    return Authenticated(token.id, user.id, user.username, token.can_upload, token.can_upload_try)


def _aware(when):
    # SQLite hands back naive datetimes (stored as UTC).
    return when if when.tzinfo is not None else when.replace(tzinfo=datetime.UTC)


def permissions_problem(permissions):
    """None, or why these permissions cannot make a token."""
    unknown = [p for p in permissions if p not in PERMISSIONS]
    if unknown:
        return f"unknown permission {unknown[0]!r} (upload or upload_try)"
    if not permissions:
        return "a token needs at least one permission: upload and/or upload_try"
    return None


def create_token(session, user, permissions, *, expires_days=None, note="", actor, now=None):
    """(the token, its row): a new token for ``user``; audited as ``token.create``.

    ``expires_days`` None means no expiry. Raises ValueError with a sentence for people."""
    permissions = tuple(dict.fromkeys(permissions))
    problem = permissions_problem(permissions)
    if problem:
        raise ValueError(problem)
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise ValueError(f"expiry must be between 1 and {MAX_EXPIRES_DAYS} days")
    if not user.is_active:
        raise ValueError(f"user {user.username} is not active")
    note = (note or "").strip()
    if len(note) > 500:
        raise ValueError("the note is longer than 500 characters")
    now = now or utcnow()
    raw = new_token()
    token = ApiToken(
        user_id=user.id,
        key_hash=token_hash(raw),
        hint=raw[:4],
        can_upload=UPLOAD in permissions,
        can_upload_try=UPLOAD_TRY in permissions,
        note=note,
        expires_at=now + datetime.timedelta(days=expires_days) if expires_days else None,
        created_at=now,
        created_by=actor,
    )
    session.add(token)
    session.flush()
    target = f"{user.username} token {token.id}"
    session.add(AuditLog.entry(actor, "token.create", target, None, describe(token)))
    return raw, token


def revoke_token(session, token, *, actor, now=None):
    """Revoke ``token`` (idempotent); audited as ``token.revoke``. True when it changed."""
    if token.revoked_at is not None:
        return False
    before = describe(token)
    token.revoked_at = now or utcnow()
    user = session.get(User, token.user_id)
    target = f"{user.username if user else token.user_id} token {token.id}"
    session.add(AuditLog.entry(actor, "token.revoke", target, before, describe(token)))
    return True


def token_permissions(token):
    return [p for p, on in ((UPLOAD, token.can_upload), (UPLOAD_TRY, token.can_upload_try)) if on]


def describe(token):
    """What the audit log shows of a token (never the token itself)."""
    return {
        "hint": token.hint + "…",
        "permissions": token_permissions(token),
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        "note": token.note,
        "revoked": token.revoked_at is not None,
    }
