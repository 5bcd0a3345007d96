"""Console area: the existence cache (SPEC §5, §7).

* Invalidate keys: drops the cached existence of SYMBOL/DEBUGID/FILENAME in every
  configured location, try included -- in the shared memcached cluster, or, with
  the in-process cache, in the process serving the page only.
* Look a key up now (a GET form): runs the same lookup as a download, timed, and,
  optionally, checks every location straight from storage, each timed.
"""

import time

from .. import cache as cache_mod
from ..cache import CacheUnavailable
from ..storage import FAILED, FOUND, NOT_FOUND
from .common import Done, Refused, admin_view, audit, console_action
from .forms import MAX_KEYS, InvalidateForm, LookupForm, parse_key


def server_name(server):
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def human_seconds(seconds):
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def cache_description(request):
    settings = request.registry.tecken
    cache = request.registry.cache
    ok, detail = cache.check()
    return {
        "shared": bool(getattr(cache, "shared", False)),
        "servers": [server_name(s) for s in settings.memcached_servers],
        "healthy": ok,
        "health": detail,
        "ttls": [
            (label, seconds, human_seconds(seconds), setting)
            for label, seconds, setting in (
                ("Found", settings.cache_found_ttl, "tecken.cache_found_ttl"),
                ("Not found", settings.cache_not_found_ttl, "tecken.cache_not_found_ttl"),
                (
                    "Missing-symbol repeat guard",
                    settings.missing_symbol_guard_seconds,
                    "tecken.missing_symbol_guard_seconds",
                ),
            )
        ],
        "locations": [
            {"index": loc.index, "url": loc.url, "kind": loc.kind, "cached": loc.cached}
            for loc in settings.all_locations
        ],
    }


def milliseconds(seconds):
    return f"{seconds * 1000:.1f} ms"


def run_lookup(request, symbol, debugid, filename, include_try, refresh, each):
    registry = request.registry
    lookup = registry.lookup
    locations = lookup.locations(include_try)
    # What the cache holds right now, before the lookup (which may write to it).
    existence = registry.existence
    cache_keys = {loc.index: existence.key(loc, loc.key(symbol, debugid, filename)) for loc in locations}
    held = existence.read([cache_keys[loc.index] for loc in locations if loc.cached])

    started = time.perf_counter()
    result = lookup.find(symbol, debugid, filename, include_try=include_try, refresh=refresh)
    elapsed = time.perf_counter() - started
    if result.location is not None:
        outcome = "found"
    elif result.failed:
        outcome = "failed"
    else:
        outcome = "not found"

    rows = []
    deadline = time.monotonic() + registry.tecken.storage_deadline
    for loc in locations:
        key = loc.key(symbol, debugid, filename)
        if not loc.cached:
            in_cache = "never cached (local directory)"
        else:
            value = held.get(cache_keys[loc.index])
            in_cache = {cache_mod.FOUND: "found", cache_mod.NOT_FOUND: "not found"}.get(value, "no entry")
        entry = {"index": loc.index, "url": loc.url, "key": key, "in_cache": in_cache}
        if each:
            t0 = time.perf_counter()
            answer = registry.storage.check(loc, key, deadline)
            entry["outcome"] = {FOUND: "found", NOT_FOUND: "not found", FAILED: "failed"}[answer.outcome]
            entry["detail"] = answer.detail
            entry["time"] = milliseconds(time.perf_counter() - t0)
        entry["winner"] = result.location is not None and result.location.index == loc.index
        rows.append(entry)

    return {
        "symbol": symbol,
        "debugid": debugid,
        "filename": filename,
        "outcome": outcome,
        "failed": result.failed,
        "location": None
        if result.location is None
        else {"index": result.location.index, "url": result.location.url, "key": result.key},
        "time": milliseconds(elapsed),
        "include_try": include_try,
        "refresh": refresh,
        "each": each,
        "rows": rows,
    }


@admin_view("admin.cache", renderer="admin/cache.jinja2")
def cache_page(request):
    form = LookupForm.parse(request.GET)
    lookup = None
    lookup_error = None
    if form.submitted:
        key = parse_key(form.key)
        if key is None:
            lookup_error = "Not a SYMBOL/DEBUGID/FILENAME key (the debug id is hexadecimal)."
            request.response.status = 400
        else:
            lookup = run_lookup(request, *key, form.include_try, form.refresh, form.each)
    context = dict(cache=cache_description(request), form=form.fields(), max_keys=MAX_KEYS)
    return dict(context, lookup=lookup, lookup_error=lookup_error)


@console_action("admin.cache.invalidate", then="admin.cache")
def cache_invalidate(request):
    form = InvalidateForm.parse(request.POST)
    problem = form.problem()
    if problem is not None:
        raise Refused(f"Nothing invalidated: {problem}")
    keys = form.keys()
    registry = request.registry
    shared = bool(getattr(registry.cache, "shared", False))
    try:
        dropped = registry.existence.invalidate(keys)
    except CacheUnavailable as exc:
        raise Refused(f"Nothing invalidated: memcached is unavailable ({exc}). Try again.") from None
    named = ["/".join(k) for k in keys]
    locations = len(registry.tecken.all_locations)
    audit(
        request,
        "cache.invalidate",
        ", ".join(named),
        None,
        {
            "keys": named,
            "cache": "memcached" if shared else "in-process",
            "locations": locations,
            "entries": dropped,
        },
    )
    where = "in the shared memcached cluster" if shared else "in this server process's in-process cache only"
    message = f"Invalidated {len(keys)} key{'s' if len(keys) != 1 else ''} in {locations} locations {where}."
    if dropped == 0:
        message += " (No configured location is cached: local directories never are.)"
    return Done(message)
