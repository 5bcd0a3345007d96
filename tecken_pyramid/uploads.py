"""The upload pipeline (SPEC §9): one archive on disk in, stored members and records out.

``POST /upload/`` (:mod:`.views.upload`) and ``tecken-pyramid upload`` both call
:meth:`UploadService.run` with an :class:`UploadRequest`; it answers an
:class:`Outcome` (status, JSON body, headers) and never raises.

1. A completed upload of the same archive (sha256, target, try) answers 201 at once,
   with no storage call (an idempotent retry).
2. The archive is checked whole (:func:`~.upload_archive.inspect_archive`): one bad
   member is a 400 naming it, and nothing is stored.
3. The ``upload`` row is claimed: created, or taken over when an earlier attempt
   failed (or stopped moving: its process died). A retry arriving while another
   request works on the same archive waits for it, then answers what it did (or 409
   with ``Retry-After`` after ``upload_wait_seconds``).
4. Members are stored on worker threads (:class:`~.upload_store.MemberStore`); as each
   completes, this thread makes the cache right and writes its ``upload_file`` and
   ``symbol_file`` rows, so a failure part-way loses no record of what was stored,
   and the retry resumes with what is not recorded yet.
"""

import concurrent.futures
import contextlib
import dataclasses
import datetime
import logging
import threading
import time

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from . import symbol_index
from .models import Upload, UploadFile, utcnow
from .upload_answers import Outcome, database_unavailable, error, upload_body
from .upload_archive import ArchiveError, inspect_archive
from .upload_store import IGNORED, SKIPPED, STORED, MemberStore

log = logging.getLogger(__name__)

PENDING, COMPLETE, FAILED = "pending", "complete", "failed"
WORKERS = 8  # concurrent storage writes per upload
IN_FLIGHT = WORKERS * 4  # members submitted and not yet recorded
COMMIT_EVERY_SECONDS = 0.2  # records are committed at least this often while members complete
BUSY = "This archive is being uploaded by another request; retry later"
FULL = "Too many uploads in progress on this server; retry later"


@dataclasses.dataclass(frozen=True)
class UploadRequest:
    archive_path: str
    filename: str
    size: int
    sha256: str
    user_id: int
    username: str
    token_id: int | None
    try_symbols: bool
    download_url: str | None = None
    redirect_urls: tuple = ()


def member_path(member):
    """The key as clients name it: ``symbol/DEBUGID/filename`` (no location prefix)."""
    return f"{member.symbol}/{member.debugid}/{member.filename}"


def _aware(when):
    return when if when.tzinfo is not None else when.replace(tzinfo=datetime.UTC)


class UploadService:
    def __init__(self, registry):
        self.registry = registry
        self.settings = registry.tecken
        self.metrics = registry.metrics
        self._slots = threading.BoundedSemaphore(self.settings.upload_concurrency)

    @contextlib.contextmanager
    def slot(self):
        """Yields True while this request may take an upload in (TECKEN_UPLOAD_CONCURRENCY
        per process), False when every slot is taken: answer :func:`busy` then."""
        taken = self._slots.acquire(blocking=False)
        try:
            yield taken
        finally:
            if taken:
                self._slots.release()

    @staticmethod
    def busy():
        return error(503, FULL, retry_after=30)

    def run(self, request):
        started = time.perf_counter()
        try:
            outcome = self._run(request)
        except ArchiveError as exc:
            outcome = error(400, str(exc))
        except SQLAlchemyError as exc:
            log.warning("upload of %s: database unavailable: %s", request.filename, exc)
            outcome = database_unavailable()
        self.metrics.uploads.labels(str(outcome.status)).inc()
        self.metrics.upload_seconds.observe(time.perf_counter() - started)
        return outcome

    def target(self, try_symbols):
        return self.settings.try_location if try_symbols else self.settings.upload_url

    def _run(self, request):
        s = self.settings
        target = self.target(request.try_symbols)
        with self.registry.dbsession_factory() as session:
            done = self._find(session, request, target)
            if done is not None and done.status == COMPLETE:
                return Outcome(201, upload_body(session, done))
            archive = inspect_archive(
                request.archive_path,
                max_files=s.upload_max_files,
                max_uncompressed_bytes=s.upload_max_uncompressed_bytes,
                allowed_extensions=self.registry.rules.current.extensions,
                disallowed_snippets=s.disallowed_symbols_snippets,
                file_prefix=s.symbol_file_prefix,
            )
            with archive:
                claimed = self._claim(session, request, target)
                if isinstance(claimed, Outcome):
                    return claimed
                try:
                    return self._store_all(session, archive, claimed, target, request)
                except SQLAlchemyError:
                    self._mark_failed(claimed.id, "the database failed part-way")
                    raise

    # -- the upload row -------------------------------------------------------------------
    def _find(self, session, request, target):
        query = select(Upload).where(
            Upload.sha256 == request.sha256,
            Upload.target == target.url,
            Upload.try_symbols == request.try_symbols,
        )
        return session.scalars(query.execution_options(populate_existing=True)).first()

    def _claim(self, session, request, target):
        """The Upload row this request now owns, or the Outcome to answer instead."""
        deadline = time.monotonic() + self.settings.upload_wait_seconds
        while True:
            row = self._find(session, request, target)
            now = utcnow()
            if row is None:
                row = Upload(
                    user_id=request.user_id,
                    token_id=request.token_id,
                    filename=request.filename[:255],
                    size=request.size,
                    sha256=request.sha256,
                    target=target.url,
                    try_symbols=request.try_symbols,
                    status=PENDING,
                    download_url=request.download_url,
                    redirect_urls=_json_list(request.redirect_urls),
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                try:
                    session.commit()
                    return row
                except IntegrityError:  # another request created it first
                    session.rollback()
                    continue
            if row.status == COMPLETE:
                return Outcome(201, upload_body(session, row))
            stale = _aware(row.updated_at) < now - datetime.timedelta(
                seconds=self.settings.upload_stale_seconds
            )
            if row.status == FAILED or stale:
                taken = session.execute(
                    update(Upload)
                    .where(
                        Upload.id == row.id, Upload.status == row.status, Upload.updated_at == row.updated_at
                    )
                    .values(status=PENDING, error=None, updated_at=now)
                ).rowcount
                session.commit()
                if taken:
                    session.refresh(row)
                    return row
                continue
            session.rollback()
            if time.monotonic() >= deadline:
                return error(409, BUSY, retry_after=30)
            time.sleep(0.25)

    def _mark_failed(self, upload_id, why):
        try:
            with self.registry.dbsession_factory() as session:
                session.execute(
                    update(Upload)
                    .where(Upload.id == upload_id)
                    .values(status=FAILED, error=why, updated_at=utcnow())
                )
                session.commit()
        except SQLAlchemyError:  # then it goes stale and a later retry takes it over
            pass

    # -- the members ----------------------------------------------------------------------
    def _store_all(self, session, archive, upload, target, request):
        store = MemberStore(
            self.settings,
            self.registry.storage,
            self.registry.existence,
            getattr(self.registry, "code_ids", None),
        )
        recorded = set(session.scalars(select(UploadFile.key).where(UploadFile.upload_id == upload.id)))
        for member in archive.ignored:
            if member_path(member) not in recorded:
                self._record(session, upload, target, member, IGNORED)
        todo = iter([m for m in archive.stored if member_path(m) not in recorded])
        failure = None
        last_commit = time.monotonic()
        touch = max(1.0, self.settings.upload_stale_seconds / 4)
        with concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="upload") as pool:
            futures = {}  # at most IN_FLIGHT: memory stays flat whatever the member count

            def submit_more():
                while failure is None and len(futures) < IN_FLIGHT:
                    member = next(todo, None)
                    if member is None:
                        return
                    futures[pool.submit(store.store, archive, member, target, request.try_symbols)] = member

            submit_more()
            while futures:
                done, _ = concurrent.futures.wait(
                    futures, timeout=touch, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in done:
                    member = futures.pop(future)
                    try:
                        status = future.result()
                    except Exception as exc:  # StorageWriteError, or a member unreadable the second time
                        if failure is None:
                            failure = f"{member_path(member)}: {exc}"
                            log.warning("upload %s failed: %s", upload.id, failure)
                        continue
                    store.settle(member, target)
                    self._record(session, upload, target, member, status)
                submit_more()
                if time.monotonic() - last_commit >= COMMIT_EVERY_SECONDS or not done:
                    upload.updated_at = utcnow()
                    session.commit()
                    last_commit = time.monotonic()
        return self._finish(session, upload, failure)

    def _record(self, session, upload, target, member, status):
        path = member_path(member)
        session.add(
            UploadFile(upload_id=upload.id, key=path, status=status, size=member.size, sha256=member.sha256)
        )
        if status == STORED:
            upload.files_stored += 1
            upload.bytes_stored += member.size
            self.metrics.upload_bytes.inc(member.size)
        elif status == SKIPPED:
            upload.files_skipped += 1
        else:
            upload.files_ignored += 1
        if status in (STORED, SKIPPED):
            symbol_index.record_file(
                session,
                location=target,
                key=target.key(member.symbol, member.debugid, member.filename),
                symbol=member.symbol,
                debug_id=member.debugid,
                filename=member.filename,
                size=member.size,
                sha256=member.sha256,
                header=member.header,
                upload_id=upload.id,
            )
        self.metrics.upload_files.labels(status).inc()

    def _finish(self, session, upload, failure):
        now = utcnow()
        upload.updated_at = now
        if failure is not None:
            upload.status, upload.error = FAILED, failure[:2000]
            session.commit()
            return error(
                503,
                f"Storage failed part-way ({failure}); what was stored is kept and a retry resumes",
                retry_after=30,
            )
        upload.status, upload.completed_at = COMPLETE, now
        session.commit()
        return Outcome(201, upload_body(session, upload))


def _json_list(values):
    import json

    return json.dumps(list(values)) if values else None


def includeme(config):
    config.registry.uploads = UploadService(config.registry)
