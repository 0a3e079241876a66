"""Content-addressed blob stores for original uploads (private to the gate).

Blobs are named by their SHA-256, so storing the same bytes twice is a
no-op and any machine can read what another stored.  :class:`BlobStore` is
the protocol; :class:`FolderBlobStore` (the default, a local or mounted
folder) writes atomically (temp file, fsync, rename), so a crash never leaves
a half-written original; :mod:`consentune.gate.blobs_s3` is the
S3-compatible object store.  :func:`open_blob_store` picks one from a URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from consentune.errors import InvalidInput, NotFound, StorageError

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class BlobStore(Protocol):
    """Where original uploads live, named by SHA-256 hex digest."""

    def put_new(self, data: bytes) -> tuple[str, bool]:
        """Store ``data``; return its digest and whether this call wrote it (False: it was there)."""

    def get(self, digest: str) -> bytes:
        """The blob's bytes; :class:`~consentune.errors.NotFound` if it is missing."""

    def delete(self, digest: str) -> None:
        """Remove a blob (absent is fine)."""

    def exists(self, digest: str) -> bool: ...

    def ping(self) -> None:
        """Return if the store is reachable and writable; raise :class:`~consentune.errors.StorageError` if not."""

    def stale_digests(self, cutoff: float) -> Iterator[str]:
        """Digests of blobs last written before ``cutoff`` (epoch seconds), for the orphan sweep."""

    def sweep_temps(self, cutoff: float) -> int:
        """Remove temporary files a crash left, last written before ``cutoff``; how many were removed."""


def check_digest(digest: str) -> None:
    if not _SHA_RE.match(digest):
        raise StorageError(f"invalid blob name {digest!r}", hint="blob names are SHA-256 hex digests")


def open_blob_store(location: str | Path, *, s3_endpoint_url: str | None = None) -> BlobStore:
    """A folder path (default) or ``s3://bucket/prefix`` (an S3-compatible object store)."""
    text = str(location)
    if text.startswith("s3://"):
        from consentune.gate.blobs_s3 import S3BlobStore

        return S3BlobStore.from_url(text, endpoint_url=s3_endpoint_url)
    if "://" in text and not text.startswith("file://"):
        raise InvalidInput(
            f"CONSENTUNE_BLOB_URL={text!r} is not a folder or an s3:// URL",
            hint="use a folder path every worker can reach, or s3://bucket/prefix",
        )
    return FolderBlobStore(Path(text.removeprefix("file://")))


class FolderBlobStore:
    """Blobs as files under ``root/aa/bb/<digest>`` (a local disk or a folder every machine mounts)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, data: bytes) -> str:
        """Store ``data``; return its SHA-256 hex digest (the blob's only name)."""
        return self.put_new(data)[0]

    def put_new(self, data: bytes) -> tuple[str, bool]:
        """Store ``data``; return its digest and whether this call wrote the file (False: it was there)."""
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if path.exists():
            with contextlib.suppress(FileNotFoundError):
                os.utime(path)  # fresh again: the orphan sweep leaves it to the upload now registering it
            return digest, False
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise StorageError(
                f"cannot write blob {digest}: {exc}",
                hint="check disk space and permissions of CONSENTUNE_HOME",
            ) from None
        return digest, True

    def delete(self, digest: str) -> None:
        """Remove a blob (absent is fine): only for an upload whose registration failed."""
        self._path(digest).unlink(missing_ok=True)

    def get(self, digest: str) -> bytes:
        path = self._path(digest)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is missing", hint="restore the blob folder from backup") from None

    def stale_digests(self, cutoff: float) -> Iterator[str]:
        """Blobs last written before ``cutoff`` (epoch seconds)."""
        for path in self._older_than(cutoff):
            if _SHA_RE.match(path.name):
                yield path.name

    def sweep_temps(self, cutoff: float) -> int:
        """Remove ``.incoming-`` files a crash left (older than ``cutoff``); how many were removed."""
        removed = 0
        for path in self._older_than(cutoff):
            if path.name.startswith(".incoming-"):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def _older_than(self, cutoff: float) -> Iterator[Path]:
        for path in self.root.glob("*/*/*"):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    yield path
            except FileNotFoundError:
                continue

    def exists(self, digest: str) -> bool:
        return self._path(digest).exists()

    def ping(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"blob folder {self.root} is unusable: {exc}", hint="check the mount") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"blob folder {self.root} is not writable", hint="check its owner and mode")

    def _path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / digest[:2] / digest[2:4] / digest


__all__ = ["BlobStore", "FolderBlobStore", "check_digest", "open_blob_store"]
