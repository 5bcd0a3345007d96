"""Sessions, identity, permissions, CSRF and the login throttle (SPEC §7).

Nothing here runs on the download path: the session is created lazily, the
security policy is consulted only by views with a permission (the console), and
CSRF is required per view (console POSTs) rather than globally, so a POST to a
download path still answers SPEC's 405.
"""

import hashlib
import hmac
import logging
import re
import threading
import unicodedata
import urllib.parse

from pyramid.authorization import ACLHelper, Allow, Authenticated, Everyone
from pyramid.csrf import SessionCSRFStoragePolicy
from pyramid.request import RequestLocalCache
from pyramid.session import SignedCookieSessionFactory
from sqlalchemy import select

from .cache import CacheUnavailable, InProcessCache, hashed_key
from .form_input import check_decodable
from .models import User
from .urls import application_url

log = logging.getLogger(__name__)

ADMIN = "admin"  # the one permission: active superusers hold it
SUPERUSERS = "group:superusers"
SESSION_USER = "user_id"
SESSION_STAMP = "user_stamp"  # session_stamp(): an HMAC, never characters of the hash

THROTTLE_FAILURES = 5
THROTTLE_WINDOW = 15 * 60
THROTTLE_LOCK = 5 * 60


def session_stamp(user, secret):
    """What binds a session to the user's current credentials.

    An HMAC keyed by the session secret over the user's id, session generation and
    password hash: it changes when the password changes (however it was changed) and
    when the generation moves on (logout, reset, deactivation: :func:`end_sessions`).
    The cookie is signed, not encrypted, so it carries only this digest, never any
    character of the hash itself.
    """
    message = f"tecken-pyramid.session-stamp:{user.id}:{user.session_generation}:{user.password_hash}"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def end_sessions(user):
    """Make every session cookie issued to ``user`` so far useless (the caller commits)."""
    user.session_generation = (user.session_generation or 0) + 1


class SessionSecurityPolicy:
    def __init__(self, secret):
        self._secret = secret
        self._cache = RequestLocalCache(self._load_identity)
        self._acl = ACLHelper()

    def _load_identity(self, request):
        user_id = request.session.get(SESSION_USER)
        if not isinstance(user_id, int):
            return None
        user = request.dbsession.get(User, user_id)
        if user is None or not user.is_active:
            return None
        stamp = request.session.get(SESSION_STAMP)
        if not isinstance(stamp, str) or not hmac.compare_digest(stamp, session_stamp(user, self._secret)):
            return None
        return user

    def identity(self, request):
        return self._cache.get_or_create(request)

    def authenticated_userid(self, request):
        user = self.identity(request)
        return None if user is None else user.id

    def permits(self, request, context, permission):
        user = self.identity(request)
        principals = [Everyone]
        if user is not None:
            principals += [Authenticated, f"user:{user.id}"]
            if user.is_superuser and user.is_active:
                principals.append(SUPERUSERS)
        return self._acl.permits(context, principals, permission)

    def remember(self, request, userid, **kw):
        user = request.dbsession.get(User, userid)
        # A fresh session on login (no fixation): drop the anonymous one.
        request.session.invalidate()
        request.session[SESSION_USER] = user.id
        request.session[SESSION_STAMP] = session_stamp(user, self._secret)
        self._cache.clear(request)
        return []

    def forget(self, request, **kw):
        request.session.invalidate()
        self._cache.clear(request)
        return []


class AdminRoot:
    """The context of every console route (login and logout included): only active
    superusers get in.

    Before any view runs it also checks the request itself, so that a bad one is a
    400 that changed nothing (no sign-in, no rule change) rather than a failure
    halfway: absolute URLs can be built for it (TECKEN_PUBLIC_URL, or a valid Host;
    else urls.BadHost), since nearly every console answer is a redirect; and its
    form (on a POST) is UTF-8 (else form_input.BadInput).
    """

    __name__ = ""
    __parent__ = None
    __acl__ = [(Allow, SUPERUSERS, ADMIN)]

    def __init__(self, request):
        application_url(request)
        check_decodable(request)
        self.request = request


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Control, format (bidi overrides, zero-width), surrogate and line/paragraph
# separator characters (U+2028, U+2029): never part of a path worth following.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Printable ASCII stays as it is ('%' included, so escapes already there survive);
# a space and everything beyond ASCII is percent-encoded as UTF-8.
_LOCATION_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


def safe_next(value, default="/admin/"):
    """``next`` only when it is a local path: a single '/' not followed by '/' or
    '\\', no '\\' and no control character (SPEC §7) — Unicode controls and line
    separators included. The result is ASCII, ready for a ``Location`` header."""
    if not value or not isinstance(value, str):
        return default
    if not value.startswith("/") or value[1:2] in ("/", "\\"):
        return default
    if "\\" in value or _CONTROL.search(value):
        return default
    if not value.isascii() and any(unicodedata.category(c) in _UNSAFE_CATEGORIES for c in value):
        return default
    return urllib.parse.quote(value, safe=_LOCATION_SAFE)


class LoginThrottle:
    """Failures per (username, client address) in the shared cache; in-process
    when the cache is unavailable (or when no memcached is configured)."""

    def __init__(self, cache):
        self.cache = cache
        self.fallback = InProcessCache(maxsize=50_000)
        self._lock = threading.Lock()

    def _keys(self, username, address):
        return (
            hashed_key("login-fail", username.lower(), address or ""),
            hashed_key("login-lock", username.lower(), address or ""),
        )

    def locked(self, username, address):
        _fails, lock = self._keys(username, address)
        # get_many never raises (a memcached failure reads as a miss), and a lock
        # set while memcached was down lives in the fallback: consult both.
        return bool(self.cache.get_many([lock])) or bool(self.fallback.get_many([lock]))

    def failed(self, username, address):
        fails, lock = self._keys(username, address)
        try:
            count = self.cache.incr(fails, THROTTLE_WINDOW)
            if count >= THROTTLE_FAILURES:
                self.cache.set_many({lock: b"1"}, THROTTLE_LOCK)
        except CacheUnavailable:
            with self._lock:
                count = self.fallback.incr(fails, THROTTLE_WINDOW)
                if count >= THROTTLE_FAILURES:
                    self.fallback.set_many({lock: b"1"}, THROTTLE_LOCK)
        return count

    def succeeded(self, username, address):
        fails, _lock = self._keys(username, address)
        try:
            self.cache.delete_many([fails])
        except CacheUnavailable:
            self.fallback.delete_many([fails])


def find_user(dbsession, username):
    return dbsession.scalars(select(User).where(User.username == username)).one_or_none()


def includeme(config):
    settings = config.registry.tecken
    config.set_session_factory(
        SignedCookieSessionFactory(
            settings.session_secret,
            cookie_name="tecken_session",
            httponly=True,
            samesite="Lax",
            secure=settings.secure_cookies,
            timeout=12 * 3600,
            reissue_time=600,
            salt="tecken-pyramid.session.",
        )
    )
    config.set_security_policy(SessionSecurityPolicy(settings.session_secret))
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy(key="_csrft_"))
    # CSRF is required per view (every console POST, login included), not by
    # default: the download path must keep answering its own 405 to a POST.
    config.set_default_csrf_options(require_csrf=False, token="csrf_token", header=None)
    config.registry.login_throttle = LoginThrottle(config.registry.cache)
