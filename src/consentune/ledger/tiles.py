"""The log as C2SP ``tlog-tiles``: static hash tiles, entry bundles and the checkpoint.

Tile ``(L, N)`` holds the hashes of the perfect subtrees of height ``8 * L``
with indices ``N * 256 .. N * 256 + W - 1`` (``W = 256`` for a full tile);
level 0 holds leaf hashes.  The entry bundle ``N`` holds the entries behind
the level-0 tile ``N``, each prefixed with its length as a big-endian uint16.
Publishing is idempotent and re-runnable: it rewrites, from the stored tree,
every tile that differs between two tree sizes, then the checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from consentune.errors import InvalidInput

TILE_WIDTH = 256
TILE_HEIGHT = 8
CHECKPOINT_PATH = "checkpoint"

_INDEX_PART = r"(?:x\d{3}/)*\d{3}"
_TILE_RE = re.compile(rf"tile/(0|[1-9]\d?|entries)/({_INDEX_PART})(?:\.p/([1-9]\d{{0,2}}))?")


class _Row(Protocol):
    @property
    def data(self) -> bytes: ...


class TileStore(Protocol):
    """Where published tiles live (a folder, a bucket, ...); writes must be atomic per file."""

    def write(self, path: str, data: bytes) -> None: ...
    def read(self, path: str) -> bytes | None: ...


class TileSource(Protocol):
    """What publishing reads: stored perfect-subtree hashes and entry rows."""

    def node_range(self, level: int, start: int, stop: int) -> list[bytes]: ...
    def iter_ledger(
        self, *, start: int = 0, stop: int | None = None, batch: int = 10_000
    ) -> Iterator[Sequence[_Row]]: ...


def encode_index(index: int) -> str:
    """Tile index as zero-padded 3-digit path elements, all but the last prefixed with ``x``."""
    if index < 0:
        raise InvalidInput(f"tile index {index} is negative", hint="tile indices count from 0")
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def tile_path(level: int | str, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]`` (``level="entries"`` for entry bundles)."""
    if not 1 <= width <= TILE_WIDTH:
        raise InvalidInput(f"tile width {width} is outside 1..256", hint="empty tiles are never served")
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{encode_index(index)}{suffix}"


@dataclass(frozen=True, slots=True)
class TileAddress:
    """A parsed tile path: ``level`` is None for entry bundles."""

    level: int | None
    index: int
    width: int


def parse_tile_path(path: str) -> TileAddress:
    """Parse and validate a tile or entry-bundle path exactly as :func:`tile_path` writes it."""
    match = _TILE_RE.fullmatch(path)
    if match is None:
        raise InvalidInput(f"{path[:80]!r} is not a tlog-tiles path", hint="use tile/<L>/<N>[.p/<W>]")
    level_text, index_text, width_text = match.groups()
    index = int(index_text.replace("x", "").replace("/", ""))
    width = int(width_text) if width_text else TILE_WIDTH
    level = None if level_text == "entries" else int(level_text)
    if (width_text and width >= TILE_WIDTH) or (level is not None and level > 63):
        raise InvalidInput(f"{path!r} has a width or level out of range", hint="W is 1..255, L is 0..63")
    if tile_path(level_text, index, width) != path:
        raise InvalidInput(f"{path!r} is not in canonical form", hint="indices are 3-digit groups, x-prefixed")
    return TileAddress(level, index, width)


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian uint16 length followed by its bytes."""
    return b"".join(len(data).to_bytes(2, "big") + data for data in entries)


def decode_bundle(data: bytes) -> list[bytes]:
    """Split an entry bundle into its entries; raise InvalidInput if it is truncated."""
    out, position = [], 0
    while position < len(data):
        if position + 2 > len(data):
            raise InvalidInput("entry bundle ends inside a length prefix", hint="the bundle is truncated")
        length = int.from_bytes(data[position : position + 2], "big")
        end = position + 2 + length
        if end > len(data):
            raise InvalidInput("entry bundle ends inside an entry", hint="the bundle is truncated")
        out.append(data[position + 2 : end])
        position = end
    return out


def changed_tiles(old_size: int, new_size: int) -> Iterator[tuple[int, int, int]]:
    """``(tile level, tile index, width)`` of every tile that differs between the two tree sizes."""
    level = 0
    while new_size >> (TILE_HEIGHT * level):
        count = new_size >> (TILE_HEIGHT * level)
        old_count = old_size >> (TILE_HEIGHT * level)
        for index in range(old_count // TILE_WIDTH, (count - 1) // TILE_WIDTH + 1):
            width = min(TILE_WIDTH, count - index * TILE_WIDTH)
            if width > max(0, old_count - index * TILE_WIDTH):
                yield level, index, width
        level += 1


def publish(store: TileStore, source: TileSource, *, old_size: int, new_size: int, checkpoint_note: str) -> int:
    """Write every tile and entry bundle that changed from ``old_size`` to ``new_size``, then the checkpoint.

    Tiles are written before the checkpoint that needs them, so a reader who
    verified the checkpoint can always fetch its tiles.  Returns the number of files written.
    """
    written = 0
    for level, index, width in changed_tiles(old_size, new_size):
        start = index * TILE_WIDTH
        hashes = source.node_range(TILE_HEIGHT * level, start, start + width)
        store.write(tile_path(level, index, width), b"".join(hashes))
        written += 1
        if level == 0:
            data = [row.data for page in source.iter_ledger(start=start, stop=start + width) for row in page]
            store.write(tile_path("entries", index, width), encode_bundle(data))
            written += 1
    store.write(CHECKPOINT_PATH, checkpoint_note.encode("utf-8"))
    return written + 1


class _Entry:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class RecentEntries:
    """The entries and leaf hashes this process integrated last, so publishing need not read them back.

    Holds a contiguous run ``[start, start + len)`` of the log: what the last
    integrations committed plus the tail of the partial level-0 tile before
    them, at most ``limit`` entries (beyond that it forgets everything and
    publishing reads the database, as it would without it).  A run that does
    not continue the held one (another process integrated in between) replaces it.
    """

    def __init__(self, *, limit: int = 262_144) -> None:
        self._limit = limit
        self.start = 0
        self._data: list[bytes] = []
        self._leaves: list[bytes] = []

    @property
    def stop(self) -> int:
        return self.start + len(self._data)

    def add(self, first: int, rows: Sequence[tuple[int, bytes, bytes, str | None, str | None]]) -> None:
        """Remember committed entry rows ``(seq, data, leaf hash, ...)`` that start at sequence ``first``."""
        if first != self.stop or len(self._data) + len(rows) > self._limit:
            self.start, self._data, self._leaves = first, [], []
        if len(rows) > self._limit:
            self.start = first + len(rows)
            return
        self._data.extend(row[1] for row in rows)
        self._leaves.extend(row[2] for row in rows)

    def keep_from(self, seq: int) -> None:
        """Forget entries before ``seq`` (those of full tiles already published)."""
        drop = min(max(0, seq - self.start), len(self._data))
        del self._data[:drop], self._leaves[:drop]
        self.start += drop

    def covers(self, start: int, stop: int) -> bool:
        return self.start <= start and stop <= self.stop

    def data(self, start: int, stop: int) -> list[bytes]:
        return self._data[start - self.start : stop - self.start]

    def leaves(self, start: int, stop: int) -> list[bytes]:
        return self._leaves[start - self.start : stop - self.start]


class CachedSource:
    """A :class:`TileSource` that serves level-0 hashes and entries from :class:`RecentEntries` when it holds them."""

    def __init__(self, source: TileSource, recent: RecentEntries) -> None:
        self._source, self._recent = source, recent

    def node_range(self, level: int, start: int, stop: int) -> list[bytes]:
        if level == 0 and self._recent.covers(start, stop):
            return self._recent.leaves(start, stop)
        return self._source.node_range(level, start, stop)

    def iter_ledger(self, *, start: int = 0, stop: int | None = None, batch: int = 10_000) -> Iterator[Sequence[_Row]]:
        if stop is not None and self._recent.covers(start, stop):
            yield [_Entry(data) for data in self._recent.data(start, stop)]
            return
        yield from self._source.iter_ledger(start=start, stop=stop, batch=batch)


__all__ = [
    "CHECKPOINT_PATH",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "CachedSource",
    "RecentEntries",
    "TileAddress",
    "TileSource",
    "TileStore",
    "changed_tiles",
    "decode_bundle",
    "encode_bundle",
    "encode_index",
    "parse_tile_path",
    "publish",
    "tile_path",
]
