"""Local-directory locations (SPEC §3): a key exists when it names a regular file
whose real path (symlinks resolved) is inside the directory; found keys redirect to
``/__files__/{n}/{key}`` on this app.

Writes (SPEC §9) go uncompressed to a temporary file in the target directory,
flushed, synced and renamed into place, so a half-written file is never served;
parent directories are made one at a time and a symlink leading out of the
directory is never followed.
"""

import os
import tempfile

from ..locations import LOCAL, quote_key
from .answers import FOUND, NOT_FOUND, Answer
from .s3_writes import list_prefix
from .writes import (
    TEMP_PREFIX,
    StorageWriteError,
    StoredObject,
    check_size,
    hash_file,
    iter_chunks,
    os_reason,
    remove_quietly,
)

FILE_MODE = 0o644


def local_path(directory, key):
    """The real path of ``key`` when it is a regular file inside ``directory``."""
    root = os.path.realpath(directory)
    try:
        path = os.path.realpath(os.path.join(root, key))
    except (ValueError, OSError):
        return None
    if not path.startswith(root + os.sep):
        return None
    try:
        return path if os.path.isfile(path) else None
    except (ValueError, OSError):
        return None


def _inside(path, root):
    return path == root or path.startswith(root + os.sep)


class LocalDirectory:
    kind = LOCAL

    def __init__(self, location, shared):
        self.location = location

    def check(self, key, remaining):
        return Answer(FOUND) if local_path(self.location.directory, key) else Answer(NOT_FOUND)

    def redirect_url(self, key, application_url):
        return f"{application_url}/__files__/{self.location.index}/{quote_key(key)}"

    def heartbeat(self, timeout):
        d = self.location.directory
        if os.path.isdir(d) and os.access(d, os.R_OK | os.X_OK):
            return True, "directory exists and is readable"
        return False, "directory missing or unreadable"

    # -- the write side (SPEC §9) ------------------------------------------------------------

    def stat(self, key):
        path = local_path(self.location.directory, key)
        if path is None:
            return None
        try:
            size, sha256, md5 = hash_file(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageWriteError(f"cannot read {key}: {os_reason(exc)}") from None
        return StoredObject(size=size, sha256=sha256, original_size=size, original_md5=md5)

    def read_head(self, key, nbytes):
        path = local_path(self.location.directory, key)
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                return f.read(max(nbytes, 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageWriteError(f"cannot read {key}: {os_reason(exc)}") from None

    def write(self, key, open_chunks, *, size, sha256, md5):
        segments = key.split("/")
        if not key or any(s in ("", ".", "..") or "\0" in s for s in segments):
            raise StorageWriteError(f"invalid key for a local directory: {key!r}")
        try:
            os.makedirs(self.location.directory, exist_ok=True)
            root = os.path.realpath(self.location.directory)
            parent = self._make_parents(root, segments[:-1], key)
        except OSError as exc:
            raise StorageWriteError(f"cannot make the directory of {key}: {os_reason(exc)}") from None
        final = os.path.join(parent, segments[-1])
        self._refuse_symlink(final, key)
        try:
            fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=parent)
        except OSError as exc:
            raise StorageWriteError(f"cannot write {key}: {os_reason(exc)}") from None
        try:
            with os.fdopen(fd, "wb") as f:
                written = 0
                for chunk in iter_chunks(open_chunks):
                    f.write(chunk)
                    written += len(chunk)
                check_size(written, size)
                f.flush()
                os.fsync(f.fileno())
                os.fchmod(f.fileno(), FILE_MODE)
            self._refuse_symlink(final, key)
            os.replace(tmp, final)
        except OSError as exc:
            remove_quietly(tmp)
            raise StorageWriteError(f"cannot write {key}: {os_reason(exc)}") from None
        except BaseException:
            remove_quietly(tmp)
            raise
        _sync_directory(parent)

    @staticmethod
    def _make_parents(root, segments, key):
        """The real path of the key's parent, made one directory at a time, each
        checked before the next is made in it: never a directory made outside."""
        current = root
        for segment in segments:
            path = os.path.join(current, segment)
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
            real = os.path.realpath(path)
            if not _inside(real, root):
                raise StorageWriteError(f"refusing to write {key}: {segment!r} leads out of the directory")
            if not os.path.isdir(real):
                raise StorageWriteError(f"cannot write {key}: {segment!r} is not a directory")
            current = real
        return current

    @staticmethod
    def _refuse_symlink(final, key):
        if os.path.islink(final):
            raise StorageWriteError(f"refusing to write {key}: the file is a symlink")

    def list_keys(self, prefix="", start_after=""):
        """Keys relative to the directory ("/" separators) in ascending order, as S3
        lists them: each directory's entries sorted with a "/" after directory names,
        which orders the whole tree by key. Skips this module's temporary files and
        symlinks whose target is outside the directory (or a directory above them)."""
        root = os.path.realpath(self.location.directory)
        if not os.path.isdir(root):
            raise StorageWriteError(f"{self.location.directory}: directory missing")
        want = list_prefix(self.location, prefix)
        yield from self._walk(root, root, "", want, start_after, (root,))

    def _walk(self, root, directory, rel, want, after, ancestors):
        try:
            with os.scandir(directory) as it:
                entries = []
                for entry in it:
                    if entry.name.startswith(TEMP_PREFIX):
                        continue
                    if entry.is_dir():
                        entries.append((rel + entry.name + "/", entry, True))
                    elif entry.is_file():
                        entries.append((rel + entry.name, entry, False))
        except OSError as exc:
            raise StorageWriteError(f"cannot list {rel or '/'}: {os_reason(exc)}") from None
        entries.sort(key=lambda item: item[0])
        for name, entry, is_dir in entries:
            if is_dir:
                if not (name.startswith(want) or want.startswith(name)):
                    continue
                if name <= after and not after.startswith(name):
                    continue  # every key below sorts before start_after
            elif not name.startswith(want) or name <= after:
                continue
            real = entry.path
            if entry.is_symlink():
                real = os.path.realpath(entry.path)
                if not _inside(real, root) or real in ancestors:
                    continue
            if is_dir:
                yield from self._walk(root, real, name, want, after, (*ancestors, real))
                continue
            try:
                size = os.stat(real).st_size
            except FileNotFoundError:
                continue  # removed since it was listed
            except OSError as exc:
                raise StorageWriteError(f"cannot stat {name}: {os_reason(exc)}") from None
            yield name, size


def _sync_directory(path):
    """Make the rename durable; best effort (some filesystems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
