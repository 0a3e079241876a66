"""Private files (keys, secrets) that are created whole or not at all.

A key is written to a temporary file in the same folder (mode 0600),
flushed to disk, then hard-linked into place, which fails if the name
already exists: a crash leaves either no key file or a complete one, and of
several workers starting at once the first one's key wins for all of them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from consentune.errors import InvalidInput


def create_private_file(path: Path, data: bytes) -> bool:
    """Publish ``data`` at ``path`` (mode 0600) atomically; False if ``path`` already existed (theirs is kept)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        _fsync_dir(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def read_private_file(path: Path, *, what: str) -> bytes:
    """The bytes of a key file that only its owner may read; InvalidInput if others may."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InvalidInput(
            f"{what} {path} has mode {stat.S_IMODE(mode):o}; group/other may access it",
            hint=f"run: chmod 600 {path}",
        )
    return path.read_bytes()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["create_private_file", "read_private_file"]
