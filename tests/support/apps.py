"""Apps built from settings, and what tests put in front of them: files in a local
symbol directory, public S3 objects, console users, a signed-in console."""

import os
import time

from tests.support.services import PUBLIC_BUCKET, ROOT

DEBUG_ID = "44E4EC8C2F41492B9369D6B9A059577C2"


BASE_INI = {
    "tecken.environment": "development",
    "tecken.symbol_file_prefix": "v1",
    "tecken.rules_refresh_seconds": "0.2",
    "tecken.storage_connect_timeout": "1",
    "tecken.storage_read_timeout": "2",
    "tecken.storage_deadline": "5",
    "tecken.memcached_dead_retry_seconds": "1",
    "tecken.missing_symbol_retry_max_seconds": "0.2",
    "jinja2.directories": os.path.join(ROOT, "templates"),
}


class AppFactory:
    def __init__(self, database):
        self.database = database
        self.apps = []

    def settings(self, **overrides):
        from tecken_pyramid import settings as settings_mod

        ini = dict(BASE_INI)
        ini["sqlalchemy.url"] = self.database.url
        for key, value in overrides.items():
            ini["tecken." + key if "." not in key else key] = value
        return settings_mod.load(ini, environ={}, here=ROOT), ini

    def __call__(self, wait_rules=True, **overrides):
        """A webtest.TestApp over a fresh app with these tecken.* overrides."""
        import webtest

        from tecken_pyramid import make_app

        tecken, ini = self.settings(**overrides)
        app = make_app(tecken, ini)
        self.apps.append(app)
        if wait_rules:
            end = time.monotonic() + 10
            while app.registry.rules.current.source != "database" and time.monotonic() < end:
                time.sleep(0.01)
        # waitress always sets REMOTE_ADDR; /metrics and the login throttle read it.
        testapp = webtest.TestApp(
            app, extra_environ={"HTTP_HOST": "symbols.example.com", "REMOTE_ADDR": "127.0.0.1"}
        )
        testapp.registry = app.registry
        return testapp

    def close(self):
        from tecken_pyramid import shutdown

        for app in self.apps:
            shutdown(app.registry, flush_seconds=1)


def put_public(s3_server, key, body=b"MODULE test\n"):
    s3_server.client().put_object(Bucket=PUBLIC_BUCKET, Key=key, Body=body, ACL="public-read")


def put_file(directory, key, body=b"MODULE test\n"):
    path = os.path.join(str(directory), key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(body)
    return path


# -- console ---------------------------------------------------------------------------------------
def create_user(database, username, password, superuser=True, active=True):
    """Insert (or reset) a user directly in the database."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from tecken_pyramid.models import User
    from tecken_pyramid.passwords import hash_password

    engine = database.engine()
    with Session(engine) as session, session.begin():
        user = session.scalars(select(User).where(User.username == username)).one_or_none()
        if user is None:
            user = User(username=username)
            session.add(user)
        user.password_hash = hash_password(password)
        user.is_superuser = superuser
        user.is_active = active
    engine.dispose()


def login(testapp, username, password, next_url=None, status=303):
    """Sign in through the real login form (CSRF token included)."""
    form = testapp.get("/admin/login" + (f"?next={next_url}" if next_url else "")).forms[0]
    form["username"] = username
    form["password"] = password
    return form.submit(status=status)
