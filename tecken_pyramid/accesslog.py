"""The access log (SPEC §8): one JSON line per request, and the request id.

A thin WSGI middleware outside Pyramid, so that every answer is logged and
carries ``X-Request-Id`` -- the path-shape tween's JSON 404s and the 405s
included -- and so that the duration covers the whole app.

It is on the download path, so it is built to cost about 2 µs a request (py-spy
put the first version, ``json.dumps`` + ``logging.info`` + ``uuid4``, at 15 % of
a cached hit's CPU): the line is formatted with the C string escaper, request
ids are a per-process random prefix and a counter, the timestamp's text is
computed once a second, and a background thread writes the lines to stdout in
batches (every 0.5 s, and at shutdown) -- not through ``logging``, whose record
and handler machinery and locks cost more than the rest of it.
Application logs stay on stderr.

Nothing secret is logged: no headers but the user agent, no bodies, no cookies;
query values of parameters named like credentials are replaced by ``***``.
JSON escaping (``ensure_ascii``) means control characters or anything else a
client sends cannot split or forge a line.

(waitress's own "Task queue depth" warnings are rate-limited by the server
runner, :mod:`.server`.)
"""

import collections
import datetime
import functools
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


def masked_target(target):
    """Path and query as requested (percent-encoded), credential values masked."""
    path, sep, query = target.partition("?")
    if sep and query and ("=" in query):
        query = SECRET_PARAM.sub(r"\1***", query)
    return path + sep + query


@functools.lru_cache(maxsize=4)
def _second_text(second):
    return datetime.datetime.fromtimestamp(second, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _iso_utc(t):
    """ISO 8601 UTC with milliseconds; each second's text is made once."""
    second = int(t)
    return f"{_second_text(second)}.{int((t - second) * 1000):03d}+00:00"


def format_line(entry):
    """One JSON line from what a request captured (see AccessLogMiddleware)."""
    t, rid, client, method, target, status, duration, sent, agent, lookup = entry
    return (
        f'{{"time":"{_iso_utc(t)}","request_id":{json_string(rid)},"client":{json_string(client)},'
        f'"method":{json_string(method)},"path":{json_string(masked_target(target))},"status":{status},'
        f'"duration_ms":{duration * 1000:.3f},"bytes":{sent},'
        f'"user_agent":{json_string(agent[:USER_AGENT_MAX])}'
        + (f',"x_symbol_lookup":{json_string(lookup)}}}\n' if lookup is not None else "}\n")
    )


class AccessLogWriter:
    """What requests captured, formatted and written in batches by a background thread.

    A request only appends a tuple of the values it saw to a deque (atomic, no
    lock); the thread turns them into JSON lines and writes them every 0.5 s,
    sooner past 1,024 entries, and at close. So a request never waits on a
    write(2), or on a lock another thread holds across one: stdout is unbuffered
    under PYTHONUNBUFFERED=1 (common in containers), and a lock around the write
    made 8 waitress threads queue on it -- each cost about a fifth of the
    throughput in an earlier shape.
    """

    WAKE_AT = 1024

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stdout
        self._pending = collections.deque()
        self._drain_lock = threading.Lock()  # taken by the writing side only, never by a request
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = None

    def add(self, entry):
        pending = self._pending
        pending.append(entry)
        if len(pending) >= self.WAKE_AT and self._thread is not None:
            self._wake.set()

    def flush(self):
        """Write everything captured so far (the thread, close(), tests)."""
        with self._drain_lock:
            lines = []
            pop = self._pending.popleft
            try:
                while True:
                    lines.append(format_line(pop()))
            except IndexError:
                pass
            if not lines:
                return
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except (OSError, ValueError):  # stdout closed or full: never fail a request for it
                pass

    def _run(self):
        while not self._stop.is_set():
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            self.flush()

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="access-log-writer", daemon=True)
            self._thread.start()

    def close(self):
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self.flush()


class _CountingBody:
    """The app's body iterable, counting the bytes that go out; logs at close."""

    def __init__(self, iterable, done):
        self._iterable = iterable
        self._done = done
        self.sent = 0

    def __iter__(self):
        for chunk in self._iterable:
            self.sent += len(chunk)
            yield chunk

    def __getattr__(self, name):
        # Anything else is the app's iterable's (e.g. a streamed CSV's connection) --
        # but never a special name: waitress asks hasattr(app_iter, "__len__") and
        # then calls len(), which looks on the type, not on the instance.
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._iterable, name)

    def close(self):
        try:
            close = getattr(self._iterable, "close", None)
            if close is not None:
                close()
        finally:
            self._done(self.sent)


def _target(environ):
    target = environ.get("REQUEST_URI")
    if target is None:  # not waitress (WebTest): rebuild it
        query = environ.get("QUERY_STRING", "")
        target = (
            environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
        )
    return target


def _entry(environ, rid, status, started, sent, lookup):
    """What the access log keeps of one request (formatted later by the writer)."""
    return (
        time.time(), rid, environ.get("REMOTE_ADDR", ""), environ.get("REQUEST_METHOD", ""), _target(environ),
        status, time.perf_counter() - started, sent, environ.get("HTTP_USER_AGENT", ""), lookup,
    )  # fmt: skip


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
        writer = self.writer
        if writer is None:
            return body
        status, headers = seen if seen else ("500", ())
        length = lookup = None
        for name, value in headers:
            if name in _LENGTH:
                length = value
            elif name in _LOOKUP:
                lookup = value
        code = int(status[:3]) if status[:3].isdigit() else 0
        # HEAD, 204 and 304 carry no body: nothing to count, and the app's own body
        # iterable stays as it is.
        if environ.get("REQUEST_METHOD") == "HEAD" or code in (204, 304):
            writer.add(_entry(environ, rid, code, started, 0, lookup))
            return body
        if length is not None and length.isdigit():
            writer.add(_entry(environ, rid, code, started, int(length), lookup))
            return body
        # No Content-Length (a streamed body): log when the server closes it.
        return _CountingBody(body, lambda sent: writer.add(_entry(environ, rid, code, started, sent, lookup)))


_LENGTH = frozenset({"Content-Length", "content-length", "CONTENT-LENGTH"})
_LOOKUP = frozenset({"X-Symbol-Lookup", "x-symbol-lookup", "X-SYMBOL-LOOKUP"})


def wrap(app, settings, stream=None):
    """The WSGI app that pserve serves: the access log around Pyramid."""
    writer = AccessLogWriter(stream) if settings.access_log else None
    middleware = AccessLogMiddleware(app, writer)
    registry = getattr(app, "registry", None)
    if registry is not None:
        registry.access_log = writer
    return middleware
