"""Private S3 locations (the default, SPEC §3): existence by boto3 ``head_object``;
the redirect is a presigned GET URL, reused in-process for up to 60 s.

boto3 clients are made once per endpoint and shared by every private location
on it (they are thread-safe once created). Each call runs on the shared pool so
that a hung call is abandoned when the request's deadline runs out (botocore's
timeouts are per client, not per call). Uploads and the index command write,
read and list through the same clients (:mod:`.s3_writes`).
"""

import concurrent.futures
import logging
import os
import threading
import time

import boto3
import botocore.config

from ..locations import PRIVATE
from .answers import FAILED, FOUND, NOT_FOUND, Answer, classify_boto_error
from .s3_writes import S3WriteSide

log = logging.getLogger(__name__)


class S3Clients:
    """One boto3 client per (endpoint, region), made on first use."""

    def __init__(self, settings):
        self.settings = settings
        self._clients = {}
        self._lock = threading.Lock()

    def client_for(self, location):
        ident = (location.endpoint, location.region)
        client = self._clients.get(ident)
        if client is None:
            with self._lock:
                client = self._clients.get(ident)
                if client is None:
                    client = self._make(location)
                    self._clients[ident] = client
        return client

    def _make(self, location):
        s = self.settings
        config = botocore.config.Config(
            connect_timeout=s.storage_connect_timeout,
            read_timeout=s.storage_read_timeout,
            retries={"total_max_attempts": 1},  # we retry ourselves, within the deadline
            signature_version="s3v4",
            max_pool_connections=32,
            # Path style on the configured endpoint, for AWS too: it works for dotted
            # bucket names, and the redirect points at the host the operator named.
            s3={"addressing_style": "path"},
        )
        region = location.region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        kwargs = {"config": config, "region_name": region, "endpoint_url": location.endpoint}
        return boto3.session.Session().client("s3", **kwargs)


class PrivateS3(S3WriteSide):
    """Checks and redirects here; ``stat``, ``write``, ``read_head`` and ``list_keys``
    from :class:`~.s3_writes.S3WriteSide`."""

    kind = PRIVATE

    def __init__(self, location, shared):
        self.location = location
        self.settings = shared.settings
        self._clients = shared.s3
        self._pool = shared.pool
        # Shared by every private location (keyed by location URL and key), so the
        # bound on remembered URLs is one per process, not one per location.
        self._presigned = shared.presigned
        self._presigned_lock = shared.presigned_lock

    def check(self, key, remaining):
        client = self._clients.client_for(self.location)
        bucket = self.location.bucket

        def call():
            try:
                client.head_object(Bucket=bucket, Key=key)
                return Answer(FOUND)
            except Exception as exc:  # classified, never raised
                return classify_boto_error(exc)

        future = self._pool.submit(call)
        try:
            return future.result(timeout=remaining)
        except concurrent.futures.TimeoutError:
            return Answer(FAILED, False, "storage deadline ran out")

    def redirect_url(self, key, application_url):
        """A presigned GET URL, or None when it cannot be made (the lookup failed)."""
        location = self.location
        ident = (location.url, key)
        with self._presigned_lock:
            url = self._presigned.get(ident)
        if url is None:
            try:
                url = self._clients.client_for(location).generate_presigned_url(
                    "get_object",
                    Params={"Bucket": location.bucket, "Key": key},
                    ExpiresIn=self.settings.presigned_url_expires,
                )
            except Exception as exc:  # e.g. no credentials: unavailable, never a 500
                log.warning("cannot presign %s in %s: %s", key, location.url, exc)
                return None
            with self._presigned_lock:
                self._presigned[ident] = url
        return url

    def heartbeat(self, timeout):
        deadline = time.monotonic() + timeout
        answer = self.check(self.location.heartbeat_key(), deadline - time.monotonic())
        if answer.outcome == NOT_FOUND:
            return True, "HTTP 404 for a key that cannot exist"
        if answer.outcome == FOUND:
            return True, "reachable"
        return False, answer.detail
