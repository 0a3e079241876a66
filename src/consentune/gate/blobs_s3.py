"""Original uploads in an S3-compatible object store (AWS S3, MinIO, Ceph RGW, ...), via boto3.

Objects are ``<prefix>/aa/bb/<sha256>``, the folder store's layout.  A PUT
is atomic in S3 (readers see the whole object or none), so no temp-file
dance is needed; two machines storing the same bytes at once both write
identical content.  Credentials come from boto3's usual chain (``AWS_*``
variables, a profile, an instance role); ``endpoint_url`` points at a
non-AWS server.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

from consentune.errors import InvalidInput, NotFound, StorageError
from consentune.gate.blobs import check_digest
from consentune.s3client import MISSING, error_code, make_client, split_url

_SHA = re.compile(r"^[0-9a-f]{64}$")


class S3BlobStore:
    def __init__(self, *, bucket: str, prefix: str = "", endpoint_url: str | None = None, client: Any = None) -> None:
        if not bucket:
            raise InvalidInput("the blob store URL names no bucket", hint="use s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self._client = client if client is not None else make_client(endpoint_url)

    @classmethod
    def from_url(cls, url: str, *, endpoint_url: str | None = None) -> S3BlobStore:
        bucket, prefix = split_url(url)
        return cls(bucket=bucket, prefix=prefix, endpoint_url=endpoint_url)

    def put_new(self, data: bytes) -> tuple[str, bool]:
        digest = hashlib.sha256(data).hexdigest()
        if self.exists(digest):
            return digest, False
        self._call(
            "store", digest, lambda: self._client.put_object(Bucket=self.bucket, Key=self._key(digest), Body=data)
        )
        return digest, True

    def get(self, digest: str) -> bytes:
        try:
            reply = self._client.get_object(Bucket=self.bucket, Key=self._key(digest))
            body: bytes = reply["Body"].read()
            return body
        except Exception as exc:
            if error_code(exc) in MISSING:
                raise NotFound(
                    f"blob {digest} is missing from s3://{self.bucket}/{self.prefix}",
                    hint="restore the object from the bucket's versions or backup",
                ) from None
            raise _storage_error("read", digest, exc) from None

    def delete(self, digest: str) -> None:
        self._call("delete", digest, lambda: self._client.delete_object(Bucket=self.bucket, Key=self._key(digest)))

    def exists(self, digest: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(digest))
        except Exception as exc:
            if error_code(exc) in MISSING:
                return False
            raise _storage_error("look up", digest, exc) from None
        return True

    def ping(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise StorageError(
                f"bucket {self.bucket!r} at {self.endpoint_url or 'AWS S3'} is unreachable: {error_code(exc) or exc}",
                hint="check CONSENTUNE_BLOB_URL, CONSENTUNE_S3_ENDPOINT_URL and the AWS_* credentials",
            ) from None

    def stale_digests(self, cutoff: float) -> Iterator[str]:
        """Objects last written before ``cutoff`` (epoch seconds); a PUT is atomic, so there are no temp files."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else ""
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = str(item["Key"]).rsplit("/", 1)[-1]
                if _SHA.match(name) and item["LastModified"].timestamp() < cutoff:
                    yield name

    def sweep_temps(self, cutoff: float) -> int:
        """A PUT is atomic: an object store keeps no temporary files."""
        return 0

    def _key(self, digest: str) -> str:
        check_digest(digest)
        name = f"{digest[:2]}/{digest[2:4]}/{digest}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def _call(self, what: str, digest: str, action: Any) -> None:
        try:
            action()
        except Exception as exc:
            raise _storage_error(what, digest, exc) from None


def _storage_error(what: str, digest: str, exc: Exception) -> StorageError:
    return StorageError(
        f"cannot {what} blob {digest} in the object store: {error_code(exc) or type(exc).__name__}",
        hint="check that the object store is reachable and the credentials may read and write the bucket",
    )


__all__ = ["S3BlobStore"]
