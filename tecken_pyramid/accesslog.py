"""The access log (SPEC §8): one JSON line per request, and the request id.

A thin WSGI middleware outside Pyramid, so that every answer is logged and
carries ``X-Request-Id`` -- the path-shape tween's JSON 404s and the 405s
included -- and so that the duration covers the whole app. It is on the download
path, so it does little: no WebOb objects, the byte count read from
``Content-Length`` when the app set one (the body iterable is wrapped only when
it did not, e.g. the streamed CSV), one ``json.dumps`` and one logging call.

Lines go to the ``tecken_pyramid.access`` logger; the ini files give it its own
handler and a ``%(message)s`` format so that each line is plain JSON. Nothing
secret is logged: no headers but the user agent, no bodies, no cookies; query
values of parameters that look like credentials are replaced by ``***``.

waitress's "Task queue depth is N" warning (one per queued request under load)
is rate-limited here to one line a minute saying how many were folded in.
"""

import datetime
import json
import logging
import re
import time
import uuid

access_log = logging.getLogger("tecken_pyramid.access")

VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
SECRET_PARAM = re.compile(r"((?:^|&)[^=&]*(?:token|password|secret|passwd|auth)[^=&]*=)[^&]*", re.IGNORECASE)
USER_AGENT_MAX = 512


def request_id(environ):
    incoming = environ.get("HTTP_X_REQUEST_ID")
    if incoming and VALID_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def logged_target(environ):
    """Path and query as requested (percent-encoded), credentials masked."""
    target = environ.get("REQUEST_URI")
    if target is None:  # not waitress (WebTest): rebuild it
        query = environ.get("QUERY_STRING", "")
        target = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
    path, sep, query = target.partition("?")
    if sep and query and ("=" in query):
        query = SECRET_PARAM.sub(r"\1***", query)
    return path + sep + query


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
    def __init__(self, app, enabled=True, logger=access_log):
        self.app = app
        self.registry = getattr(app, "registry", None)
        self.enabled = enabled
        self.logger = logger

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        rid = request_id(environ)
        environ["tecken.request_id"] = rid
        seen = {}

        def start(status, headers, exc_info=None):
            headers.append(("X-Request-Id", rid))
            seen["status"] = status
            seen["headers"] = headers
            return start_response(status, headers, exc_info)

        body = self.app(environ, start)
        if not self.enabled:
            return body
        length = None
        lookup = None
        for name, value in seen.get("headers", ()):
            lower = name.lower()
            if lower == "content-length":
                length = value
            elif lower == "x-symbol-lookup":
                lookup = value
        if environ.get("REQUEST_METHOD") == "HEAD":
            self._write(environ, rid, seen, lookup, 0, started)
            return body
        if length is not None and length.isdigit():
            self._write(environ, rid, seen, lookup, int(length), started)
            return body
        # No Content-Length (a streamed body): log when the server closes it.
        return _CountingBody(body, lambda sent: self._write(environ, rid, seen, lookup, sent, started))

    def _write(self, environ, rid, seen, lookup, sent, started):
        status = seen.get("status", "500")
        entry = {
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
            "request_id": rid,
            "client": environ.get("REMOTE_ADDR", ""),
            "method": environ.get("REQUEST_METHOD", ""),
            "path": logged_target(environ),
            "status": int(status[:3]) if status[:3].isdigit() else 0,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            "bytes": sent,
            "user_agent": environ.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX],
        }
        if lookup is not None:
            entry["x_symbol_lookup"] = lookup
        # json.dumps escapes control characters and (ensure_ascii) everything beyond
        # ASCII: a line can never be split or forged by what a client sent.
        self.logger.info(json.dumps(entry, separators=(",", ":")))


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
            record.msg = f"{record.msg} ({self._suppressed} similar warnings in the last {self.interval:.0f} s)"
            self._suppressed = 0
        self._next = now + self.interval
        return True


def quiet_waitress_queue(interval=60.0):
    queue_logger = logging.getLogger("waitress.queue")
    if not any(isinstance(f, RateLimitFilter) for f in queue_logger.filters):
        queue_logger.addFilter(RateLimitFilter(interval))


def wrap(app, settings):
    """The WSGI app that pserve serves: the access log around Pyramid."""
    quiet_waitress_queue()
    if settings.access_log and not access_log.handlers and not logging.getLogger().handlers:
        # No logging configured (not run through an ini file): still one JSON line each.
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.propagate = False
    if settings.access_log and access_log.getEffectiveLevel() > logging.INFO:
        access_log.setLevel(logging.INFO)
    return AccessLogMiddleware(app, enabled=settings.access_log)
