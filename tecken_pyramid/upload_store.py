"""Storing one checked archive's members (SPEC §9 "Keys and writes", "Right at once").

:class:`MemberStore` decides per member: *skipped* when the target already holds the
same bytes (its sha256, or Tecken's original size and md5, so a bucket shared with
Tecken skips both ways), and for a try upload also when the regular location holds
them; otherwise *stored* (written, replacing a different file under the key). Then it
makes the existence cache right at once: *found* in the target's entry, no *not
found* for the key in any location, and the code-id entries of a ``.sym`` dropped.

Storage calls run on worker threads (:meth:`store`); cache updates run on the
caller's thread (:meth:`settle`), after the member is safely stored.
"""

import logging

from .cache import CacheUnavailable, RateLimitedLog

log = logging.getLogger(__name__)

STORED = "stored"
SKIPPED = "skipped"
IGNORED = "ignored"


def same_content(existing, member):
    """Whether a stored object holds exactly the member's bytes."""
    if existing is None:
        return False
    if existing.sha256:
        return existing.sha256 == member.sha256
    return bool(
        existing.original_md5
        and existing.original_size == member.size
        and existing.original_md5 == member.md5
    )


class MemberStore:
    def __init__(self, settings, storage, existence, code_ids=None):
        self.settings = settings
        self.storage = storage
        self.existence = existence
        self.code_ids = code_ids
        self._cache_log = RateLimitedLog(log, 60.0)

    def store(self, archive, member, target, try_symbols):
        """STORED or SKIPPED; raises StorageWriteError (the upload fails, resumable)."""
        key = target.key(member.symbol, member.debugid, member.filename)
        if same_content(self.storage.stat(target, key), member):
            return SKIPPED
        if try_symbols:
            regular = self.settings.upload_url
            regular_key = regular.key(member.symbol, member.debugid, member.filename)
            if same_content(self.storage.stat(regular, regular_key), member):
                return SKIPPED
        self.storage.write(
            target,
            key,
            lambda: archive.read_chunks(member),
            size=member.size,
            sha256=member.sha256,
            md5=member.md5,
        )
        return STORED

    def settle(self, member, target):
        """The existence cache right at once for a stored or skipped member.

        A cache that fails is logged, not fatal: what is stored stays stored, and a
        memcached that was unreachable holds no answer this process could correct."""
        found = self.existence.key(target, target.key(member.symbol, member.debugid, member.filename))
        stale = [
            k for k in self.existence.keys_for(member.symbol, member.debugid, member.filename) if k != found
        ]
        try:
            if stale:
                self.existence.cache.delete_many(stale)
            if target.cached:
                self.existence.write([found], [])
        except CacheUnavailable as exc:
            self._cache_log.warning("existence", "cannot update the existence cache after an upload: %s", exc)
        header = member.header or {}
        if self.code_ids is not None and header.get("code_id") and header.get("code_file"):
            try:
                self.code_ids.invalidate(header["code_file"], header["code_id"])
            except Exception as exc:  # the lookup's entries expire on their own
                self._cache_log.warning("code-id", "cannot drop code-id entries after an upload: %s", exc)
