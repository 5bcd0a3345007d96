"""The missing-symbol report filters (SPEC §6) as pure functions."""

import datetime

import pytest

from tecken_pyramid.reports import (
    BadParameter,
    parse_count_conditions,
    parse_filters,
    parse_time_conditions,
    raw_params,
)

UTC = datetime.UTC
NOW = datetime.datetime(2026, 11, 27, 13, 45, tzinfo=UTC)


def test_raw_params_last_wins_and_undecodable_is_none():
    assert raw_params("symbol=a&symbol=b&debugid=%FF") == {"symbol": "b", "debugid": None}


def test_date_equals_means_the_whole_day():
    assert parse_time_conditions("=2026-11-27", NOW) == [
        (">=", datetime.datetime(2026, 11, 27, tzinfo=UTC)),
        ("<", datetime.datetime(2026, 11, 28, tzinfo=UTC)),
    ]


def test_datetime_equals_is_that_instant_in_utc():
    assert parse_time_conditions("2026-11-27T14:00+01:00", NOW) == [
        ("=", datetime.datetime(2026, 11, 27, 13, tzinfo=UTC))
    ]


def test_today_and_yesterday_and_ops():
    assert parse_time_conditions(">=yesterday,<today", NOW) == [
        (">=", datetime.datetime(2026, 11, 26, tzinfo=UTC)),
        ("<", datetime.datetime(2026, 11, 27, tzinfo=UTC)),
    ]


@pytest.mark.parametrize("text", ["2026-13-01", "2026-11-27T25:00", "soon", ">=", "2026-11-27T10:00+24:00"])
def test_bad_times(text):
    with pytest.raises(BadParameter):
        parse_time_conditions(text, NOW)


def test_count_conditions():
    assert parse_count_conditions(">=2,<10,5") == [(">=", 2), ("<", 10), ("=", 5)]
    for bad in ("x", "-1", "2147483648", ">"):
        with pytest.raises(BadParameter):
            parse_count_conditions(bad)


def test_parse_filters_collects_errors_per_parameter():
    f, errors = parse_filters({"symbol": "xul", "count": "x", "page": "0", "sort": "nope"}, now=NOW)
    assert f.substrings == {"symbol": "xul"}
    assert set(errors) == {"count", "page", "sort"}


def test_default_order_and_reverse():
    f, errors = parse_filters({}, now=NOW)
    assert errors == {} and f.order == ("modified_at", True)
    f, errors = parse_filters({"sort": "count", "reverse": "TRUE"}, now=NOW)
    assert errors == {} and f.order == ("count", True)
    f, _ = parse_filters({"sort": "count"}, now=NOW)
    assert f.order == ("count", False)
