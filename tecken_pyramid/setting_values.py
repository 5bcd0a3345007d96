"""Parsers of one setting value each (SPEC §1's grammar), used by :mod:`.settings`.

Each takes the name to blame (the ini key or environment variable the value came
from) and the raw text, and returns the typed value or raises ConfigError with
one line naming that setting.
"""

import ipaddress
import os
import re
import urllib.parse

from .rules import check_extension


class ConfigError(Exception):
    """A misconfiguration; ``str(exc)`` is the one line to print."""


def _bool(name, value):
    v = value.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise ConfigError(f"{name}: expected true/false/1/0/yes/no, got {value!r}")


def _int(name, value):
    v = value.strip()
    if not re.fullmatch(r"[0-9]+", v):
        raise ConfigError(f"{name}: expected a whole number >= 0, got {value!r}")
    return int(v)


def _seconds(name, value, positive=True):
    # Durations accept a decimal fraction ("0.5"), which lets tests shrink them;
    # SPEC's integers are a subset of what is accepted.
    v = value.strip()
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", v):
        raise ConfigError(f"{name}: expected a number of seconds, got {value!r}")
    number = float(v)
    if positive and number <= 0:
        raise ConfigError(f"{name}: must be greater than 0, got {value!r}")
    return number


def _list(value):
    return [part.strip() for part in value.split(",") if part.strip()]


def _extensions(name, value):
    exts = _list(value)
    for ext in exts:
        problem = check_extension(ext)
        if problem:
            raise ConfigError(f"{name}: {problem}, got {ext!r}")
    return tuple(dict.fromkeys(exts))


def _domains(name, value):
    """Upload-by-download hosts (SPEC §9): ``host`` (https) or ``http://HOST:PORT``."""
    entries = []
    for entry in _list(value):
        if entry.startswith("http://"):
            ok = re.fullmatch(r"http://[A-Za-z0-9.\-]+:[0-9]{1,5}", entry) is not None
        else:
            ok = re.fullmatch(r"[A-Za-z0-9.\-]+", entry) is not None
        if not ok:
            raise ConfigError(f"{name}: expected host names or http://HOST:PORT, got {entry!r}")
        entries.append(entry.lower())
    return tuple(dict.fromkeys(entries))


def _directory(name, value):
    """An existing directory, or empty for the system default (None)."""
    path = value.strip()
    if not path:
        return None
    if not os.path.isdir(path):
        raise ConfigError(f"{name}: not a directory: {path!r}")
    return os.path.abspath(path)


def _memcached(name, value):
    servers = []
    for item in _list(value):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{name}: expected comma-separated host:port, got {item!r}")
        servers.append((host.strip("[]"), int(port)))
    return tuple(servers)


def normalise_database_url(url):
    """Every PostgreSQL spelling means psycopg 3 (SPEC §8)."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _database(name, value):
    url = normalise_database_url(value.strip())
    if not (url.startswith("postgresql+psycopg://") or url.startswith("sqlite://")):
        raise ConfigError(f"{name}: expected a sqlite:// or postgresql:// URL, got {_redact(url)!r}")
    if url.startswith("postgresql+psycopg://") and len(url) <= len("postgresql+psycopg://"):
        raise ConfigError(f"{name}: the PostgreSQL URL names no host or database")
    return url


DEFAULT_METRICS_ALLOWED = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"


def _networks(name, value):
    networks = []
    for item in _list(value):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"{name}: expected comma-separated addresses or CIDRs, got {item!r}") from None
    return tuple(networks)


def _public_url(name, value):
    """``scheme://host[:port][/path]`` without query, fragment or user-info; no trailing '/'."""
    url = value.strip()
    if not url:
        return ""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
        or port == -1
        or not url.isascii()
        or re.search(r"[\x00-\x20\x7f\\\"'<>`{}|^]", url)
    ):
        raise ConfigError(f"{name}: expected http(s)://HOST[:PORT][/PATH], got {value!r}")
    return url.rstrip("/")


def _redact(url):
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)
