"""The shared fingerprint index's feed: change rows in the database, postings beside the models.

Each track's postings are one object, ``<models location>/fingerprints/<track>.bin``,
sealed with the deployment's key (a bucket writer without the secrets cannot
plant fingerprints that would claim other artists' uploads) and replaced when
the track is indexed again.  A removal deletes the object, so a purge leaves
no copy behind; a copy that replays an older add whose object is gone skips it
(the removal that deleted it comes later in the feed).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from consentune.errors import StorageError
from consentune.identify.replica import FeedChange
from consentune.s3client import MISSING, error_code, make_client, split_url

log = logging.getLogger(__name__)
_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SEAL = 32


class FeedRows(Protocol):
    def append(self, changes: Sequence[tuple[str, bool]]) -> None: ...
    def read(self, after: int, limit: int) -> list[tuple[int, str, bool]]: ...


class PostingsObjects(Protocol):
    """One object per track; ``get`` returns None for an absent one."""

    def put(self, track: str, data: bytes) -> None: ...
    def get(self, track: str) -> bytes | None: ...
    def delete(self, track: str) -> None: ...


class PublishedIndexFeed:
    """:class:`~consentune.identify.replica.IndexFeed` over database rows and sealed postings objects."""

    def __init__(self, rows: FeedRows, objects: PostingsObjects, *, key: bytes) -> None:
        self._rows = rows
        self._objects = objects
        self._key = key

    def publish(self, changes: Sequence[tuple[str, bytes | None]]) -> None:
        for track, data in changes:  # postings first: a row never names postings not yet stored
            if data is not None:
                self._objects.put(track, self._seal(track, data) + data)
        self._rows.append([(track, data is None) for track, data in changes])
        for track, data in changes:  # purged only once the removal is in the feed every copy reads
            if data is None:
                self._objects.delete(track)

    def read(self, after: int, limit: int) -> list[FeedChange]:
        out = []
        for seq, track, removed in self._rows.read(after, limit):
            out.append(FeedChange(seq, track, None if removed else self._postings(track)))
        return out

    def _postings(self, track: str) -> bytes | None:
        sealed = self._objects.get(track)
        if sealed is None:
            return None
        seal, data = sealed[:_SEAL], sealed[_SEAL:]
        if not hmac.compare_digest(seal, self._seal(track, data)):
            log.warning(
                "fingerprints of track %s are not sealed with this machine's secret; left out of the index "
                "(every machine must use the same CONSENTUNE_SECRETS_DIR)",
                track,
            )
            return None
        return data

    def _seal(self, track: str, data: bytes) -> bytes:
        return hmac.new(self._key, track.encode() + b"\0" + data, hashlib.sha256).digest()


class FolderPostings:
    """``<dir>/<track>.bin``, written atomically: a local folder or one every machine mounts."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, track: str, data: bytes) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".incoming-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, self._path(track))
        except OSError as exc:
            raise StorageError(
                f"cannot publish fingerprints to {self.directory}: {exc.strerror}",
                hint="check that CONSENTUNE_MODELS_URL names a folder this machine can write",
            ) from None

    def get(self, track: str) -> bytes | None:
        try:
            return self._path(track).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, track: str) -> None:
        self._path(track).unlink(missing_ok=True)

    def _path(self, track: str) -> Path:
        return self.directory / f"{_object_name(track)}.bin"


class S3Postings:
    """``<prefix>/<track>.bin`` in an S3-compatible bucket."""

    def __init__(self, url: str, *, endpoint_url: str | None = None, client: Any = None) -> None:
        self.bucket, self.prefix = split_url(url)
        self._client = client if client is not None else make_client(endpoint_url)

    def put(self, track: str, data: bytes) -> None:
        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(track), Body=data)
        except Exception as exc:
            raise _failed("publish", track, exc) from None

    def get(self, track: str) -> bytes | None:
        try:
            body: bytes = self._client.get_object(Bucket=self.bucket, Key=self._key(track))["Body"].read()
        except Exception as exc:
            if error_code(exc) in MISSING:
                return None
            raise _failed("read", track, exc) from None
        return body

    def delete(self, track: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(track))
        except Exception as exc:
            if error_code(exc) not in MISSING:
                raise _failed("purge", track, exc) from None

    def _key(self, track: str) -> str:
        name = f"{_object_name(track)}.bin"
        return f"{self.prefix}/{name}" if self.prefix else name


def open_postings(models_location: str, *, s3_endpoint_url: str | None = None) -> PostingsObjects:
    """Postings beside the models: ``<folder>/fingerprints`` or ``s3://bucket/prefix/fingerprints``."""
    if models_location.startswith("s3://"):
        return S3Postings(models_location.rstrip("/") + "/fingerprints", endpoint_url=s3_endpoint_url)
    return FolderPostings(Path(models_location.removeprefix("file://")) / "fingerprints")


def _object_name(track: str) -> str:
    """Track ids are short and plain; anything else is named by its digest, never by a path it spells."""
    return track if _SAFE.match(track) and track not in {".", ".."} else hashlib.sha256(track.encode()).hexdigest()


def _failed(what: str, track: str, exc: Exception) -> StorageError:
    return StorageError(
        f"cannot {what} the fingerprints of track {track} in the model bucket: {error_code(exc) or type(exc).__name__}",
        hint="check CONSENTUNE_MODELS_URL, CONSENTUNE_S3_ENDPOINT_URL and the AWS_* credentials",
    )


__all__ = ["FolderPostings", "PublishedIndexFeed", "S3Postings", "open_postings"]
