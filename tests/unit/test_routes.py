"""The route table (tecken_pyramid.routes) and the reserved first segments derived from it."""

import pytest

from tecken_pyramid import resources, routes

# SPEC §2: the first path segments that are never downloads.
SPEC_RESERVED = {
    "admin",
    "__heartbeat__",
    "__lbheartbeat__",
    "__version__",
    "__files__",
    "metrics",
    "missingsymbols",
    "missingsymbols.csv",
    "upload",
}


def test_reserved_is_what_spec_lists():
    assert routes.RESERVED == SPEC_RESERVED
    assert resources.RESERVED is routes.RESERVED


@pytest.mark.parametrize("pattern", [*routes.PUBLIC.values(), *routes.CONSOLE.values()])
def test_every_route_starts_with_a_literal_reserved_segment_or_is_home(pattern):
    segment = routes.first_segment(pattern)
    assert pattern == "/" or segment in routes.RESERVED
    assert "{" not in segment and "*" not in segment


def test_console_routes_live_under_admin():
    assert all(pattern.startswith("/admin/") for pattern in routes.CONSOLE.values())
    assert all(name.startswith("admin.") for name in routes.CONSOLE)


def test_route_names_are_unique_across_tables():
    assert not set(routes.PUBLIC) & set(routes.CONSOLE)


@pytest.mark.parametrize(
    "pattern, segment",
    [
        ("/", ""),
        ("/metrics", "metrics"),
        ("/missingsymbols/", "missingsymbols"),
        ("/__files__/{n}/*key", "__files__"),
        ("admin/static", "admin"),
    ],
)
def test_first_segment(pattern, segment):
    assert routes.first_segment(pattern) == segment


def test_reserved_segments_are_not_symbols():
    root = resources.Root()
    for name in routes.RESERVED:
        with pytest.raises(KeyError):
            root[name]
    assert isinstance(root["xul.pdb"], resources.Symbol)
