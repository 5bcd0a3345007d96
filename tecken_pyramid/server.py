"""The project's own ``paste.server_runner`` around waitress (SPEC §1).

``pserve INI http_port=N`` passes ``http_port`` in ``global_conf``; no ini file
mentions it (a value there would win over the command line, and a bare
``%(http_port)s`` would crash ``pserve INI``).

Besides passing the ``[server:main]`` options on (strings; waitress parses them),
the runner hardens waitress in two ways:

- request framing (RFC 9112 §6.1): a request with both ``Transfer-Encoding`` and
  ``Content-Length`` (or, on HTTP/1.0, any ``Transfer-Encoding``) is answered 400
  with ``Connection: close`` and the connection is closed. waitress alone would
  read the chunked body and then parse the bytes ``Content-Length`` counted as a
  second request on the same connection (request smuggling behind a proxy that
  framed the message by ``Content-Length``). It is decided in the HTTP parser,
  before any WSGI code runs, so it holds on every path.
- upload bodies (SPEC §9): waitress buffers a whole body before the app runs, and
  refuses one over its ``max_request_body_size`` with a plain-text 413. The runner
  raises that limit above ``TECKEN_UPLOAD_MAX_BYTES``, and a ``POST /upload`` whose
  ``Content-Length`` is over ours reaches the app at once with no body read and the
  connection marked to close: the view answers the JSON 413 before any byte of the
  body is taken in (the unread bytes could not be parsed as a next request).
- the event loop: ``asyncore_use_poll`` (needed past 1,024 descriptors) makes
  waitress call ``select.poll()``, which on some Linux hosts is pathologically slow
  (measured on this project's 2-core machines, kernel 6.18: a fixed-302 app fell from
  7,300 to 700 req/s). The runner keeps waitress's loop and its semantics (what is
  watched is decided afresh each turn) but waits on ``epoll`` instead where Linux has it.
- one send per small answer, and a cheaper header: waitress sends a response's
  header as soon as the app gives its first body chunk, then the chunk, each at once
  (``send_bytes`` is 1): two ``send(2)`` calls and two TCP segments for every 404 and
  its one-line body. The runner's task hands the channel both as one write, the same
  bytes (a fixed 404 with a 30-byte body: 6,700-8,300 req/s on waitress alone,
  9,100-10,900 here), and builds the header as waitress does with each name's
  capitalisation and each second's Date made once (5-10 % more again).
- file descriptors: ``connection_limit`` connections need as many descriptors; the
  soft ``RLIMIT_NOFILE`` is raised towards the hard limit so that accepting does
  not fail with EMFILE first.
"""

import errno
import functools
import logging
import operator
import select
import signal
import sys
import time

import waitress
import waitress.server
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.task import WSGITask
from waitress.utilities import build_http_date

log = logging.getLogger(__name__)

# Descriptors per connection beyond the socket (waitress may spill a large body or
# answer to a temporary file) plus the process's own (database, memcached, storage).
_FD_RESERVE = 256


class StrictFramingParser(HTTPRequestParser):
    """waitress's parser, refusing ambiguous message framing (RFC 9112 §6.1, §6.3)."""

    # Set by serve() from TECKEN_UPLOAD_MAX_BYTES; None: no upload limit here.
    upload_max_bytes = None

    def parse_header(self, header_plus):
        super().parse_header(header_plus)
        self._refuse_oversize_upload()
        # waitress pops TRANSFER_ENCODING for HTTP/1.1 (and sets ``chunked``); for
        # HTTP/1.0 it leaves it in the headers and frames the body by Content-Length.
        # A ParsingError becomes waitress's own 400, which closes the connection
        # and drops whatever else the client pipelined on it.
        if self.chunked and "CONTENT_LENGTH" in self.headers:
            raise ParsingError("Both Transfer-Encoding and Content-Length are present")
        if "TRANSFER_ENCODING" in self.headers:
            raise ParsingError("Transfer-Encoding is not allowed in an HTTP/1.0 request")

    def _refuse_oversize_upload(self):
        limit = self.upload_max_bytes
        if limit is None or self.command != "POST" or self.path not in UPLOAD_PATHS:
            return
        if self.chunked or self.content_length <= limit:
            return
        # No body receiver: the request is complete now, with an empty body; the view
        # sees Content-Length over the limit and answers 413; the connection closes.
        self.body_rcv = None
        self.content_length = 0  # the header stays for the app; waitress reads nothing
        self.expect_continue = False
        self.headers["CONNECTION"] = "close"
        self.connection_close = True


UPLOAD_PATHS = frozenset({"/upload", "/upload/"})


class _GatheredWrites:
    """Stands in for a channel during one ``Task.write``: keeps what it writes."""

    __slots__ = ("channel", "server", "parts")

    def __init__(self, channel):
        self.channel = channel
        self.server = channel.server  # read by build_response_header
        self.parts = []

    def write_soon(self, data):
        self.parts.append(data)
        return len(data)

    def __getattr__(self, name):
        return getattr(self.channel, name)


@functools.lru_cache(maxsize=256)
def _canonical_name(name):
    """waitress's capitalisation of a response header name, made once per name."""
    return "-".join([part.capitalize() for part in name.split("-")])


@functools.lru_cache(maxsize=4)
def _http_date(second):
    return build_http_date(second)


class RunnerTask(WSGITask):
    """waitress's WSGI task, with the same bytes on the wire for less work.

    - The header goes out in the same write as the first body chunk. waitress's own
      ``write`` makes them two channel writes, each sent at once; here that first
      ``write`` runs against a stand-in that gathers both, and the bytes go to the
      channel in one write. The stand-in is the task's own attribute for the length
      of the call (a task runs on one thread), so nothing else sees it. A file
      wrapper's buffer, an empty chunk and every later chunk take waitress's path.
    - ``build_response_header`` is waitress's, line for line, but each header name's
      capitalisation and each second's ``Date`` text are made once: 0.8 µs where
      waitress spends 5.2 for a download answer's headers (timeit), about half of
      building the header.
      tests/functional/test_server_writes.py compares the bytes with waitress's own.
    """

    def write(self, data):
        if self.wrote_header or not data or type(data) is not bytes:
            return super().write(data)
        channel = self.channel
        gathered = _GatheredWrites(channel)
        self.channel = gathered
        try:
            super().write(data)
        finally:
            self.channel = channel
        if gathered.parts:
            channel.write_soon(b"".join(gathered.parts))

    def build_response_header(self):
        # waitress 3.0's Task.build_response_header; only the two marked lines differ.
        version = self.version
        connection = self.request.headers.get("CONNECTION", "").lower()
        response_headers = []
        content_length_header = None
        date_header = None
        server_header = None

        for headername, headerval in self.response_headers:
            headername = _canonical_name(headername)  # differs: made once per name
            if headername == "Content-Length":
                if self.has_body:
                    content_length_header = headerval
                else:
                    continue
            if headername == "Date":
                date_header = headerval
            if headername == "Server":
                server_header = headerval
            response_headers.append((headername, headerval))

        self.response_headers = response_headers

        if content_length_header is None and self.content_length is not None and self.has_body:
            content_length_header = str(self.content_length)
            self.response_headers.append(("Content-Length", content_length_header))

        if version == "1.0":
            if connection == "keep-alive":
                if not content_length_header:
                    self.set_close_on_finish()
                else:
                    self.response_headers.append(("Connection", "Keep-Alive"))
            else:
                self.set_close_on_finish()
        elif version == "1.1":
            if connection == "close":
                self.set_close_on_finish()
            if not content_length_header:
                if self.has_body:
                    self.response_headers.append(("Transfer-Encoding", "chunked"))
                    self.chunked_response = True
                if not self.close_on_finish:
                    self.set_close_on_finish()
        else:
            raise AssertionError("neither HTTP/1.0 or HTTP/1.1")

        ident = self.channel.server.adj.ident
        if not server_header:
            if ident:
                self.response_headers.append(("Server", ident))
        else:
            self.response_headers.append(("Via", ident or "waitress"))

        if not date_header:
            # differs: each second's text made once
            self.response_headers.append(("Date", _http_date(int(self.start_time))))

        first_line = f"HTTP/{self.version} {self.status}"
        next_lines = [f"{name}: {value}" for name, value in sorted(self.response_headers, key=_HEADER_NAME)]
        return ("\r\n".join([first_line, *next_lines]) + "\r\n\r\n").encode("latin-1")


_HEADER_NAME = operator.itemgetter(0)  # a stable sort by name keeps same-named headers in order


class StrictFramingChannel(HTTPChannel):
    parser_class = StrictFramingParser
    task_class = RunnerTask


def epoll_once(timeout, socket_map):
    """One turn of waitress's ``poll2`` on a fresh epoll: the same flags per channel
    (readable, writable unless accepting), the same dispatch (``wasyncore.readwrite``)."""
    if not socket_map:
        return
    poller = select.epoll(len(socket_map) + 1)
    try:
        for fd, obj in list(socket_map.items()):
            flags = 0
            if obj.readable():
                flags |= select.EPOLLIN | select.EPOLLPRI
            if obj.writable() and not obj.accepting:
                flags |= select.EPOLLOUT
            if flags:
                poller.register(fd, flags)
        try:
            ready = poller.poll(-1 if timeout is None else timeout)
        except OSError as exc:
            if exc.errno != errno.EINTR:
                raise
            ready = []
    finally:
        poller.close()
    for fd, flags in ready:
        obj = socket_map.get(fd)
        if obj is not None:
            wasyncore.readwrite(obj, flags)


class EpollAsyncore:
    """waitress's ``wasyncore`` (its servers' ``asyncore`` attribute), with ``loop``
    waiting on epoll when ``use_poll`` is asked for; everything else is wasyncore's."""

    def __getattr__(self, name):
        return getattr(wasyncore, name)

    @staticmethod
    def loop(timeout=30.0, use_poll=False, map=None, count=None):
        if not use_poll:
            return wasyncore.loop(timeout=timeout, use_poll=False, map=map, count=count)
        socket_map = wasyncore.socket_map if map is None else map
        while socket_map and (count is None or count > 0):
            epoll_once(timeout, socket_map)
            if count is not None:
                count -= 1


def create_server(app, upload_max_bytes=None, **kw):
    """``waitress.server.create_server`` with the project's channel on every listener
    (its parser answers an oversize upload's 413 early when ``upload_max_bytes`` is set)."""
    server = waitress.server.create_server(app, **kw)
    channel = StrictFramingChannel
    if upload_max_bytes is not None:
        parser = type("UploadLimitParser", (StrictFramingParser,), {"upload_max_bytes": upload_max_bytes})
        channel = type("UploadLimitChannel", (StrictFramingChannel,), {"parser_class": parser})
    for dispatcher in list(server._map.values()):
        if isinstance(dispatcher, waitress.server.BaseWSGIServer):
            dispatcher.channel_class = channel
    if hasattr(select, "epoll"):
        server.asyncore = EpollAsyncore()
    return server


# Room for the multipart framing around an archive of the largest allowed size.
_BODY_MARGIN = 1024 * 1024


def upload_limits(kw, settings):
    """The server options for uploads: waitress's body limit above ours, and ours for
    the parser's early 413."""
    limit = settings.upload_max_bytes
    current = int(kw.get("max_request_body_size", 1073741824))
    return {"max_request_body_size": str(max(current, limit + _BODY_MARGIN)), "upload_max_bytes": limit}


def raise_open_files_limit(connection_limit):
    """Raise the soft RLIMIT_NOFILE so that ``connection_limit`` connections fit (best effort)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    try:
        needed = int(connection_limit) + _FD_RESERVE
    except ValueError:
        return  # waitress refuses the value itself
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):  # pragma: no cover - a restricted environment
            target = soft
    if target < needed:
        log.warning(
            "open files limit %s is below connection_limit %s + %s: raise the hard limit (ulimit -Hn)",
            target,
            connection_limit,
            _FD_RESERVE,
        )


class RateLimitFilter(logging.Filter):
    """Let one record through per ``interval`` seconds; say how many were folded in."""

    def __init__(self, interval=60.0):
        super().__init__()
        self.interval = interval
        self._next = 0.0
        self._suppressed = 0

    def filter(self, record):
        now = time.monotonic()
        if now < self._next:
            self._suppressed += 1
            return False
        if self._suppressed:
            record.msg = (
                f"{record.msg} ({self._suppressed} similar warnings in the last {self.interval:.0f} s)"
            )
            self._suppressed = 0
        self._next = now + self.interval
        return True


def quiet_waitress_queue(interval=60.0):
    """waitress warns "Task queue depth is N" for every request that waits for a
    thread (about one line per two requests under load): one line a minute."""
    queue_logger = logging.getLogger("waitress.queue")
    if not any(isinstance(f, RateLimitFilter) for f in queue_logger.filters):
        queue_logger.addFilter(RateLimitFilter(interval))


def serve(app, global_conf, **kw):
    port = int(global_conf.get("http_port", "6543"))
    registry = getattr(app, "registry", None)

    def stop(signum, _frame):
        log.info("signal %s: flushing and stopping", signum)
        if registry is not None:
            from . import shutdown

            shutdown(registry)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    kw.setdefault("ident", "tecken-pyramid")
    quiet_waitress_queue()
    raise_open_files_limit(kw.get("connection_limit", 100))
    if registry is not None:
        kw.update(upload_limits(kw, registry.tecken))
    waitress.serve(app, port=port, _server=create_server, **kw)
