"""Prometheus metrics (SPEC §8), one registry per app so tests can build many apps.

``/metrics`` answers only clients whose address is in
``TECKEN_METRICS_ALLOWED_ADDRESSES`` (default: loopback and the private ranges);
everyone else gets the JSON 404, as if nothing were there.
"""

import ipaddress

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pyramid.response import Response


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.downloads = Counter(
            "tecken_downloads", "Download answers by X-Symbol-Lookup result", ["result"], registry=r
        )
        # Children bound once: ``labels(...)`` costs a lock and a dict lookup per call.
        self.download_result = {
            result: self.downloads.labels(result)
            for result in (
                "found",
                "not-found",
                "ignored",
                "extension-not-allowed",
                "invalid-name",
                "invalid-query",
                "unavailable",
            )
        }
        self.cache_hits = Counter("tecken_cache_hits", "Existence cache hits", registry=r)
        self.cache_misses = Counter("tecken_cache_misses", "Existence cache misses", registry=r)
        self.cache_errors = Counter("tecken_cache_errors", "Cache operations that failed", registry=r)
        self.storage_latency = Histogram(
            "tecken_storage_lookup_seconds",
            "Storage existence checks by location kind and outcome",
            ["kind", "outcome"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
            registry=r,
        )
        self.missing_writes = Counter(
            "tecken_missing_symbol_writes", "Missing-symbol records written", registry=r
        )
        self.missing_failures = Counter(
            "tecken_missing_symbol_write_failures", "Missing-symbol write attempts that failed", registry=r
        )
        self.missing_dropped = Counter(
            "tecken_missing_symbol_dropped", "Missing-symbol records dropped (queue full)", registry=r
        )
        self.missing_queue = Gauge(
            "tecken_missing_symbol_queue_length", "Missing-symbol records waiting to be written", registry=r
        )
        self.rules_reload_failures = Counter(
            "tecken_rules_reload_failures", "Rule reloads that failed", registry=r
        )
        # Uploads (SPEC §9).
        self.uploads = Counter("tecken_uploads", "Uploads answered, by status", ["status"], registry=r)
        self.upload_files = Counter(
            "tecken_upload_files", "Archive members, by what the upload did", ["status"], registry=r
        )
        self.upload_bytes = Counter("tecken_upload_bytes_stored", "Bytes of members stored", registry=r)
        self.upload_seconds = Histogram(
            "tecken_upload_seconds",
            "Upload duration, from the request to the answer",
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.code_id_lookups = Counter(
            "tecken_code_id_lookups", "Code-id lookups after a miss, by result", ["result"], registry=r
        )


def address_allowed(address, networks):
    """Whether ``REMOTE_ADDR`` lies in one of ``networks`` (an unparsable one does not)."""
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 from a dual-stack socket
    return any(ip in network for network in networks)


def metrics_view(request):
    if not address_allowed(
        request.environ.get("REMOTE_ADDR"), request.registry.tecken.metrics_allowed_addresses
    ):
        from .views.errors import json_not_found, request_path

        return json_not_found(request_path(request))
    body = generate_latest(request.registry.metrics.registry)
    response = Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def includeme(config):
    config.registry.metrics = Metrics()
    config.add_public_view("metrics", metrics_view)
