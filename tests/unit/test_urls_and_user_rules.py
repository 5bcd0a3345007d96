"""Unit tests of the small rule modules: urls (Host validation), security.safe_next
and users (username and password rules)."""

import types

import pytest

from tecken_pyramid.security import safe_next
from tecken_pyramid.urls import BadHost, application_url, valid_host
from tecken_pyramid.users import password_problem, username_problem


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "example.com.",
        "a",
        "my_host-1:80",
        "127.0.0.1",
        "127.0.0.1:65535",
        "[::1]",
        "[::1]:80",
        "[2001:db8::1]:8443",
        "[::ffff:127.0.0.1]",
        "x" * 63 + ".example",
    ],
)
def test_valid_hosts(host):
    assert valid_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "",
        "evil.com/x?",
        "a b",
        "h\r\nX: y",
        "h:port",
        "h:",
        ":80",
        "h:65536",
        "h:123456",
        "[::1",
        "[::1]x",
        "[::g]",
        "[1.2.3.4]",
        "user@h",
        "h#f",
        "é.example",
        "-",
        "a..b",
        ".a",
        "x" * 64,
        "h\x00",
        "[::1]:",
    ],
)
def test_invalid_hosts(host):
    assert not valid_host(host)


def fake_request(environ, public_url=""):
    registry = types.SimpleNamespace(tecken=types.SimpleNamespace(public_url=public_url))
    return types.SimpleNamespace(environ=environ, registry=registry)


def test_application_url_prefers_the_public_url():
    request = fake_request({"HTTP_HOST": "evil.com/x?"}, public_url="https://sym.example.org/base")
    assert application_url(request) == "https://sym.example.org/base"


def test_application_url_from_host_or_server_name():
    assert application_url(fake_request({"wsgi.url_scheme": "https", "HTTP_HOST": "[::1]:8443"})) == (
        "https://[::1]:8443"
    )
    environ = {"wsgi.url_scheme": "http", "SERVER_NAME": "localhost", "SERVER_PORT": "6543"}
    assert application_url(fake_request(environ)) == "http://localhost:6543"
    with pytest.raises(BadHost):
        application_url(fake_request({"wsgi.url_scheme": "http", "HTTP_HOST": "a b"}))
    with pytest.raises(BadHost):
        application_url(fake_request({"wsgi.url_scheme": "javascript", "HTTP_HOST": "h"}))


@pytest.mark.parametrize(
    "value, expected",
    [
        ("/admin/users?page=2", "/admin/users?page=2"),
        ("/é", "/%C3%A9"),
        ("/€", "/%E2%82%AC"),
        ("/a b", "/a%20b"),
        ("/x%2Fy", "/x%2Fy"),
        ("/admin/\u2028", "/admin/"),
        ("/admin/\u2029", "/admin/"),
        ("/admin/\u0085", "/admin/"),
        ("/admin/\u200e", "/admin/"),
        ("/admin/\ud800", "/admin/"),
        ("//evil", "/admin/"),
        ("/\\evil", "/admin/"),
        ("/x\x7f", "/admin/"),
        ("http://evil/", "/admin/"),
        (None, "/admin/"),
    ],
)
def test_safe_next_is_local_and_ascii(value, expected):
    result = safe_next(value)
    assert result == expected
    assert result.isascii()


@pytest.mark.parametrize(
    "username, ok",
    [
        ("admin", True),
        ("Élodie", True),
        ("a.b-c_d@e", True),
        ("x" * 150, True),
        ("", False),
        ("x" * 151, False),
        ("a b", False),
        ("a\tb", False),
        ("a\x7fb", False),
        ("a\x85b", False),
        ("a\u200bb", False),
        ("a\u2028b", False),
        ("a\u00a0b", False),
        ("a\x00b", False),
    ],
)
def test_username_rules(username, ok):
    assert (username_problem(username) is None) is ok


@pytest.mark.parametrize("length, ok", [(0, False), (7, False), (8, True), (1024, True), (1025, False)])
def test_password_rules(length, ok):
    assert (password_problem("p" * length) is None) is ok
