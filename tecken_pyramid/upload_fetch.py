"""Upload by download (SPEC §9, form field ``url=``): an archive fetched from a listed host.

Pure: a URL and the allow list in, a temporary file (:class:`Fetched`) out, no Pyramid,
database or storage. Safer than Tecken (``reference/tecken-upload-behaviour.md`` §11), whose
host check reads ``netloc.split(":")[0]`` and whose redirects go unchecked:

* every URL, the first and each redirect hop's (relative ``Location`` resolved against the URL
  it came from, at most :data:`MAX_REDIRECTS`), is checked by :func:`check_url`: the host is
  ``urlsplit().hostname``; user-info (``user@``, ``:@``) is refused before anything else; a
  listed ``host`` is ``https`` on port 443 only and must resolve to public addresses only
  (no loopback, private, link-local, multicast, reserved or unspecified one, IPv4-mapped IPv6
  included); an ``http://HOST:PORT`` entry allows exactly that scheme, host and port, on any
  address (how tests and internal mirrors are listed);
* the connection goes to an address checked here, never to a second DNS answer (no DNS
  rebinding): urllib3 is pointed at the IP, with the ``Host`` header and, for https, the SNI
  name and certificate check set to the host name;
* the body streams to a temporary file in ``tempdir``, counted (``max_bytes``) and hashed.

:class:`FetchError` carries the status for the client: 400 for a URL refused or failing for
good (a 4xx from the source), 503 for a temporary failure (connection error, timeout, 5xx or
429 from the source) so that clients retry.
"""

import contextlib
import dataclasses
import hashlib
import ipaddress
import os
import posixpath
import socket
import tempfile
import urllib.parse

import urllib3
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.exceptions import HTTPError as TransportError
from urllib3.exceptions import TimeoutError as TransportTimeout

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
USER_AGENT = "tecken-pyramid (upload by download)"
CA_CERTS = None  # a CA bundle for https; None: the system's trust store
_SAFE = "/%:@!$&'()*+,;=~-._"  # kept as they are when the path and query are re-quoted


class FetchError(Exception):
    """A refused or failed download: ``status`` 400 or 503; ``str(exc)`` for the client."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class AllowList:
    hosts: frozenset[str] = frozenset()  # https on port 443, public addresses only
    endpoints: frozenset[tuple[str, int]] = frozenset()  # (host, port) of http://HOST:PORT, any address


def parse_allowed(domains):
    """``TECKEN_UPLOAD_BY_DOWNLOAD_DOMAINS`` entries: ``host`` or ``http://HOST:PORT``
    (ValueError for anything else)."""
    hosts, endpoints = set(), set()
    for raw in domains:
        entry = raw.strip().lower()
        if not entry:
            continue
        if "://" not in entry:
            if any(c in entry for c in "/:@?#[] "):
                raise ValueError(f"expected a host name or http://HOST:PORT, got {raw!r}")
            hosts.add(entry)
            continue
        parts = urllib.parse.urlsplit(entry)
        try:
            port = parts.port
        except ValueError:
            port = None
        extra = parts.username is not None or parts.password is not None or parts.path or parts.query
        if parts.scheme != "http" or not parts.hostname or port is None or extra or parts.fragment:
            raise ValueError(f"expected a host name or http://HOST:PORT, got {raw!r}")
        endpoints.add((parts.hostname, port))
    return AllowList(frozenset(hosts), frozenset(endpoints))


@dataclasses.dataclass
class Fetched:
    path: str  # the temporary file; the caller closes it
    name: str  # the final URL path's basename, ending with .zip
    size: int
    sha256: str
    url: str  # as given
    redirect_urls: list[str]  # each redirect's target, absolute

    def close(self):
        """Remove the temporary file (idempotent)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


@dataclasses.dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str  # lower-cased
    port: int
    request_target: str  # path and query as sent
    name: str  # the path's basename
    explicit: bool  # matched an http://HOST:PORT entry


def check_url(url, allowed):
    """The URL's :class:`Target` if the rules allow it (no network), else FetchError 400."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchError(400, "Enter a valid URL.") from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise FetchError(400, "A URL to download from must not contain user information (user@host)")
    scheme, host = parts.scheme.lower(), parts.hostname
    if not host or not scheme:
        raise FetchError(400, "Enter a valid URL.")
    port = port if port is not None else DEFAULT_PORTS.get(scheme)
    explicit = scheme == "http" and (host, port) in allowed.endpoints
    if not explicit:
        if scheme != "https":
            raise FetchError(400, "Insecure URL")
        if host not in allowed.hosts:
            raise FetchError(400, f"Not an allowed domain ({host!r}) to download from.")
        if port != 443:
            raise FetchError(400, f"Port {port} is not allowed for {host!r} (https on port 443 only)")
    target = urllib.parse.quote(parts.path or "/", safe=_SAFE)
    if parts.query:
        target += "?" + urllib.parse.quote(parts.query, safe=_SAFE + "?")
    name = urllib.parse.unquote(posixpath.basename(parts.path))
    return Target(url, scheme, host, port, target, name, explicit)


def refused_address(ip):
    """True for an address an upload may not be fetched from (unless explicitly listed)."""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def resolve(target):
    """The target's addresses, every one checked (FetchError 400 if any is refused)."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise FetchError(503, f"Cannot resolve {target.host!r} ({exc})") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not target.explicit and refused_address(ip):
            raise FetchError(400, f"{target.host!r} resolves to {ip}, not a public address: refused")
    if not addresses:
        raise FetchError(503, f"Cannot resolve {target.host!r}")
    return addresses


def _open(target, address, timeout):
    """A GET of ``target`` on a connection to ``address`` (headers read, body not yet)."""
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address,
            target.port,
            timeout=timeout,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=CA_CERTS,
            server_hostname=target.host,  # SNI ...
            assert_hostname=target.host,  # ... and the certificate checked for the name, not the IP
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, target.port, timeout=timeout, retries=False)
    host = f"[{target.host}]" if ":" in target.host else target.host  # an IPv6 literal
    headers = {
        "Host": host if target.port == DEFAULT_PORTS[target.scheme] else f"{host}:{target.port}",
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "identity",
    }
    try:
        response = pool.urlopen(
            "GET",
            target.request_target,
            headers=headers,
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,
            decode_content=False,
        )
    except BaseException:
        pool.close()
        raise
    return pool, response


def _connect(target, timeout):
    addresses = resolve(target)
    for i, address in enumerate(addresses):
        try:
            return _open(target, address, timeout)
        except ConnectTimeoutError:  # NewConnectionError too: try the next address
            if i == len(addresses) - 1:
                raise


def _check_status(status, url):
    if status in (408, 429) or status >= 500:
        raise FetchError(503, f"{url} errored ({status})")
    if 400 <= status < 500:
        raise FetchError(400, f"{url} can't be found ({status})")
    if status != 200:
        raise FetchError(400, f"non-200 status code ({status}) when retrieving {url}")


def _save(response, target, tempdir, max_bytes):
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(400, f"{target.url} is larger than the limit of {max_bytes} bytes")
    path = None
    sha256, size = hashlib.sha256(), 0
    try:
        fd, path = tempfile.mkstemp(prefix="tecken-download-", suffix=".zip", dir=tempdir)
        with os.fdopen(fd, "wb") as fp:
            for chunk in response.stream(CHUNK, decode_content=False):
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(400, f"{target.url} is larger than the limit of {max_bytes} bytes")
                fp.write(chunk)
                sha256.update(chunk)
    except BaseException as exc:
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if isinstance(exc, OSError):  # the disk, not the source (urllib3 wraps socket errors)
            raise FetchError(503, f"The download could not be written to a temporary file ({exc})") from None
        raise
    return path, size, sha256.hexdigest()


def fetch(url, allowed, *, tempdir=None, max_bytes, connect_timeout=5.0, read_timeout=60.0):
    """Download ``url`` (checked, and every redirect hop) into a temporary file."""
    timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
    redirect_urls = []
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        target = check_url(current, allowed)
        pool = response = None
        try:
            pool, response = _connect(target, timeout)
            if response.status in REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise FetchError(400, f"{current} redirects ({response.status}) without a Location")
                if hop == MAX_REDIRECTS:
                    raise FetchError(400, f"Too many redirects trying to open {url}")
                current = urllib.parse.urljoin(current, location)
                redirect_urls.append(current)
                continue
            _check_status(response.status, current)
            if not target.name.lower().endswith(".zip"):
                raise FetchError(
                    400, f'Unrecognized archive file extension "{posixpath.splitext(target.name)[1]}"'
                )
            path, size, sha256 = _save(response, target, tempdir, max_bytes)
            return Fetched(path, target.name, size, sha256, url, redirect_urls)
        except (TransportError, OSError) as exc:
            # NewConnectionError (refused, unreachable) is a ConnectTimeoutError subclass: not a timeout
            if isinstance(exc, TransportTimeout) and not isinstance(exc, NewConnectionError):
                raise FetchError(503, f"Timed out trying to open {current}") from None
            raise FetchError(
                503, f"ConnectionError trying to open {current} ({type(exc).__name__})"
            ) from None
        finally:
            if response is not None:
                response.close()
            if pool is not None:
                pool.close()
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
