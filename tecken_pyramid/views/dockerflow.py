"""Health and version endpoints (SPEC §8)."""

import concurrent.futures
import os
import time

from sqlalchemy import text

from .errors import json_response, method_not_allowed

HEARTBEAT_DEADLINE = 5.0


def lbheartbeat(request):
    return json_response(200, {"status": "ok"})


def _check_database(registry):
    try:
        with registry.dbengine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        return False, f"{type(exc).__name__}: {first}"[:300] + "; " + registry.rules.status()
    return True, "ok; " + registry.rules.status()


def run_checks(registry):
    """Run every health check concurrently under the deadline.

    Returns ``{name: {"ok": bool, "detail": str}}``; used by ``/__heartbeat__``
    and by the console dashboard, so both always show the same checks.
    """
    checks = {
        "database": lambda: _check_database(registry),
        "cache": registry.cache.check,
    }
    for location in registry.tecken.all_locations:
        checks[f"storage {location.url}"] = (
            lambda loc=location: registry.storage.heartbeat(loc, HEARTBEAT_DEADLINE - 0.25)
        )
    deadline = time.monotonic() + HEARTBEAT_DEADLINE
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="heartbeat")
    futures = {name: pool.submit(fn) for name, fn in checks.items()}
    results = {}
    for name, future in futures.items():
        try:
            ok, detail = future.result(timeout=max(deadline - time.monotonic(), 0))
        except concurrent.futures.TimeoutError:
            ok, detail = False, "timed out"
        except Exception as exc:
            ok, detail = False, f"{type(exc).__name__}"
        results[name] = {"ok": bool(ok), "detail": str(detail)}
    pool.shutdown(wait=False, cancel_futures=True)
    return results


def heartbeat(request):
    results = run_checks(request.registry)
    healthy = all(r["ok"] for r in results.values())
    return json_response(200 if healthy else 500, {"status": "ok" if healthy else "error", "checks": results})


def _git_commit(here):
    """The checkout's commit, read from .git without running git."""
    git = os.path.join(here, ".git")
    try:
        head = open(os.path.join(git, "HEAD")).read().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            path = os.path.join(git, ref)
            if os.path.exists(path):
                return open(path).read().strip()
            packed = os.path.join(git, "packed-refs")
            for line in open(packed):
                if line.strip().endswith(" " + ref):
                    return line.split()[0]
            return None
        return head
    except OSError:
        return None


def version(request):
    registry = request.registry
    return json_response(200, registry.version_info)


def includeme(config):
    registry = config.registry
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    info = {"version": registry.tecken.version}
    commit = os.environ.get("TECKEN_COMMIT") or _git_commit(root)
    if commit:
        info["commit"] = commit
    registry.version_info = info
    for name, path, view in (
        ("lbheartbeat", "/__lbheartbeat__", lbheartbeat),
        ("heartbeat", "/__heartbeat__", heartbeat),
        ("version", "/__version__", version),
    ):
        config.add_route(name, path)
        config.add_view(view, route_name=name, request_method=("GET", "HEAD"))
        config.add_view(method_not_allowed, route_name=name)
