"""``POST /upload/`` and ``POST /upload`` (SPEC §9): Tecken's upload API, never a redirect.

The order: a ``Content-Length`` over the limit is a 413 before anything is read (the
server runner also keeps waitress from buffering such a body: :mod:`..server`); then
the token (a refusal drains the body first, so a client sending a large archive reads
its 403); then the body, streamed to a temporary file (:mod:`..upload_intake`) or the
archive fetched from ``url=`` (:mod:`..upload_fetch`); then the pipeline
(:mod:`..uploads`). Every answer is JSON and carries ``Vary: Auth-Token``.
"""

import contextlib
import logging
import os

from sqlalchemy.exc import SQLAlchemyError

from .. import tokens
from ..routes import PUBLIC
from ..upload_answers import Outcome, database_unavailable, error
from ..upload_fetch import FetchError, fetch, parse_allowed
from ..upload_intake import IntakeError, drain, read_upload
from ..uploads import UploadRequest
from .errors import json_response, request_path

log = logging.getLogger(__name__)

FALSE_VALUES = frozenset({"", "0", "false", "no", "off"})
NO_ARCHIVE = "Must be multipart form data with at least one file"


def upload_view(request):
    registry, environ = request.registry, request.environ
    s = registry.tecken
    if _declared_length(environ) > s.upload_max_bytes:
        return _answer(error(413, f"The upload is larger than the limit of {s.upload_max_bytes} bytes"))
    refusal, auth = _authenticate(registry, environ.get("HTTP_AUTH_TOKEN"))
    with contextlib.ExitStack() as cleanup:
        if refusal is None and not cleanup.enter_context(registry.uploads.slot()):
            refusal = registry.uploads.busy()
        if refusal is not None:
            drain(environ, s.upload_max_bytes)
            return _answer(refusal)
        try:
            intake = read_upload(environ, tempdir=s.upload_tempdir, max_bytes=s.upload_max_bytes)
            cleanup.callback(intake.close)
            try_symbols = auth.upload_as_try(_asks_for_try(intake.fields))
            archive = _archive(intake, s, cleanup)
        except (IntakeError, FetchError) as exc:
            return _answer(error(exc.status, str(exc)))
        except tokens.TokenRefused as exc:
            return _answer(error(403, str(exc)))
        except OSError as exc:  # the temporary directory is full or unwritable: ours, not the client's
            log.warning("cannot take an upload in: %s", exc)
            return _answer(error(503, "The server cannot take uploads in right now; try again later", 30))
        if isinstance(archive, Outcome):
            return _answer(archive)
        return _answer(registry.uploads.run(_request(archive, auth, try_symbols)))


def _declared_length(environ):
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _authenticate(registry, header):
    """(None, Authenticated) or (the refusal Outcome, None)."""
    try:
        with registry.dbsession_factory() as session:
            auth = tokens.authenticate(session, header)
            session.commit()
            return None, auth
    except tokens.TokenRefused as exc:
        return error(403, str(exc)), None
    except SQLAlchemyError:
        return database_unavailable(), None


def _asks_for_try(fields):
    value = fields.get("try")
    return value is not None and value.strip().lower() not in FALSE_VALUES


def _archive(intake, settings, cleanup):
    """(path, name, size, sha256, download_url, redirect_urls) of the archive, or a 400 Outcome."""
    if intake.archive_path is not None:
        name = intake.archive_name or ""
        if not name.lower().endswith(".zip"):
            ext = "." + name.rsplit(".", 1)[1] if "." in name else ""
            return error(400, f'Unrecognized archive file extension "{ext}"')
        return (intake.archive_path, name, intake.archive_size, intake.archive_sha256, None, ())
    url = (intake.fields.get("url") or "").strip()
    if not url:
        return error(400, NO_ARCHIVE)
    if not settings.upload_by_download_domains:
        return error(400, "Upload by download is not enabled on this server")
    fetched = fetch(
        url,
        parse_allowed(settings.upload_by_download_domains),
        tempdir=settings.upload_tempdir,
        max_bytes=settings.upload_max_bytes,
    )
    cleanup.callback(_remove, fetched.path)
    return (
        fetched.path,
        fetched.name,
        fetched.size,
        fetched.sha256,
        fetched.url,
        tuple(fetched.redirect_urls),
    )


def _remove(path):
    with contextlib.suppress(OSError):
        os.unlink(path)


def _request(archive, auth, try_symbols):
    path, name, size, sha256, download_url, redirect_urls = archive
    return UploadRequest(
        archive_path=path,
        filename=name,
        size=size,
        sha256=sha256,
        user_id=auth.user_id,
        username=auth.username,
        token_id=auth.token_id,
        try_symbols=try_symbols,
        download_url=download_url,
        redirect_urls=redirect_urls,
    )


def _answer(outcome):
    return json_response(outcome.status, outcome.body, [*outcome.headers, ("Vary", "Auth-Token")])


def upload_method_not_allowed(request):
    body = {"error": f"Method Not Allowed ({request.method}): {request_path(request)}"}
    return json_response(405, body, [("Allow", "POST"), ("Vary", "Auth-Token")])


def includeme(config):
    for name in ("upload", "upload_no_slash"):
        config.add_route(name, PUBLIC[name])
        config.add_view(upload_view, route_name=name, request_method="POST")
        config.add_view(upload_method_not_allowed, route_name=name)
