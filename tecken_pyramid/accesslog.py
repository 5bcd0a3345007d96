"""The access log (SPEC §8): one JSON line per request, and the request id.

A thin WSGI middleware outside Pyramid, so that every answer is logged and
carries ``X-Request-Id`` -- the path-shape tween's JSON 404s and the 405s
included -- and so that the duration covers the whole app.

It is on the download path, so it is built to cost about 2 µs a request (py-spy
put the first version, ``json.dumps`` + ``logging.info`` + ``uuid4``, at 15 % of
a cached hit's CPU): the line is formatted with the C string escaper, request
ids are a per-process random prefix and a counter, the timestamp's text is
computed once a second, and lines go to a buffered stream (stdout) under a lock,
flushed by a background thread every 0.5 s and at shutdown -- not through
``logging``, whose record and handler machinery cost more than the rest of it.
Application logs stay on stderr.

Nothing secret is logged: no headers but the user agent, no bodies, no cookies;
query values of parameters named like credentials are replaced by ``***``.
JSON escaping (``ensure_ascii``) means control characters or anything else a
client sends cannot split or forge a line.

waitress's "Task queue depth is N" warning (one per queued request under load)
is rate-limited here to one line a minute saying how many were folded in.
"""

import datetime
import itertools
import logging
import os
import re
import sys
import threading
import time
from json.encoder import encode_basestring_ascii as json_string

log = logging.getLogger(__name__)

VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
SECRET_PARAM = re.compile(r"((?:^|&)[^=&]*(?:token|password|secret|passwd|auth)[^=&]*=)[^&]*", re.IGNORECASE)
USER_AGENT_MAX = 512
FLUSH_SECONDS = 0.5

# Generated request ids: unique per process (random prefix) and cheap (a counter).
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


def request_id(environ):
    incoming = environ.get("HTTP_X_REQUEST_ID")
    if incoming and VALID_REQUEST_ID.fullmatch(incoming):
        return incoming
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def logged_target(environ):
    """Path and query as requested (percent-encoded), credentials masked."""
    target = environ.get("REQUEST_URI")
    if target is None:  # not waitress (WebTest): rebuild it
        query = environ.get("QUERY_STRING", "")
        target = (
            environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
        )
    path, sep, query = target.partition("?")
    if sep and query and ("=" in query):
        query = SECRET_PARAM.sub(r"\1***", query)
    return path + sep + query


class _Clock:
    """ISO 8601 UTC timestamps with milliseconds; the seconds' text made once a second."""

    def __init__(self):
        self._second = None
        self._text = ""

    def now(self):
        t = time.time()
        second = int(t)
        if second != self._second:
            self._text = datetime.datetime.fromtimestamp(second, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        return f"{self._text}.{int((t - second) * 1000):03d}+00:00"


class AccessLogWriter:
    """Lines to a buffered stream under a lock, flushed every 0.5 s and at close."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stdout
        self.clock = _Clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def write(self, environ, rid, status, lookup, sent, duration):
        line = (
            f'{{"time":"{self.clock.now()}","request_id":{json_string(rid)},'
            f'"client":{json_string(environ.get("REMOTE_ADDR", ""))},'
            f'"method":{json_string(environ.get("REQUEST_METHOD", ""))},'
            f'"path":{json_string(logged_target(environ))},"status":{status},'
            f'"duration_ms":{duration * 1000:.3f},"bytes":{sent},'
            f'"user_agent":{json_string(environ.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX])}'
            + (f',"x_symbol_lookup":{json_string(lookup)}}}\n' if lookup is not None else "}\n")
        )
        with self._lock:
            try:
                self.stream.write(line)
            except (OSError, ValueError):  # stdout closed or full: never fail a request for it
                pass

    def flush(self):
        with self._lock:
            try:
                self.stream.flush()
            except (OSError, ValueError):
                pass

    def _run(self):
        while not self._stop.wait(FLUSH_SECONDS):
            self.flush()

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="access-log-flush", daemon=True)
            self._thread.start()

    def close(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self.flush()


class _CountingBody:
    """The app's body iterable, counting the bytes that go out."""

    def __init__(self, iterable, done):
        self._iterable = iterable
        self._done = done
        self.sent = 0

    def __iter__(self):
        for chunk in self._iterable:
            self.sent += len(chunk)
            yield chunk

    def close(self):
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        finally:
            self._done(self.sent)


class AccessLogMiddleware:
    def __init__(self, app, writer=None):
        self.app = app
        self.registry = getattr(app, "registry", None)
        self.writer = writer  # None: the access log is off (X-Request-Id still echoed)

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        rid = request_id(environ)
        environ["tecken.request_id"] = rid
        seen = []

        def start(status, headers, exc_info=None):
            headers.append(("X-Request-Id", rid))
            seen[:] = (status, headers)
            return start_response(status, headers, exc_info)

        body = self.app(environ, start)
        if self.writer is None:
            return body
        status, headers = seen if seen else ("500", ())
        length = lookup = None
        for name, value in headers:
            lower = name.lower()
            if lower == "content-length":
                length = value
            elif lower == "x-symbol-lookup":
                lookup = value
        code = int(status[:3]) if status[:3].isdigit() else 0
        if environ.get("REQUEST_METHOD") == "HEAD":
            self.writer.write(environ, rid, code, lookup, 0, time.perf_counter() - started)
            return body
        if length is not None and length.isdigit():
            self.writer.write(environ, rid, code, lookup, int(length), time.perf_counter() - started)
            return body

        # No Content-Length (a streamed body): log when the server closes it.
        def done(sent):
            self.writer.write(environ, rid, code, lookup, sent, time.perf_counter() - started)

        return _CountingBody(body, done)


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
    queue_logger = logging.getLogger("waitress.queue")
    if not any(isinstance(f, RateLimitFilter) for f in queue_logger.filters):
        queue_logger.addFilter(RateLimitFilter(interval))


def wrap(app, settings, stream=None):
    """The WSGI app that pserve serves: the access log around Pyramid."""
    quiet_waitress_queue()
    writer = AccessLogWriter(stream) if settings.access_log else None
    middleware = AccessLogMiddleware(app, writer)
    registry = getattr(app, "registry", None)
    if registry is not None:
        registry.access_log = writer
    return middleware
