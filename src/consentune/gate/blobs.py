"""Content-addressed blob folder for original uploads (private to the gate).

Files are named by their SHA-256 and written atomically (temp file, fsync,
rename), so a crash never leaves a half-written original and storing the
same bytes twice is a no-op.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from consentune.errors import NotFound, StorageError

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class BlobStore:
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

    def older_than(self, cutoff: float) -> Iterator[tuple[Path, str | None]]:
        """Files last written before ``cutoff`` (epoch seconds): (path, digest), digest None for a temp file."""
        for path in self.root.glob("*/*/*"):
            try:
                if not path.is_file() or path.stat().st_mtime >= cutoff:
                    continue
            except FileNotFoundError:
                continue
            if path.name.startswith(".incoming-"):
                yield path, None
            elif _SHA_RE.match(path.name):
                yield path, path.name

    def exists(self, digest: str) -> bool:
        return self._path(digest).exists()

    def _path(self, digest: str) -> Path:
        if not _SHA_RE.match(digest):
            raise StorageError(f"invalid blob name {digest!r}", hint="blob names are SHA-256 hex digests")
        return self.root / digest[:2] / digest[2:4] / digest


__all__ = ["BlobStore"]
