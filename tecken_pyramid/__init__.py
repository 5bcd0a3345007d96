"""tecken-pyramid: a symbol server for crash tooling."""

import logging
import sys

from pyramid.config import Configurator

from . import accesslog
from . import settings as settings_mod

log = logging.getLogger(__name__)


def main(global_config, **ini_settings):
    """The WSGI app factory (``paste.app_factory``)."""
    here = global_config.get("here") if global_config else None
    try:
        tecken = settings_mod.load(ini_settings, here=here or ini_settings.get("here"))
    except settings_mod.ConfigError as exc:
        # One line naming the setting, exit status 1, no traceback (SPEC §1).
        sys.exit(f"tecken-pyramid: configuration error: {exc}")
    return make_app(tecken, ini_settings)


def make_app(tecken, ini_settings=None, start_background=True):
    config = Configurator(settings=dict(ini_settings or {}), root_factory="tecken_pyramid.resources.root_factory")
    config.registry.tecken = tecken
    # Path shapes and the routes mapper first: the mapper must exist before any route.
    config.include(".tweens")
    # The add_public_view directive (routes and their views are added below).
    config.include(".routes")
    # Metrics first: every other service counts into them.
    config.include(".metrics")
    # Shared cache (memcached or in-process) for existence, guards and throttles.
    config.include(".cache")
    # Engine and request.dbsession; never used on the download path.
    config.include(".db")
    # Allow list and ignore patterns, in memory, reloaded by a thread.
    config.include(".rules")
    # Storage checks: one backend per location kind behind the deadline/retry loop.
    config.include(".storage")
    # The existence cache and the lookup that walks the locations through it.
    config.include(".lookup")
    # The missing-symbol log: recorder, background writer, reports.
    config.include(".missing")
    # Health checks (database, cache, storage) on one bounded pool per process.
    config.include(".health")
    # Templates for the HTML pages (home, HTML 404s).
    config.include("pyramid_jinja2")
    config.add_jinja2_renderer(".jinja2")
    config.include(".views.home")
    config.include(".views.dockerflow")
    config.include(".views.files")
    config.include(".views.missing_reports")
    # The console: sessions, security policy, CSRF and its pages, all under /admin/.
    config.include(".admin")
    config.scan(".views")
    app = config.make_wsgi_app()
    if start_background:
        start(app.registry)
    # Outermost: one JSON access-log line and an X-Request-Id for every answer.
    wrapped = accesslog.wrap(app, tecken)
    if start_background and app.registry.access_log is not None:
        app.registry.access_log.start()
    return wrapped


def start(registry):
    """Start the background threads (rules reloader, missing-symbol writer)."""
    registry.rules.start()
    registry.missing.start()


def shutdown(registry, flush_seconds=5.0):
    """Stop background work; the missing-symbol writer flushes for up to 5 s."""
    registry.missing.stop(timeout=flush_seconds)
    registry.rules.stop()
    registry.health.close()
    if getattr(registry, "access_log", None) is not None:
        registry.access_log.close()
    registry.storage.close()
    registry.cache.close()
    registry.dbengine.dispose()
