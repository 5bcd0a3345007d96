"""The traversal tree for downloads: Root -> [try] -> Symbol -> DebugId -> SymbolFile.

Pure: ``__getitem__`` only builds nodes (shape checks, no I/O). The path shape
rules that depend on the raw ``PATH_INFO`` (trailing slash, ``//``, dot segments)
are decided earlier by :mod:`.tweens`, before Pyramid's traverser normalises them.
"""

import re

from .routes import RESERVED  # first segments of the routes, and "upload" (SPEC §2, §9)

HEX = re.compile(r"[0-9A-Fa-f]+\Z")


class Root:
    __name__ = ""
    __parent__ = None
    is_try = False

    def __init__(self, request=None):
        pass

    def __getitem__(self, name):
        if name in RESERVED:
            raise KeyError(name)
        if name == "try":
            return TryRoot(self)
        return Symbol(name, self)


class TryRoot:
    """``/try/...``: the regular locations, then the try location last."""

    __name__ = "try"
    is_try = True

    def __init__(self, parent):
        self.__parent__ = parent

    def __getitem__(self, name):
        return Symbol(name, self)


class Symbol:
    def __init__(self, name, parent):
        self.__name__ = name
        self.__parent__ = parent
        self.is_try = parent.is_try

    def __getitem__(self, name):
        if not HEX.match(name):
            raise KeyError(name)
        return DebugId(name, self)


class DebugId:
    def __init__(self, name, parent):
        self.__name__ = name
        self.__parent__ = parent
        self.is_try = parent.is_try

    def __getitem__(self, name):
        return SymbolFile(name, self)


class SymbolFile:
    """The leaf: one requested file. No ``__getitem__``, so deeper paths 404."""

    def __init__(self, name, parent):
        self.__name__ = name
        self.__parent__ = parent
        self.is_try = parent.is_try
        self.filename = name
        self.debugid = parent.__name__  # as requested; keys upper-case it
        self.symbol = parent.__parent__.__name__


def root_factory(request):
    return Root(request)


def download_shape(segments):
    """True when ``segments`` (of the raw decoded path) form a download path (SPEC §2)."""
    if segments and segments[0] == "try":
        segments = segments[1:]
        if len(segments) != 3:
            return False
    elif len(segments) != 3:
        return False
    for segment in segments:
        if segment in ("", ".", "..") or segment.startswith("@@"):
            return False
    return bool(HEX.match(segments[1]))
