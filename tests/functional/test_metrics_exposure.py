"""``/metrics`` answers only allowed client addresses (SPEC §8, issue 6 item 15)."""

import pytest

from tecken_pyramid.metrics import address_allowed

# Nothing here depends on the database kind: run once, in the SQLite pass (.ci/test).
pytestmark = pytest.mark.database_independent


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "172.16.0.9",
        "172.31.255.1",
        "192.168.1.1",
        "fd00::5",
        "::ffff:10.0.0.1",
    ],
)
def test_default_allows_loopback_and_private_ranges(make_app, symbols_dir, address):
    app = make_app(symbol_urls=str(symbols_dir))
    r = app.get("/metrics", extra_environ={"REMOTE_ADDR": address}, status=200)
    assert "tecken_downloads" in r.text


@pytest.mark.parametrize("address", ["203.0.113.7", "8.8.8.8", "172.32.0.1", "2001:db8::1", "", "not-an-ip"])
def test_default_refuses_public_addresses_with_the_json_404(make_app, symbols_dir, address):
    app = make_app(symbol_urls=str(symbols_dir))
    for call in (app.get, app.head):
        r = call("/metrics", extra_environ={"REMOTE_ADDR": address}, status=404)
        assert r.headers["Content-Type"] == "application/json"
        if call is app.get:
            assert r.json == {"error": "Not Found", "path": "/metrics"}
            assert "tecken_" not in r.text


def test_setting_replaces_the_default(make_app, symbols_dir):
    app = make_app(symbol_urls=str(symbols_dir), metrics_allowed_addresses="203.0.113.0/24")
    app.get("/metrics", extra_environ={"REMOTE_ADDR": "203.0.113.7"}, status=200)
    app.get("/metrics", extra_environ={"REMOTE_ADDR": "127.0.0.1"}, status=404)


def test_address_allowed_unit():
    import ipaddress

    nets = (ipaddress.ip_network("10.0.0.0/8"),)
    assert address_allowed("10.9.9.9", nets)
    assert not address_allowed("11.0.0.1", nets)
    assert not address_allowed(None, nets)
    assert address_allowed("::ffff:10.0.0.1", nets)
