"""A folder of tlog-tiles: every file written atomically (temporary file, rename).

Tiles are not fsynced one by one (an integration writes hundreds); before the
checkpoint, which is what makes readers fetch them, everything is flushed to
disk once and the checkpoint itself is fsynced.  A process crash loses nothing
written (the page cache survives it); after a machine crash the checkpoint
never points at tiles that did not reach the disk.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from consentune.errors import InvalidInput, StorageError
from consentune.ledger.tiles import CHECKPOINT_PATH, parse_tile_path


class FileTileStore:
    """Implements :class:`consentune.ledger.tiles.TileStore` on a directory any static server can serve."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, path: str) -> Path:
        if path != CHECKPOINT_PATH:
            parse_tile_path(path)  # only well-formed tile paths: nothing can escape the folder
        return self.root / path

    def write(self, path: str, data: bytes) -> None:
        target = self._path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                durable = path == CHECKPOINT_PATH
                if durable:
                    os.sync()  # every tile written so far reaches the disk before the checkpoint naming them
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    if durable:
                        os.fsync(handle.fileno())
                os.chmod(temporary, 0o644)
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(
                f"cannot write tile {path}: {exc.strerror}", hint=f"check that {self.root} is writable"
            ) from None

    def read(self, path: str) -> bytes | None:
        try:
            return self._path(path).read_bytes()
        except FileNotFoundError:
            return None
        except InvalidInput:
            raise
        except OSError as exc:
            raise StorageError(f"cannot read tile {path}: {exc.strerror}", hint=f"check {self.root}") from None


__all__ = ["FileTileStore"]
