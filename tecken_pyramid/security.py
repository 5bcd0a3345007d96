"""Sessions, identity, permissions, CSRF and the login throttle (SPEC §7).

Nothing here runs on the download path: the session is created lazily, the
security policy is consulted only by views with a permission (the console), and
CSRF is required per view (console POSTs) rather than globally, so a POST to a
download path still answers SPEC's 405.
"""

import logging
import re
import threading

from pyramid.authorization import ACLHelper, Allow, Authenticated, Everyone
from pyramid.csrf import SessionCSRFStoragePolicy
from pyramid.request import RequestLocalCache
from pyramid.session import SignedCookieSessionFactory
from sqlalchemy import select

from .cache import CacheUnavailable, InProcessCache, hashed_key
from .models import User

log = logging.getLogger(__name__)

ADMIN = "admin"  # the one permission: active superusers hold it
SUPERUSERS = "group:superusers"
SESSION_USER = "user_id"
SESSION_STAMP = "user_stamp"

THROTTLE_FAILURES = 5
THROTTLE_WINDOW = 15 * 60
THROTTLE_LOCK = 5 * 60


def password_stamp(user):
    """Changes when the password changes, so a reset signs out other sessions."""
    return user.password_hash[-16:]


class SessionSecurityPolicy:
    def __init__(self):
        self._cache = RequestLocalCache(self._load_identity)
        self._acl = ACLHelper()

    def _load_identity(self, request):
        user_id = request.session.get(SESSION_USER)
        if user_id is None:
            return None
        user = request.dbsession.get(User, user_id)
        if user is None or not user.is_active or password_stamp(user) != request.session.get(SESSION_STAMP):
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
        request.session[SESSION_STAMP] = password_stamp(user)
        self._cache.clear(request)
        return []

    def forget(self, request, **kw):
        request.session.invalidate()
        self._cache.clear(request)
        return []


class AdminRoot:
    """The context of every console route: only active superusers get in."""

    __name__ = ""
    __parent__ = None
    __acl__ = [(Allow, SUPERUSERS, ADMIN)]

    def __init__(self, request):
        self.request = request


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_next(value, default="/admin/"):
    """``next`` only when it is a local path: a single '/' not followed by '/' or
    '\\', no '\\' and no control character (SPEC §7)."""
    if not value or not isinstance(value, str):
        return default
    if not value.startswith("/") or value[1:2] in ("/", "\\"):
        return default
    if "\\" in value or _CONTROL.search(value):
        return default
    return value


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
    config.set_security_policy(SessionSecurityPolicy())
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy(key="_csrft_"))
    # CSRF is required per view (every console POST, login included), not by
    # default: the download path must keep answering its own 405 to a POST.
    config.set_default_csrf_options(require_csrf=False, token="csrf_token", header=None)
    config.registry.login_throttle = LoginThrottle(config.registry.cache)
