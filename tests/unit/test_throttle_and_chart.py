"""The login throttle on the in-process cache, and the dashboard's chart geometry."""

import datetime

from tecken_pyramid.admin.dashboard import chart
from tecken_pyramid.cache import CacheUnavailable, InProcessCache
from tecken_pyramid.security import THROTTLE_FAILURES, LoginThrottle


class DownCache(InProcessCache):
    """A shared cache that is down: reads miss, writes raise (as MemcachedCache does)."""

    def get_many(self, keys):
        return {}

    def set_many(self, values, ttl):
        pass

    def incr(self, key, ttl):
        raise CacheUnavailable("down")

    def delete_many(self, keys):
        raise CacheUnavailable("down")


def test_throttle_locks_after_five_failures_per_user_and_address():
    throttle = LoginThrottle(InProcessCache())
    for _ in range(THROTTLE_FAILURES - 1):
        throttle.failed("admin", "10.0.0.1")
    assert not throttle.locked("admin", "10.0.0.1")
    throttle.failed("Admin", "10.0.0.1")  # usernames count case-insensitively
    assert throttle.locked("admin", "10.0.0.1")
    assert not throttle.locked("admin", "10.0.0.2")
    assert not throttle.locked("other", "10.0.0.1")


def test_success_resets_the_count():
    throttle = LoginThrottle(InProcessCache())
    for _ in range(THROTTLE_FAILURES - 1):
        throttle.failed("admin", "a")
    throttle.succeeded("admin", "a")
    throttle.failed("admin", "a")
    assert not throttle.locked("admin", "a")


def test_throttle_falls_back_in_process_while_the_cache_is_down():
    throttle = LoginThrottle(DownCache())
    for _ in range(THROTTLE_FAILURES):
        throttle.failed("admin", "a")
    assert throttle.locked("admin", "a")


def test_chart_geometry():
    today = datetime.date(2026, 11, 27)
    days = [{"day": today - datetime.timedelta(days=n), "rows": n} for n in (2, 1, 0)]
    c = chart(days)
    assert c["peak"] == 2
    heights = [bar["height"] for bar in c["bars"]]
    assert heights[0] > heights[1] > 0 and heights[2] == 0
    assert all(bar["y"] + bar["height"] == c["baseline"] for bar in c["bars"])
    assert [bar["label"] for bar in c["bars"]] == ["11-25", "11-26", "11-27"]


def test_chart_without_misses_and_a_tiny_bar():
    assert chart([{"day": datetime.date(2026, 1, 1), "rows": 0}])["peak"] == 0
    c = chart(
        [{"day": datetime.date(2026, 1, 1), "rows": 1}, {"day": datetime.date(2026, 1, 2), "rows": 100000}]
    )
    assert c["bars"][0]["height"] >= 1  # a day with misses is always visible
