"""Trained models in an S3-compatible bucket: ``<prefix>/<name>.pkl``, newest by name."""

from __future__ import annotations

from typing import Any

from consentune.errors import NotFound, StorageError
from consentune.recommend.store import MODEL_PREFIX
from consentune.s3client import MISSING, error_code, make_client, split_url

_SUFFIX = ".pkl"


class S3ModelStore:
    def __init__(self, url: str, *, endpoint_url: str | None = None, client: Any = None) -> None:
        self.bucket, self.prefix = split_url(url)
        self._client = client if client is not None else make_client(endpoint_url)

    def put(self, name: str, data: bytes) -> None:
        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data)
        except Exception as exc:
            raise _failed("publish", name, exc) from None

    def newest(self) -> str | None:
        start = self._key(MODEL_PREFIX).removesuffix(_SUFFIX)
        best: str | None = None
        try:
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
                for item in page.get("Contents", []):
                    key = str(item["Key"])
                    if key.endswith(_SUFFIX) and (best is None or key > best):
                        best = key
        except Exception as exc:
            raise _failed("list", "models", exc) from None
        return None if best is None else best.rsplit("/", 1)[-1].removesuffix(_SUFFIX)

    def get(self, name: str) -> bytes:
        try:
            body: bytes = self._client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()
        except Exception as exc:
            if error_code(exc) in MISSING:
                raise NotFound(
                    f"model {name} is gone from s3://{self.bucket}/{self.prefix}", hint="train again"
                ) from None
            raise _failed("read", name, exc) from None
        return body

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}{_SUFFIX}" if self.prefix else f"{name}{_SUFFIX}"


def _failed(what: str, name: str, exc: Exception) -> StorageError:
    return StorageError(
        f"cannot {what} {name} in the model bucket: {error_code(exc) or type(exc).__name__}",
        hint="check CONSENTUNE_MODELS_URL, CONSENTUNE_S3_ENDPOINT_URL and the AWS_* credentials",
    )


__all__ = ["S3ModelStore"]
