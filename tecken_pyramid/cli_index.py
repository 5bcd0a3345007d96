"""``tecken-pyramid index INI [--location N|try] [--prefix P]`` (SPEC §9 "Indexing what others stored").

Lists a location's keys (all locations, try included, by default) and gives every
``.sym`` whose key is ``<location prefix>/symbol/debugid/filename`` a ``symbol_file``
row from its first :data:`~tecken_pyramid.breakpad.HEADER_BYTES` (a ranged read,
decompressed when the object is gzipped), so that files stored by other tools gain
the lookup by code id.

Resumable and idempotent: a key whose row already has the listed size is skipped
without any storage call; a row with a sha256 (an upload's: its size is the original
one, a gzipped object lists smaller) is left alone when the object's metadata says
the same sha256 (one HEAD). Rows are committed every :data:`BATCH` keys, so an
interrupted run keeps what it did and the next run goes past it quickly. An index
row's size is the size as listed (stored; compressed for a gzipped .sym on S3) and
its sha256 is empty. Progress goes to stderr; a storage or database failure is one
line and exit status 1, after committing what was done.
"""

import dataclasses
import os
import sys

from .breakpad import HEADER_BYTES, sym_header

BATCH = 200
PROGRESS_EVERY = 100


@dataclasses.dataclass
class Counts:
    listed: int = 0
    indexed: int = 0
    skipped: int = 0
    unreadable: int = 0

    def line(self, location):
        return (
            f"indexed {self.indexed}, skipped {self.skipped}, unreadable {self.unreadable} "
            f"in {location.url} ({self.listed} keys listed)"
        )


def chosen_locations(settings, wanted):
    """The locations to index: ``None`` for every one (try included), else its number or ``try``."""
    if wanted is None:
        seen, out = set(), []
        for location in settings.all_locations:
            if location.url not in seen:
                seen.add(location.url)
                out.append(location)
        return out
    for location in settings.all_locations:
        if location.index == wanted:
            return [location]
    numbers = ", ".join(loc.index for loc in settings.all_locations)
    raise ValueError(f"no location {wanted!r} (the locations are {numbers})")


def parse_key(location, key):
    """(symbol, debug id, filename) of a ``.sym`` key under the location's prefix, else None."""
    if not key.endswith(".sym"):
        return None
    rel = key
    if location.prefix:
        if not key.startswith(location.prefix + "/"):
            return None
        rel = key[len(location.prefix) + 1 :]
    parts = rel.split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


class Indexer:
    """One location's listing into ``symbol_file`` rows, on one session."""

    def __init__(self, session, storage, location, *, cache=None, settings=None, out=sys.stderr):
        self.session = session
        self.storage = storage
        self.location = location
        self.cache = cache  # the shared cache, to drop stale code-id answers (None: nothing shared)
        self.settings = settings
        self.out = out
        self.counts = Counts()
        self._stale = set()  # (code file, code id) recorded in this batch

    def run(self, prefix=""):
        from sqlalchemy.exc import SQLAlchemyError

        batch = []
        print(f"indexing {self.location.url}" + (f" under {prefix!r}" if prefix else ""), file=self.out)
        try:
            for key, size in self.storage.list_keys(self.location, prefix=prefix):
                self.counts.listed += 1
                parts = parse_key(self.location, key)
                if parts is not None:
                    batch.append((key, size, parts))
                if len(batch) >= BATCH:
                    self._flush(batch)
                    batch = []
                if self.counts.listed % PROGRESS_EVERY == 0:
                    print(self.counts.line(self.location), file=self.out, flush=True)
            self._flush(batch)
        except SQLAlchemyError:
            raise  # the database failed: nothing more can be committed
        except BaseException:
            # A storage failure or ^C: what was recorded so far is kept.
            self.session.commit()
            self._drop_stale()
            raise
        print(self.counts.line(self.location), file=self.out, flush=True)
        return self.counts

    def _flush(self, batch):
        from . import symbol_index

        known = symbol_index.known_rows(self.session, self.location.url, [key for key, _, _ in batch])
        for key, size, parts in batch:
            row = known.get(key)
            if row is not None and self._unchanged(key, size, row):
                self.counts.skipped += 1
                continue
            self._index(key, size, parts)
        self.session.commit()
        self._drop_stale()

    def _unchanged(self, key, size, row):
        row_size, row_sha256 = row
        if size is not None and row_size == size:
            return True
        if not row_sha256:
            return False
        stored = self.storage.stat(self.location, key)
        return stored is not None and stored.sha256 == row_sha256

    def _index(self, key, size, parts):
        from . import symbol_index

        first = self.storage.read_head(self.location, key, HEADER_BYTES)
        if first is None:  # removed since it was listed
            self.counts.skipped += 1
            return
        header = sym_header(first, at_eof=len(first) < HEADER_BYTES)
        if header is None:
            self.counts.unreadable += 1
            return
        symbol, debug_id, filename = parts
        try:
            symbol_index.record_file(
                self.session,
                location=self.location,
                key=key,
                symbol=symbol,
                debug_id=debug_id,
                filename=filename,
                size=size,
                sha256=None,
                header=header,
            )
        except ValueError:  # a key the column cannot hold as it is
            self.counts.unreadable += 1
            return
        self.counts.indexed += 1
        if header.get("code_file") and header.get("code_id"):
            self._stale.add((header["code_file"], header["code_id"]))

    def _drop_stale(self):
        """A download asked by code id before this run may have cached 'not found'."""
        stale, self._stale = self._stale, set()
        if not stale or self.cache is None:
            return
        from .code_ids import invalidation_keys

        keys = [
            k for code_file, code_id in stale for k in invalidation_keys(self.settings, code_file, code_id)
        ]
        try:
            self.cache.delete_many(keys)
        except Exception as exc:
            print(
                f"warning: cached code-id answers not dropped (they expire on their own): {exc}",
                file=self.out,
            )
            self.cache = None  # once is enough


def cmd_index(args):
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.orm import Session

    from . import cli
    from .cache import make_cache
    from .locations import LOCAL
    from .storage import StorageChecker, StorageWriteError

    settings = cli._settings(args.ini)
    try:
        locations = chosen_locations(settings, args.location)
    except ValueError as exc:
        raise cli.OperationalError(str(exc)) from None
    storage = StorageChecker(settings)
    # Only a shared cache holds answers that other processes read.
    cache = make_cache(settings) if settings.memcached_servers else None
    try:
        with cli._database(args.ini) as engine, Session(engine) as session:
            for location in locations:
                if args.location is None and location.kind == LOCAL and not os.path.isdir(location.directory):
                    print(f"skipping {location.url}: no such directory", file=sys.stderr)
                    continue
                indexer = Indexer(session, storage, location, cache=cache, settings=settings)
                try:
                    indexer.run(args.prefix or "")
                except StorageWriteError as exc:
                    line = indexer.counts.line(location)
                    raise cli.OperationalError(f"storage failed ({exc}); committed: {line}") from None
                except SQLAlchemyError as exc:
                    print(indexer.counts.line(location) + " before the failure", file=sys.stderr)
                    raise cli._db_error(exc) from None
    finally:
        storage.close()
        if cache is not None:
            cache.close()
