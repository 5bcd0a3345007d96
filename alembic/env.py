"""Alembic environment: reads the database URL from the same ini file (and the
environment, which wins), so ``alembic -c INI upgrade head`` and
``tecken-pyramid migrate INI`` give the same database."""

import os

from pyramid.paster import get_appsettings, setup_logging

from alembic import context
from tecken_pyramid import settings as settings_mod
from tecken_pyramid.db import ensure_sqlite_directory, make_engine
from tecken_pyramid.models import Base

config = context.config
ini = config.config_file_name
if config.attributes.get("configure_logging", True) and ini:
    setup_logging(ini)

app_settings = dict(get_appsettings(ini)) if ini else {}
app_settings.setdefault("here", os.path.dirname(os.path.abspath(ini)) if ini else os.getcwd())
url = config.attributes.get("database_url") or settings_mod.normalise_database_url(
    settings_mod.read_raw(app_settings, os.environ, "sqlalchemy.url") or ""
)
# The extensions setting chooses the rows the first migration seeds (SPEC §4): read
# through the settings table, so its variable, alias, default and checks are the app's.
config.attributes.setdefault(
    "initial_extensions",
    list(settings_mod.read_one(app_settings, os.environ, "download_file_extensions_allowed")),
)


def run_migrations_offline():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    ensure_sqlite_directory(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            transaction_per_migration=True,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
