"""Health and version endpoints (SPEC §8)."""

import os

from .errors import json_response


def lbheartbeat(request):
    return json_response(200, {"status": "ok"})


def run_checks(registry):
    """Every health check (tecken_pyramid.health); ``/__heartbeat__`` and the dashboard."""
    return registry.health.run()


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
    config.add_public_view("lbheartbeat", lbheartbeat)
    config.add_public_view("heartbeat", heartbeat)
    config.add_public_view("version", version)
