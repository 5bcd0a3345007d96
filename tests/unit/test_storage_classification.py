"""SPEC §2 step 4 and §5: how storage answers are classified, and what the lookup caches.

moto is more lenient than S3 (no 403 for a missing public key, no 400 for an over-long
key), so the classification is tested here on the answers themselves.
"""

import types

import botocore.exceptions
import pytest

from tecken_pyramid import cache as cache_mod
from tecken_pyramid.locations import LOCAL, PRIVATE, PUBLIC
from tecken_pyramid.lookup import ExistenceCache, SymbolLookup
from tecken_pyramid.settings import load
from tecken_pyramid.storage import (
    FAILED,
    FOUND,
    NOT_FOUND,
    Answer,
    classify_boto_error,
    classify_status,
)


# -- classify_status --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [PRIVATE, PUBLIC])
def test_200_found(kind):
    assert classify_status(200, kind).outcome == FOUND


@pytest.mark.parametrize("kind", [PRIVATE, PUBLIC])
def test_404_not_found(kind):
    assert classify_status(404, kind).outcome == NOT_FOUND


def test_public_403_is_not_found():
    # S3's answer for a missing key when anonymous listing is not allowed.
    assert classify_status(403, PUBLIC).outcome == NOT_FOUND


@pytest.mark.parametrize("status", [401, 403])
def test_private_401_403_failed_not_retryable(status):
    answer = classify_status(status, PRIVATE)
    assert answer.outcome == FAILED
    assert answer.retryable is False
    assert str(status) in answer.detail


@pytest.mark.parametrize("kind", [PRIVATE, PUBLIC])
def test_429_failed_retryable(kind):
    answer = classify_status(429, kind)
    assert answer.outcome == FAILED
    assert answer.retryable is True


@pytest.mark.parametrize("kind", [PRIVATE, PUBLIC])
@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_5xx_failed_retryable(kind, status):
    answer = classify_status(status, kind)
    assert answer.outcome == FAILED
    assert answer.retryable is True


@pytest.mark.parametrize("kind", [PRIVATE, PUBLIC])
@pytest.mark.parametrize("status", [400, 405, 409, 410, 412, 414, 416, 451])
def test_other_4xx_not_found(kind, status):
    # 400 is S3's answer for a key over its 1,024-byte limit: it cannot exist.
    assert classify_status(status, kind).outcome == NOT_FOUND


def test_public_401_is_not_a_failure():
    # 401/403 are failures only for a private location (bad credentials or policy).
    assert classify_status(401, PUBLIC).outcome != FAILED


# -- classify_boto_error ----------------------------------------------------------------------------
def client_error(status, code=None):
    response = {"Error": {"Code": code or str(status), "Message": "x"}, "ResponseMetadata": {}}
    if status is not None:
        response["ResponseMetadata"]["HTTPStatusCode"] = status
    return botocore.exceptions.ClientError(response, "HeadObject")


@pytest.mark.parametrize(
    "status,outcome,retryable",
    [
        (404, NOT_FOUND, False),
        (400, NOT_FOUND, False),
        (403, FAILED, False),
        (401, FAILED, False),
        (429, FAILED, True),
        (500, FAILED, True),
        (503, FAILED, True),
    ],
)
def test_client_error_by_http_status(status, outcome, retryable):
    answer = classify_boto_error(client_error(status))
    assert answer.outcome == outcome
    if outcome == FAILED:
        assert answer.retryable is retryable


def test_client_error_without_http_status_uses_the_code():
    assert classify_boto_error(client_error(None, "404")).outcome == NOT_FOUND
    answer = classify_boto_error(client_error(None, "SlowDown"))
    assert answer.outcome == FAILED


def test_client_error_status_wins_over_code():
    # head_object has no body: the code is the status as text; the HTTP status decides.
    assert classify_boto_error(client_error(404, "NoSuchKey")).outcome == NOT_FOUND
    assert classify_boto_error(client_error(403, "AccessDenied")).outcome == FAILED


@pytest.mark.parametrize(
    "exc",
    [
        botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        botocore.exceptions.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
        botocore.exceptions.ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
        botocore.exceptions.ConnectionClosedError(endpoint_url="http://127.0.0.1:1"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_connection_errors_and_timeouts_failed_retryable(exc):
    answer = classify_boto_error(exc)
    assert answer.outcome == FAILED
    assert answer.retryable is True


def test_no_credentials_failed_not_retryable():
    answer = classify_boto_error(botocore.exceptions.NoCredentialsError())
    assert answer.outcome == FAILED
    assert answer.retryable is False
    assert "credentials" in answer.detail.lower()


def test_unexpected_exception_failed():
    assert classify_boto_error(RuntimeError("boom")).outcome == FAILED


# -- SymbolLookup's cache rules, with fakes ---------------------------------------------------------
class FakeCache:
    def __init__(self):
        self.data = {}
        self.reads = []
        self.writes = []  # (key, value, ttl)

    def get_many(self, keys):
        self.reads.append(list(keys))
        return {k: self.data[k] for k in keys if k in self.data}

    def set_many(self, values, ttl):
        for key, value in values.items():
            self.writes.append((key, value, ttl))
            self.data[key] = value

    def delete_many(self, keys):
        for key in keys:
            self.data.pop(key, None)
        return True


class FakeChecker:
    """Answers by location url; records every call."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def check(self, location, key, deadline):
        self.calls.append((location.url, key))
        outcome = self.answers.get(location.url, NOT_FOUND)
        return Answer(outcome, outcome == FAILED, "fake")


class Counter:
    def __init__(self):
        self.value = 0

    def inc(self, amount=1):
        self.value += amount


def fake_metrics():
    return types.SimpleNamespace(cache_hits=Counter(), cache_misses=Counter())


A = "http://127.0.0.1:1/bucket-a"
B = "http://127.0.0.1:1/bucket-b?access=public"
TRY = "http://127.0.0.1:1/bucket-a/try"
SYMBOL = ("xul.pdb", "44e4ec8c2f41492b9369d6b9a059577c2", "xul.sym")


def make_settings(urls=f"{A},{B}", tmp="/nonexistent"):
    return load(
        {
            "tecken.symbol_urls": urls,
            "sqlalchemy.url": "sqlite://",
            "tecken.cache_found_ttl": "1000",
            "tecken.cache_not_found_ttl": "10",
        },
        environ={},
        here=tmp,
    )


def make_lookup(answers, urls=f"{A},{B}", tmp="/nonexistent"):
    settings = make_settings(urls, tmp)
    cache = FakeCache()
    checker = FakeChecker(answers)
    lookup = SymbolLookup(settings, ExistenceCache(settings, cache), checker, fake_metrics())
    return lookup, settings, cache, checker


def ck(location, symbol=SYMBOL):
    return cache_mod.existence_key(location, location.key(*symbol))


def test_settings_have_the_expected_locations():
    s = make_settings()
    assert [loc.url for loc in s.all_locations] == [A, B, TRY]


def test_nothing_cached_when_a_location_failed_and_none_found():
    lookup, s, cache, checker = make_lookup({A: FAILED, B: NOT_FOUND})
    result = lookup.find(*SYMBOL)
    assert result.location is None and result.failed
    assert [url for url, _ in checker.calls] == [A, B]
    assert cache.writes == []  # not even B's "not found"


def test_nothing_cached_when_a_later_location_failed():
    lookup, s, cache, checker = make_lookup({A: NOT_FOUND, B: FAILED})
    result = lookup.find(*SYMBOL)
    assert result.location is None and result.failed
    assert cache.writes == []  # not even A's "not found"


def test_only_the_found_cached_when_found_after_a_failure():
    lookup, s, cache, checker = make_lookup({A: FAILED, B: FOUND})
    result = lookup.find(*SYMBOL)
    assert result.location.url == B
    assert result.failed
    assert cache.writes == [(ck(s.locations[1]), cache_mod.FOUND, 1000)]


def test_only_the_found_cached_with_try_after_failures():
    lookup, s, cache, checker = make_lookup({A: NOT_FOUND, B: FAILED, TRY: FOUND})
    result = lookup.find(*SYMBOL, include_try=True)
    assert result.location.url == TRY
    assert [url for url, _ in checker.calls] == [A, B, TRY]
    assert cache.writes == [(ck(s.try_location), cache_mod.FOUND, 1000)]


def test_no_failure_caches_every_answer_with_its_ttl():
    lookup, s, cache, checker = make_lookup({A: NOT_FOUND, B: FOUND})
    result = lookup.find(*SYMBOL)
    assert result.location.url == B and not result.failed
    assert sorted(cache.writes) == sorted(
        [(ck(s.locations[0]), cache_mod.NOT_FOUND, 10), (ck(s.locations[1]), cache_mod.FOUND, 1000)]
    )


def test_not_found_anywhere_caches_not_found():
    lookup, s, cache, checker = make_lookup({A: NOT_FOUND, B: NOT_FOUND})
    result = lookup.find(*SYMBOL)
    assert result.location is None and not result.failed
    assert sorted(cache.writes) == sorted(
        [(ck(s.locations[0]), cache_mod.NOT_FOUND, 10), (ck(s.locations[1]), cache_mod.NOT_FOUND, 10)]
    )
    # The try location is consulted only when asked.
    assert TRY not in [url for url, _ in checker.calls]


def test_first_found_stops_the_walk():
    lookup, s, cache, checker = make_lookup({A: FOUND, B: FOUND})
    assert lookup.find(*SYMBOL).location.url == A
    assert [url for url, _ in checker.calls] == [A]


def test_cache_hits_answer_without_storage():
    lookup, s, cache, checker = make_lookup({A: FOUND, B: FOUND})
    cache.data[ck(s.locations[0])] = cache_mod.NOT_FOUND
    cache.data[ck(s.locations[1])] = cache_mod.FOUND
    result = lookup.find(*SYMBOL)
    assert result.location.url == B
    assert checker.calls == []
    assert cache.writes == []
    assert lookup.metrics.cache_hits.value == 2


def test_cache_keys_follow_the_upper_cased_debug_id():
    lookup, s, cache, checker = make_lookup({A: FOUND})
    lookup.find("xul.pdb", "abcdef", "xul.sym")
    lookup.find("xul.pdb", "ABCDEF", "xul.sym")
    assert len(checker.calls) == 1  # the second request is a cache hit
    assert checker.calls[0][1] == "v1/xul.pdb/ABCDEF/xul.sym"


def test_refresh_skips_reads_but_writes():
    lookup, s, cache, checker = make_lookup({A: NOT_FOUND, B: FOUND})
    cache.data[ck(s.locations[0])] = cache_mod.FOUND  # stale
    cache.data[ck(s.locations[1])] = cache_mod.NOT_FOUND  # stale
    result = lookup.find(*SYMBOL, refresh=True)
    assert cache.reads == []
    assert result.location.url == B
    assert [url for url, _ in checker.calls] == [A, B]
    assert cache.data[ck(s.locations[0])] == cache_mod.NOT_FOUND
    assert cache.data[ck(s.locations[1])] == cache_mod.FOUND
    # The next, ordinary request reads what the refresh wrote.
    checker.calls.clear()
    assert lookup.find(*SYMBOL).location.url == B
    assert checker.calls == []


def test_refresh_after_a_failure_writes_only_the_found():
    lookup, s, cache, checker = make_lookup({A: FAILED, B: FOUND})
    cache.data[ck(s.locations[0])] = cache_mod.NOT_FOUND
    lookup.find(*SYMBOL, refresh=True)
    assert cache.reads == []
    assert cache.writes == [(ck(s.locations[1]), cache_mod.FOUND, 1000)]
    assert cache.data[ck(s.locations[0])] == cache_mod.NOT_FOUND  # untouched


def test_local_locations_never_cached(tmp_path):
    local = tmp_path / "symbols"
    lookup, s, cache, checker = make_lookup({A: NOT_FOUND}, urls=f"{local},{A}", tmp=str(tmp_path))
    assert s.locations[0].kind == LOCAL and s.try_location.kind == LOCAL
    local_keys = {ck(s.locations[0]), ck(s.try_location)}
    for _ in range(2):
        result = lookup.find(*SYMBOL, include_try=True)
        assert result.location is None
    # Storage (the directory) is asked every time; only the S3 location reaches the cache.
    assert [url for url, _ in checker.calls].count(s.locations[0].url) == 2
    assert [url for url, _ in checker.calls].count(s.try_location.url) == 2
    assert [url for url, _ in checker.calls].count(A) == 1
    assert not local_keys & {key for keys in cache.reads for key in keys}
    assert [w[0] for w in cache.writes] == [ck(s.locations[1])]


def test_local_found_not_cached(tmp_path):
    local = tmp_path / "symbols"
    lookup, s, cache, checker = make_lookup({}, urls=str(local), tmp=str(tmp_path))
    checker.answers[s.locations[0].url] = FOUND
    assert lookup.find(*SYMBOL).location == s.locations[0]
    assert cache.writes == []
    assert cache.reads == []


def test_invalidate_drops_every_cached_location_including_try(tmp_path):
    lookup, s, cache, checker = make_lookup({A: FOUND, B: FOUND, TRY: FOUND})
    for loc in s.all_locations:
        cache.data[ck(loc)] = cache_mod.FOUND
    other = ("other.pdb", "AB", "other.sym")
    cache.data[ck(s.locations[0], other)] = cache_mod.FOUND
    assert lookup.existence.invalidate([("xul.pdb", SYMBOL[1].upper(), "xul.sym")]) == 3
    assert all(ck(loc) not in cache.data for loc in s.all_locations)
    assert ck(s.locations[0], other) in cache.data
