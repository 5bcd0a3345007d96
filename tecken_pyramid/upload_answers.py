"""The JSON answers of ``POST /upload/`` (SPEC §9 "Answers"), for the view and the command.

201 ``{"upload": {...}}`` (Tecken's fields, plus ``status``, ``sha256``, ``files`` and
``ignored_keys``); every refusal ``{"error": "<why>"}``; 503 and 409 carry
``Retry-After`` so that clients (which retry on 5xx, 408 and 429) come back later.
"""

import dataclasses
import json

from sqlalchemy import select

from .models import Upload, UploadFile, User
from .reports import as_utc

DATABASE_UNAVAILABLE = "The database is unavailable; nothing was stored. Try again later"


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: int
    body: dict
    headers: tuple = ()


def error(status, message, retry_after=None):
    headers = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
    return Outcome(status, {"error": message}, headers)


def database_unavailable():
    return error(503, DATABASE_UNAVAILABLE, retry_after=30)


def iso(when):
    """ISO 8601 in UTC with a ``Z``, as Tecken's API writes times (None stays None)."""
    when = as_utc(when)
    return None if when is None else when.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def upload_body(session, upload: Upload):
    files = session.scalars(
        select(UploadFile).where(UploadFile.upload_id == upload.id).order_by(UploadFile.id)
    )
    files = [{"key": f.key, "status": f.status, "size": f.size, "sha256": f.sha256} for f in files]
    user = session.get(User, upload.user_id)
    return {
        "upload": {
            "id": upload.id,
            "filename": upload.filename,
            "size": upload.size,
            "sha256": upload.sha256,
            "try_symbols": upload.try_symbols,
            "status": upload.status,
            "created_at": iso(upload.created_at),
            "completed_at": iso(upload.completed_at),
            "user": user.username if user is not None else None,
            "download_url": upload.download_url,
            "redirect_urls": json.loads(upload.redirect_urls) if upload.redirect_urls else [],
            "files": files,
            "skipped_keys": [f["key"] for f in files if f["status"] == "skipped"],
            "ignored_keys": [f["key"] for f in files if f["status"] == "ignored"],
        }
    }
