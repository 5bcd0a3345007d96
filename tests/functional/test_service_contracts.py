"""Every service on the registry satisfies its protocol (tecken_pyramid.interfaces),
as the table in tecken_pyramid/__init__.py lists them."""

import pytest

from tecken_pyramid import SERVICES, interfaces
from tecken_pyramid.storage import BACKENDS
from tests.conftest import PRIVATE_BUCKET, PUBLIC_BUCKET

# Nothing here depends on the database kind: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent


@pytest.mark.parametrize("use_memcached", [False, True], ids=["in-process", "memcached"])
def test_registry_services_satisfy_their_protocols(make_app, symbols_dir, s3, use_memcached, request):
    overrides = {}
    if use_memcached:
        overrides["memcached_servers"] = request.getfixturevalue("memcached_clean").address
    urls = f"{symbols_dir},{s3.url(PRIVATE_BUCKET)},{s3.url(PUBLIC_BUCKET, public=True)}"
    registry = make_app(symbol_urls=urls, **overrides).registry
    for attribute, protocol in SERVICES:
        service = getattr(registry, attribute)
        if service is None and attribute == "access_log":
            continue  # the access log is off
        assert isinstance(service, getattr(interfaces, protocol)), (attribute, protocol)


def test_every_location_kind_has_a_backend_satisfying_the_protocol(make_app, symbols_dir, s3):
    urls = f"{symbols_dir},{s3.url(PRIVATE_BUCKET)},{s3.url(PUBLIC_BUCKET, public=True)}"
    registry = make_app(symbol_urls=urls).registry
    kinds = set()
    for location in registry.tecken.all_locations:
        backend = registry.storage.backend(location)
        assert isinstance(backend, interfaces.StorageBackend)
        assert backend.kind == location.kind and backend.location is location
        kinds.add(location.kind)
    assert kinds == set(BACKENDS)


def test_code_ids_is_built_from_the_shared_cache_and_the_session_factory(make_app, symbols_dir):
    registry = make_app(symbol_urls=str(symbols_dir)).registry
    names = [attribute for attribute, _protocol in SERVICES]
    assert names.index("lookup") < names.index("code_ids") < names.index("missing")
    assert registry.code_ids.cache is registry.cache
    assert registry.code_ids.session_factory is registry.dbsession_factory
