"""What a storage check answers (SPEC §2 step 4): *found*, *not found* or *failed*.

The classification is shared by every backend: an HTTP status (public HTTP, or
the status inside a boto3 error) or a boto3 exception becomes an :class:`Answer`,
and ``retryable`` says whether the deadline/retry loop may ask again.
"""

import dataclasses

import botocore.exceptions

from ..locations import PRIVATE, PUBLIC

FOUND = "found"
NOT_FOUND = "not-found"
FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class Answer:
    outcome: str
    retryable: bool = False
    detail: str = ""


def classify_status(status, kind):
    """Classify an HTTP status from storage (SPEC §2 step 4)."""
    if 200 <= status < 300:
        return Answer(FOUND)
    if status == 404:
        return Answer(NOT_FOUND)
    if status in (401, 403):
        if kind == PUBLIC and status == 403:
            # S3's answer for a missing key when anonymous listing is not allowed.
            return Answer(NOT_FOUND)
        if kind == PRIVATE:
            return Answer(FAILED, False, f"HTTP {status}: bad credentials or missing permission")
        return Answer(NOT_FOUND)
    if status == 429:
        return Answer(FAILED, True, "HTTP 429")
    if 400 <= status < 500:
        # e.g. 400 for a key over S3's 1,024-byte limit: it cannot exist.
        return Answer(NOT_FOUND)
    if status >= 500:
        return Answer(FAILED, True, f"HTTP {status}")
    return Answer(FAILED, False, f"unexpected HTTP {status}")


_BOTO_RETRYABLE = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
)


def classify_boto_error(exc):
    if isinstance(exc, botocore.exceptions.ClientError):
        meta = exc.response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
        if status is None:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = int(code) if code.isdigit() else 500
        return classify_status(int(status), PRIVATE)
    if isinstance(exc, _BOTO_RETRYABLE):
        return Answer(FAILED, True, f"{type(exc).__name__}: {exc}")
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return Answer(FAILED, False, "no AWS credentials")
    return Answer(FAILED, False, f"{type(exc).__name__}: {exc}")
