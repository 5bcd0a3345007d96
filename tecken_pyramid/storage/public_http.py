"""Public S3 locations (``?access=public``, SPEC §3): existence by an anonymous HTTP
HEAD of the object URL (urllib3); the redirect is that plain URL.

Uploads and the index command write, read and list through boto3 like a private
location (:mod:`.s3_writes`): anonymous access can read but not write or list.
Objects written here get ACL public-read where the bucket takes ACLs."""

import urllib3

from ..locations import PUBLIC
from .answers import FAILED, Answer, classify_status
from .s3_writes import S3WriteSide


class PublicHttp(S3WriteSide):
    kind = PUBLIC
    public_acl = True

    def __init__(self, location, shared):
        self.location = location
        self.settings = shared.settings
        self._http = shared.http
        self._clients = shared.s3  # boto3, for the write side

    def check(self, key, remaining):
        s = self.settings
        timeout = urllib3.Timeout(
            total=remaining,
            connect=min(s.storage_connect_timeout, remaining),
            read=min(s.storage_read_timeout, remaining),
        )
        try:
            response = self._http.request(
                "HEAD", self.location.public_url(key), timeout=timeout, redirect=False, retries=False
            )
        except urllib3.exceptions.HTTPError as exc:
            return Answer(FAILED, True, f"{type(exc).__name__}: {exc}")
        except (OSError, ValueError) as exc:
            return Answer(FAILED, True, f"{type(exc).__name__}: {exc}")
        return classify_status(response.status, PUBLIC)

    def redirect_url(self, key, application_url):
        return self.location.public_url(key)

    def heartbeat(self, timeout):
        key = self.location.heartbeat_key()
        try:
            response = self._http.request(
                "HEAD",
                self.location.public_url(key),
                timeout=urllib3.Timeout(total=timeout),
                redirect=False,
                retries=False,
            )
        except Exception as exc:
            return False, f"{type(exc).__name__}"
        ok = response.status in (403, 404)
        return ok, f"HTTP {response.status}"
