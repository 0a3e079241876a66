"""One boto3 S3 client factory and error reader for the object-store adapters (blobs, model artifacts).

boto3 is an optional install (``pip install 'consentune[s3]'``), imported
only when an ``s3://`` location is configured.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from consentune.errors import InvalidInput, StorageError

INSTALL_HINT = "pip install 'consentune[s3]'"
MISSING = ("NoSuchKey", "404", "NotFound")


def make_client(endpoint_url: str | None) -> Any:
    """An S3 client (credentials from boto3's chain: ``AWS_*`` variables, profile, instance role)."""
    try:
        import boto3
        from botocore.config import Config
    except ModuleNotFoundError:
        raise StorageError("the S3 object store needs boto3", hint=INSTALL_HINT) from None
    config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 4, "mode": "standard"})
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def error_code(exc: Exception) -> str:
    """The S3 error code of a botocore ``ClientError`` ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> (``bucket``, ``some/prefix``)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise InvalidInput(f"{url!r} is not an s3://bucket/prefix URL", hint="use s3://bucket/prefix")
    return parts.netloc, parts.path.strip("/")


__all__ = ["INSTALL_HINT", "MISSING", "error_code", "make_client", "split_url"]
