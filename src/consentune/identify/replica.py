"""A fingerprint index every machine shares: a feed of index changes, and a local copy per machine.

Hosts with their own data folders cannot share one memory-mapped index
folder, so a deployment that shares its artifacts (``CONSENTUNE_MODELS_URL``)
shares the index as a feed instead: each change (a track's postings added or
replaced, a track removed) is published once, in order, and every machine
applies the feed to its own :class:`~consentune.identify.index.MmapIndex`,
which remembers how far it got.  Lookups keep their local speed; a copy lags
the feed by at most ``refresh_s`` (a cheap "anything after my mark?" read),
and the machine that made a change applies it before the call returns.

The feed is a port (:class:`IndexFeed`): the database orders the changes and
an object store holds the postings, so 100M tracks cost the database one small
row each.  A removal purges the track's published postings, so revoking
``identify`` leaves no fingerprint of the track anywhere (a copy that replays
the feed later skips the purged postings and applies the removal).
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from consentune.errors import StorageError
from consentune.identify.index import IndexStats, MmapIndex, Postings, TrackPostings

REFRESH_S = 1.0  # a copy reads the feed at most this often while it answers lookups
_READ_BATCH = 2048  # feed changes applied per local write while catching up
_HEADER = struct.Struct("<II")


@dataclass(frozen=True, slots=True)
class FeedChange:
    """One published change: ``data`` holds encoded postings, or None for a removal (or purged postings)."""

    seq: int
    track_id: str
    data: bytes | None


class IndexFeed(Protocol):
    """Ordered index changes every machine reads (the adapter keeps rows and postings where all can reach)."""

    def publish(self, changes: Sequence[tuple[str, bytes | None]]) -> None:
        """Append changes in order: (track id, encoded postings) adds or replaces, (track id, None) removes
        and purges the postings published for that track before."""

    def read(self, after: int, limit: int) -> list[FeedChange]:
        """Changes with a position after ``after``, oldest first, at most ``limit``."""


def encode_postings(item: TrackPostings) -> bytes:
    """Length in frames, hash count, then little-endian uint32 keys and anchor frames."""
    n = int(item.keys.size)
    return _HEADER.pack(item.length_frames, n) + item.keys.astype("<u4").tobytes() + item.frames.astype("<u4").tobytes()


def decode_postings(track_id: str, data: bytes) -> TrackPostings:
    """The inverse of :func:`encode_postings`; :class:`StorageError` if ``data`` is not a whole record."""
    if len(data) < _HEADER.size:
        raise StorageError(f"postings of track {track_id} are truncated", hint="re-index the track")
    length, n = _HEADER.unpack_from(data)
    if len(data) != _HEADER.size + 8 * n:
        raise StorageError(f"postings of track {track_id} have the wrong size", hint="re-index the track")
    keys = np.frombuffer(data, dtype="<u4", count=n, offset=_HEADER.size).astype(np.uint32)
    frames = np.frombuffer(data, dtype="<u4", count=n, offset=_HEADER.size + 4 * n).astype(np.uint32)
    return TrackPostings(track_id, keys, frames, length)


class ReplicatedIndex:
    """A :class:`~consentune.identify.index.FingerprintIndex` whose writes go to a shared feed and whose
    reads answer from this machine's copy of it, refreshed from the feed at most ``refresh_s`` apart."""

    def __init__(
        self,
        local: MmapIndex,
        feed: IndexFeed,
        *,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._local = local
        self._feed = feed
        self._refresh_s = refresh_s
        self._clock = clock
        self._checked_at: float | None = None
        self._lock = threading.Lock()

    @property
    def local(self) -> MmapIndex:
        return self._local

    # -- writes: published first, then applied here -------------------------------
    def add(self, items: Sequence[TrackPostings]) -> None:
        if items:
            self._feed.publish([(item.track_id, encode_postings(item)) for item in items])
            self.refresh(force=True)

    def remove(self, track_ids: Sequence[str]) -> int:
        self.refresh()
        present = [t for t in dict.fromkeys(track_ids) if self._local.contains(t)]
        if track_ids:
            self._feed.publish([(t, None) for t in dict.fromkeys(track_ids)])
            self.refresh(force=True)
        return len(present)

    # -- reads: this machine's copy ----------------------------------------------
    def lookup(self, keys: npt.NDArray[np.uint32]) -> Postings:
        self.refresh()
        return self._local.lookup(keys)

    def contains(self, track_id: str) -> bool:
        self.refresh()
        return self._local.contains(track_id)

    def track_ids(self) -> list[str]:
        self.refresh()
        return self._local.track_ids()

    def track_count(self) -> int:
        self.refresh()
        return self._local.track_count()

    def stats(self) -> IndexStats:
        self.refresh()
        return self._local.stats()

    def close(self) -> None:
        self._local.close()

    # -- catching up --------------------------------------------------------------
    def refresh(self, *, force: bool = False) -> int:
        """Apply what the feed holds beyond this copy's mark (unless read less than ``refresh_s`` ago);
        returns how many changes were applied."""
        with self._lock:
            now = self._clock()
            if not force and self._checked_at is not None and now - self._checked_at < self._refresh_s:
                return 0
            applied = 0
            while True:
                start = self._local.feed_mark()
                changes = self._feed.read(start, _READ_BATCH)
                if not changes:
                    break
                removed, added = _collapse(changes)
                if not self._local.catch_up(start=start, mark=changes[-1].seq, removed=removed, added=added):
                    continue  # another process on this folder moved the mark meanwhile: read on from there
                applied += len(changes)
                if len(changes) < _READ_BATCH:
                    break
            self._checked_at = now
            return applied


def _collapse(changes: Sequence[FeedChange]) -> tuple[list[str], list[TrackPostings]]:
    """The net effect of consecutive changes: each track's last change wins (an add replaces any copy)."""
    last: dict[str, bytes | None] = {}
    for change in changes:
        last.pop(change.track_id, None)  # keep the order of each track's last change
        last[change.track_id] = change.data
    removed: list[str] = []
    added: list[TrackPostings] = []
    for track, data in last.items():
        if data is None:
            removed.append(track)
            continue
        try:
            added.append(decode_postings(track, data))
        except StorageError:  # damaged postings: the track is left out here, and reconcile re-indexes it
            removed.append(track)
    return removed, added


__all__ = ["REFRESH_S", "FeedChange", "IndexFeed", "ReplicatedIndex", "decode_postings", "encode_postings"]
