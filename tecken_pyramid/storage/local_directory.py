"""Local-directory locations (SPEC §3): a key exists when it names a regular file
whose real path (symlinks resolved) is inside the directory; found keys redirect to
``/__files__/{n}/{key}`` on this app."""

import os

from ..locations import LOCAL, quote_key
from .answers import FOUND, NOT_FOUND, Answer


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
