"""Absolute URLs of this application, never shaped by a raw ``Host`` header (SPEC §8).

The base is ``TECKEN_PUBLIC_URL`` when it is set; otherwise ``scheme://host[:port]``
from a ``Host`` that is a valid host name, IPv4 address or ``[IPv6]`` address with
an optional numeric port. Any other ``Host`` raises :class:`BadHost`, which the
error views answer with a 400 (so a hostile ``Host`` can neither change the shape
of a ``Location`` nor inject into it).

Used by the console's redirects, the home page and the local-directory download
redirects (only those: S3 redirects never look at the Host). Cheap enough for the
download path: an attribute read when ``TECKEN_PUBLIC_URL`` is set, else a
dictionary lookup per known Host.
"""

import ipaddress
import re

# host name (IPv4 included) or [IPv6], then an optional port of 1-5 digits.
_HOST = re.compile(
    r"(?:(?P<name>[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?)"
    r"|\[(?P<ipv6>[0-9A-Fa-f:.]{2,45})\])"
    r"(?::(?P<port>[0-9]{1,5}))?\Z"
)
_SCHEMES = frozenset({"http", "https"})
MAX_HOST = 261  # 253 characters of name, ':' and a port


class BadHost(ValueError):
    """The request's Host cannot be used to build an absolute URL (answered 400)."""


def valid_host(host):
    """True for ``host[:port]`` with a host name, IPv4 or ``[IPv6]`` and a port <= 65535."""
    if not host or len(host) > MAX_HOST or not host.isascii():
        return False
    m = _HOST.match(host)
    if m is None:
        return False
    if m.group("port") is not None and int(m.group("port")) > 65535:
        return False
    if m.group("ipv6") is not None:
        try:
            ipaddress.IPv6Address(m.group("ipv6"))
        except ValueError:
            return False
    return True


# Bases already built from a valid Host, so the download path runs the regular
# expression once per distinct Host, not once per redirect. Bounded: hostile Hosts
# cannot grow it (once full, new Hosts are simply checked every time).
_BASES = {}
_BASES_MAX = 256


def _base_from_host(environ):
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST")
    if host is None:  # HTTP/1.0 without Host: the server's own name (configuration, not input)
        host = f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}".rstrip(":")
    key = (scheme, host)
    base = _BASES.get(key)
    if base is None:
        if scheme not in _SCHEMES or not valid_host(host):
            raise BadHost(host)
        base = f"{scheme}://{host}"
        if len(_BASES) < _BASES_MAX:
            _BASES[key] = base
    return base


def application_url(request):
    """``scheme://host[:port]`` (or TECKEN_PUBLIC_URL, which may carry a path), no trailing '/'.

    Raises BadHost when TECKEN_PUBLIC_URL is unset and the Host header is not valid.
    """
    return request.registry.tecken.public_url or _base_from_host(request.environ)


def absolute_url(request, path):
    """The absolute URL of a local, ASCII ``path`` (starting with '/'), for a Location."""
    return application_url(request) + path
