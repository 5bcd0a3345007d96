"""tecken-pyramid: a symbol server for crash tooling."""

import logging
import sys

from pyramid.config import Configurator

from . import accesslog
from . import settings as settings_mod

log = logging.getLogger(__name__)

# The services on the registry: attribute, its protocol in tecken_pyramid.interfaces,
# and the module whose includeme builds it. Views read them directly
# (``request.registry.lookup``); tests/functional/test_service_contracts.py checks an
# assembled app against this table. The include order in make_app is the order
# below: each service is built from the ones above it.
#
#   registry.<attribute>   protocol          built by          from
#   tecken                 settings.Settings make_app          the ini and the environment
#   metrics                Metrics           .metrics          -
#   cache                  Cache             .cache            tecken, metrics
#   dbengine               (SQLAlchemy)      .db               tecken
#   dbsession_factory      (sessionmaker)    .db               dbengine
#   rules                  Rules             .rules            dbengine, tecken, metrics
#   storage                Storage           .storage          tecken, metrics
#   existence              ExistenceCache    .lookup           tecken, cache
#   lookup                 Lookup            .lookup           tecken, existence, storage, metrics
#   code_ids               CodeIds           .code_ids         tecken, cache, dbsession_factory, metrics
#   missing                MissingRecorder   .missing          dbengine, cache, tecken, metrics
#   uploads                Uploads           .uploads          tecken, storage, existence, code_ids, rules
#   health                 Health            .health           dbengine, cache, storage, rules
#   login_throttle         LoginThrottle     .admin (security) cache
#   version_info           (dict)            .views.dockerflow the version file
#   access_log             AccessLog | None  accesslog.wrap    tecken (outermost WSGI layer)
SERVICES = (
    ("metrics", "Metrics"),
    ("cache", "Cache"),
    ("rules", "Rules"),
    ("storage", "Storage"),
    ("existence", "ExistenceCache"),
    ("lookup", "Lookup"),
    ("code_ids", "CodeIds"),
    ("missing", "MissingRecorder"),
    ("uploads", "Uploads"),
    ("health", "Health"),
    ("login_throttle", "LoginThrottle"),
    ("access_log", "AccessLog"),
)


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
    config = Configurator(
        settings=dict(ini_settings or {}), root_factory="tecken_pyramid.resources.root_factory"
    )
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
    # Lookup by code id after a miss (SPEC §9): cached answers, the database behind a breaker.
    config.include(".code_ids")
    # The missing-symbol log: recorder, background writer, reports.
    config.include(".missing")
    # Uploads (SPEC §9): the pipeline that stores archives (views/upload.py answers HTTP).
    config.include(".uploads")
    # Health checks (database, cache, storage) on one bounded pool per process.
    config.include(".health")
    # Templates for the HTML pages (home, HTML 404s).
    config.include("pyramid_jinja2")
    config.add_jinja2_renderer(".jinja2")
    config.include(".views.home")
    config.include(".views.dockerflow")
    config.include(".views.files")
    config.include(".views.missing_reports")
    config.include(".views.upload")
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
