"""Pure parts of the download path, without WebTest: path shapes (SPEC §2), the raw
path decoding, query parsing and code-value validation (step 5), the name rules."""

import pytest

from tecken_pyramid.rawrequest import decoded_path, parse_query
from tecken_pyramid.resources import RESERVED, download_shape
from tecken_pyramid.rules import invalid_name
from tecken_pyramid.views.download import validate_code_value


def segments(path):
    return path.split("/")[1:]


@pytest.mark.parametrize(
    "path",
    ["/xul.pdb/ABC/xul.sym", "/try/xul.pdb/abc123/xul.sym", "/try/try/ABC/x.sym", "/a b/0/c d", "/x%FF/A/y"],
)
def test_download_shapes(path):
    assert download_shape(segments(path))


@pytest.mark.parametrize(
    "path",
    [
        "/xul.pdb/ABC/xul.sym/",
        "/xul.pdb//ABC/xul.sym",
        "/xul.pdb/ABC",
        "/a/b/c/d",
        "/a/b/c/d/e",
        "/xul.pdb/./xul.sym",
        "/xul.pdb/ABC/..",
        "/@@view/ABC/x.sym",
        "/xul.pdb/XYZ/xul.sym",
        "/try/ABC/xul.sym",
        "/TRY/xul.pdb/ABC/xul.sym/x",
        "/try/xul.pdb/ABC/x.sym/",
        "/xul.pdb//x.sym",
    ],
)
def test_not_download_shapes(path):
    assert not download_shape(segments(path))


def test_reserved_segments_include_every_spec_name():
    spec = {
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
    assert spec <= set(RESERVED)


def test_decoded_path_keeps_undecodable_bytes_as_percent_escapes():
    environ = {"PATH_INFO": "/x\xff.pdb/ABC/\xc3\xa9.sym"}  # latin-1 text standing for bytes
    assert decoded_path(environ) == "/x%FF.pdb/ABC/\u00e9.sym"
    # Written back so that Pyramid's traverser decodes it as UTF-8.
    assert environ["PATH_INFO"].encode("latin-1").decode("utf-8") == "/x%FF.pdb/ABC/\u00e9.sym"


def test_parse_query_last_value_wins_blank_kept_plus_is_space():
    q = parse_query("try&code_file=a+b&code_id=1&code_id=2&_refresh=")
    assert q == {"try": "", "code_file": "a b", "code_id": "2", "_refresh": ""}


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("", (None, None)),
        ("xul.dll", ("xul.dll", None)),
        ("\xef\xbf\xbd", ("\ufffd", None)),  # a correctly encoded U+FFFD is ordinary
        ("\xff", (None, "code_file: Invalid characters are not allowed.")),
        ("a\x00b", (None, "code_file: Null characters are not allowed.")),
        ("a\x1fb", (None, "code_file: Control characters are not allowed.")),
        ("a\x7fb", (None, "code_file: Control characters are not allowed.")),
        ("  spaced  ", ("  spaced  ", None)),  # kept verbatim, never stripped
    ],
)
def test_validate_code_value(raw, expected):
    assert validate_code_value("code_file", raw) == expected


@pytest.mark.parametrize(
    "name",
    [
        "a\\b",
        "a^b",
        "a`b",
        "a>b",
        "a<b",
        "a{b",
        "a}b",
        "a[b",
        "a]b",
        "a#b",
        "a%b",
        'a"b',
        "a'b",
        "a~b",
        "a|b",
        "a\x00",
        "a\x1f",
        "a\x80",
        "a\xff",
    ],
)
def test_invalid_names(name):
    assert invalid_name(name, "x.sym") and invalid_name("x.pdb", name)


@pytest.mark.parametrize("name", ["xul.pdb", "a b", "a\x7fb", "libc.so.6", "\u0100x"])
def test_valid_names(name):
    assert not invalid_name(name, name)
