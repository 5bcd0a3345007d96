"""SPEC §3: storage location URLs, try derivation, keys and key quoting."""

import urllib.parse

import pytest

from tecken_pyramid import locations
from tecken_pyramid.locations import LOCAL, PRIVATE, PUBLIC, derive_try, parse, quote_key
from tecken_pyramid.settings import load

HERE = "/srv/tecken"


def p(url, file_prefix="v1", index="0"):
    return parse(url, here=HERE, file_prefix=file_prefix, index=index)


# -- S3-compatible buckets -------------------------------------------------------------------------
def test_private_bucket_with_prefix():
    loc = p("https://s3.example.com/bucket/some/prefix")
    assert loc.kind == PRIVATE
    assert loc.endpoint == "https://s3.example.com"
    assert loc.bucket == "bucket"
    assert loc.location_prefix == "some/prefix"
    assert loc.prefix == "some/prefix/v1"
    assert loc.url == "https://s3.example.com/bucket/some/prefix"
    assert loc.index == "0"
    assert loc.cached
    assert loc.key("xul.pdb", "abc123", "xul.sym") == "some/prefix/v1/xul.pdb/ABC123/xul.sym"


def test_public_bucket_with_port_no_prefix():
    loc = p("http://127.0.0.1:9000/bkt?access=public", index="2")
    assert loc.kind == PUBLIC
    assert loc.endpoint == "http://127.0.0.1:9000"
    assert loc.bucket == "bkt"
    assert loc.location_prefix == ""
    assert loc.prefix == "v1"
    assert loc.url == "http://127.0.0.1:9000/bkt?access=public"
    assert loc.index == "2"
    assert loc.key("xul.pdb", "abc", "xul.sym") == "v1/xul.pdb/ABC/xul.sym"
    url = loc.public_url(loc.key("xul.pdb", "abc", "xul.sym"))
    assert url == "http://127.0.0.1:9000/bkt/v1/xul.pdb/ABC/xul.sym"


def test_explicit_private_access():
    loc = p("https://h/bucket?access=private")
    assert loc.kind == PRIVATE
    assert loc.url == "https://h/bucket"  # normalised: the default access mode is implied


def test_normalisation_identifies_a_location():
    a = p("https://S3.Example.COM/bucket/pfx/")
    b = p("https://s3.example.com/bucket//pfx")
    assert a.url == b.url == "https://s3.example.com/bucket/pfx"
    assert a.prefix == b.prefix == "pfx/v1"
    # Different access modes are different locations.
    assert p("https://h/bucket?access=public").url != p("https://h/bucket").url


def test_aws_hosts_use_their_region():
    loc = p("https://s3.us-west-2.amazonaws.com/bucket/pfx")
    assert loc.region == "us-west-2"
    assert loc.endpoint == "https://s3.us-west-2.amazonaws.com"
    assert p("https://s3-eu-west-1.amazonaws.com/bucket").region == "eu-west-1"
    assert p("https://s3.amazonaws.com/bucket").region == "us-east-1"
    assert p("http://127.0.0.1:9000/bucket").region is None


def test_empty_file_prefix():
    loc = p("https://h/bucket", file_prefix="")
    assert loc.key("a.pdb", "ab", "a.sym") == "a.pdb/AB/a.sym"
    loc = p("https://h/bucket/pfx", file_prefix="")
    assert loc.key("a.pdb", "ab", "a.sym") == "pfx/a.pdb/AB/a.sym"


@pytest.mark.parametrize(
    "url",
    [
        "https://h",
        "https://h/",
        "https://h:99999/bucket",
        "https://h:port/bucket",
        "https://user:pass@h/bucket",
        "https://h/bucket?access=world",
        "https://h/bucket?versioned=1",
        "https:///bucket",
        "https://h/a",  # bucket names have at least 3 characters
        "s3://bucket/prefix",
        "gs://bucket",
        "ftp://h/bucket",
    ],
)
def test_bad_urls(url):
    with pytest.raises(ValueError) as info:
        p(url)
    assert "\n" not in str(info.value)


# -- local directories -----------------------------------------------------------------------------
def test_file_url_absolute():
    loc = p("file:///data/symbols")
    assert loc.kind == LOCAL
    assert loc.directory == "/data/symbols"
    assert loc.url == "file:///data/symbols"
    assert loc.prefix == "v1"
    assert not loc.cached
    assert loc.key("xul.pdb", "abc", "xul.sym") == "v1/xul.pdb/ABC/xul.sym"


def test_file_url_localhost_and_quoting():
    assert p("file://localhost/data/sym").directory == "/data/sym"
    assert p("file:///data/with%20space").directory == "/data/with space"


def test_file_url_needs_an_absolute_path():
    with pytest.raises(ValueError):
        p("file://relative/dir")


@pytest.mark.parametrize(
    "url,directory",
    [
        ("var/symbols", f"{HERE}/var/symbols"),
        ("./var/symbols/", f"{HERE}/var/symbols"),
        ("../elsewhere", "/srv/elsewhere"),
        ("symbols", f"{HERE}/symbols"),
        ("/abs/dir", "/abs/dir"),
    ],
)
def test_directories_relative_to_here(url, directory):
    loc = p(url)
    assert loc.kind == LOCAL
    assert loc.directory == directory
    assert loc.url == "file://" + directory


def test_relative_to_the_ini_directory_through_settings(tmp_path):
    s = load({"tecken.symbol_urls": "syms", "sqlalchemy.url": "sqlite://"}, environ={}, here=str(tmp_path))
    assert s.locations[0].directory == str(tmp_path / "syms")
    assert s.try_location.directory == str(tmp_path / "syms" / "try")


# -- try derivation --------------------------------------------------------------------------------
def test_try_derived_public_with_prefix():
    first = p("https://h/bucket/pfx?access=public")
    t = derive_try(first)
    assert t.kind == PUBLIC
    assert t.index == "try"
    assert t.url == "https://h/bucket/try/pfx?access=public"
    assert t.endpoint == "https://h"
    assert t.bucket == "bucket"
    assert t.key("xul.pdb", "abc", "xul.sym") == "try/pfx/v1/xul.pdb/ABC/xul.sym"
    url = t.public_url(t.key("xul.pdb", "abc", "xul.sym"))
    assert url == "https://h/bucket/try/pfx/v1/xul.pdb/ABC/xul.sym"


def test_try_derived_private_without_prefix():
    t = derive_try(p("http://127.0.0.1:9000/bucket"))
    assert t.kind == PRIVATE
    assert t.url == "http://127.0.0.1:9000/bucket/try"
    assert t.key("a.pdb", "ff", "a.sym") == "try/v1/a.pdb/FF/a.sym"


def test_try_derived_keeps_region():
    t = derive_try(p("https://s3.us-west-2.amazonaws.com/bucket/pfx"))
    assert t.region == "us-west-2"
    assert t.url == "https://s3.us-west-2.amazonaws.com/bucket/try/pfx"


def test_try_derived_local():
    t = derive_try(p("file:///data/symbols"))
    assert t.kind == LOCAL
    assert t.index == "try"
    assert t.directory == "/data/symbols/try"
    assert t.key("a.pdb", "ab", "a.sym") == "v1/a.pdb/AB/a.sym"


def test_try_derived_from_the_first_location_through_settings():
    s = load(
        {
            "tecken.symbol_urls": "https://h/first/pfx?access=public,https://h/second",
            "sqlalchemy.url": "sqlite://",
        },
        environ={},
        here=HERE,
    )
    assert s.try_location.url == "https://h/first/try/pfx?access=public"
    assert [loc.index for loc in s.all_locations] == ["0", "1", "try"]


def test_explicit_try_url():
    s = load(
        {"tecken.symbol_urls": "https://h/first", "sqlalchemy.url": "sqlite://"},
        environ={"TECKEN_TRY_SYMBOL_URL": "https://other/try-bucket/x?access=public"},
        here=HERE,
    )
    assert s.try_location.url == "https://other/try-bucket/x?access=public"
    assert s.try_location.index == "try"
    assert s.try_location.key("a.pdb", "ab", "a.sym") == "x/v1/a.pdb/AB/a.sym"


# -- keys ------------------------------------------------------------------------------------------
def test_key_upper_cases_only_the_debug_id():
    loc = p("https://h/bucket")
    assert loc.key("Xul.PDB", "44e4ec8c2f41492b9369d6b9a059577c2", "Xul.Sym") == (
        "v1/Xul.PDB/44E4EC8C2F41492B9369D6B9A059577C2/Xul.Sym"
    )


def test_heartbeat_key():
    assert p("https://h/bucket/pfx").heartbeat_key() == "pfx/v1/__heartbeat__"
    assert p("https://h/bucket", file_prefix="").heartbeat_key() == "__heartbeat__"


@pytest.mark.parametrize(
    "key,quoted",
    [
        ("v1/a+b.pdb/AB/a+b.sym", "v1/a%2Bb.pdb/AB/a%2Bb.sym"),
        ("v1/a b.pdb/AB/a b.sym", "v1/a%20b.pdb/AB/a%20b.sym"),
        ("v1/汉字.pdb/AB/ü.sym", "v1/%E6%B1%89%E5%AD%97.pdb/AB/%C3%BC.sym"),
        ("v1/x?y.pdb/AB/x&y=z.sym", "v1/x%3Fy.pdb/AB/x%26y%3Dz.sym"),
        ("v1/plain.pdb/AB/plain.sym", "v1/plain.pdb/AB/plain.sym"),
    ],
)
def test_quote_key_round_trips(key, quoted):
    assert quote_key(key) == quoted
    assert quoted.isascii()
    # A raw '+' would be read as a space by S3; after quoting, unquoting gives the key back exactly.
    assert urllib.parse.unquote(quoted) == key
    assert "+" not in quoted and " " not in quoted


def test_public_url_is_ascii_and_round_trips():
    loc = p("https://h/bucket?access=public")
    key = loc.key("a +汉.pdb", "ab", "a +汉.sym")
    url = loc.public_url(key)
    assert url.isascii()
    assert url == "https://h/bucket/v1/a%20%2B%E6%B1%89.pdb/AB/a%20%2B%E6%B1%89.sym"
    assert urllib.parse.unquote(urllib.parse.urlsplit(url).path) == "/bucket/" + key


def test_module_kinds_are_distinct():
    assert len({locations.LOCAL, locations.PRIVATE, locations.PUBLIC}) == 3
