"""The health checks behind ``/__heartbeat__`` and the dashboard (SPEC §8).

One service per process: its checks (database, cache, one per storage location)
run concurrently on one bounded pool under a 5 s deadline. A check still running
when another heartbeat asks is joined, not started again (single flight), so
monitoring that keeps asking while a location hangs never grows the number of
threads: at most one thread per check, whatever the concurrency.
"""

import concurrent.futures
import threading
import time

from sqlalchemy import text

HEARTBEAT_DEADLINE = 5.0


def _first_line(exc):
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"[:300]


class HealthChecks:
    def __init__(self, registry, deadline=HEARTBEAT_DEADLINE):
        self.deadline = deadline
        checks = {"database": lambda: self._check_database(registry), "cache": registry.cache.check}
        for location in registry.tecken.all_locations:
            checks[f"storage {location.url}"] = lambda loc=location: registry.storage.heartbeat(
                loc, deadline - 0.25
            )
        self._checks = checks
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=len(checks), thread_name_prefix="heartbeat"
        )
        self._running = {}  # check name -> the future of its current run
        self._lock = threading.Lock()

    @staticmethod
    def _check_database(registry):
        try:
            with registry.dbengine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            return False, _first_line(exc) + "; " + registry.rules.status()
        return True, "ok; " + registry.rules.status()

    def _futures(self):
        futures = {}
        with self._lock:
            for name, check in self._checks.items():
                future = self._running.get(name)
                if future is None or future.done():
                    future = self._pool.submit(check)
                    self._running[name] = future
                futures[name] = future
        return futures

    def run(self):
        """``{name: {"ok": bool, "detail": str}}`` for every check, within the deadline."""
        deadline = time.monotonic() + self.deadline
        results = {}
        for name, future in self._futures().items():
            try:
                ok, detail = future.result(timeout=max(deadline - time.monotonic(), 0))
            except concurrent.futures.TimeoutError:
                ok, detail = False, "timed out"
            except Exception as exc:
                ok, detail = False, type(exc).__name__
            results[name] = {"ok": bool(ok), "detail": str(detail)}
        return results

    def close(self):
        self._pool.shutdown(wait=False, cancel_futures=True)


def includeme(config):
    config.registry.health = HealthChecks(config.registry)
