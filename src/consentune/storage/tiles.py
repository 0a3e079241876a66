"""A folder of tlog-tiles: every file written atomically (temporary file, fsync, rename)."""

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
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
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
