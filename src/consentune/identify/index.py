"""Fingerprint index: a small backend interface and an on-disk, memory-mapped implementation.

:class:`MmapIndex` layout inside its folder::

    index.json          manifest: segment names and tombstoned slots (replaced atomically)
    index.lock          writers hold an exclusive flock while changing anything
    seg-000001/
      keys.npy          uint32, sorted: hash << 8 | anchor frequency bin
      vals.npy          uint32: slot << 18 | anchor frame
      tracks.json       per slot: track id, length in frames, hash count

Segments are written once and never modified: each is written into a
``.tmp`` folder, its files fsynced, then renamed into place; the manifest is
replaced (fsynced, renamed) last, so a segment exists for readers only once
it is complete.  A writer killed half-way leaves at most a ``.tmp`` folder or
a finished folder the manifest does not list; :meth:`MmapIndex.recover`
(run when the index is opened) removes those and drops listed segments that
are unreadable, reporting the loss so the caller can re-index from the
catalogue.  Adding a track writes a new
small segment; removing one tombstones its slot; when more than
``max_segments`` exist the smallest are merged (dropping tombstoned
postings), so lookups touch few files.  Readers memory-map the arrays, so
opening costs nothing proportional to the index size.

Scale (the index bounds its own work, whatever the catalogue holds):

* **postings cap per key**: one track keeps at most ``per_track_cap``
  postings of one hash (the first in time); a loop repeated forty times
  adds nothing the first few copies do not, and would make every query
  touching it pay forty times;
* **stop-list from the index itself**: at lookup, a hash whose postings
  across all segments exceed ``stop_factor`` times the mean per hash value
  of this index (``postings / HASH_SPACE``, never below ``stop_min``) is
  skipped: it occurs "everywhere" and cannot tell tracks apart, but costs
  a query as much as all its other hashes;
* **shards queried in parallel**: segments hold at most ``shard_tracks``
  tracks (merges respect it) and a lookup runs one task per segment on a
  small thread pool (numpy's searches and gathers release the GIL).

The on-disk format is unchanged by these: an index written before them
opens and answers as before (its segments are simply not capped until
they are merged or compacted).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from consentune.errors import InvalidInput, StorageError
from consentune.identify.triplets import HASH_SPACE

SLOT_BITS = 14
TIME_BITS = 18
MAX_SLOTS = 1 << SLOT_BITS  # tracks per segment
MAX_FRAMES = 1 << TIME_BITS  # anchor frames per track (2.3 h at 32 ms)
_SLOT_SHIFT = TIME_BITS
_TIME_MASK = MAX_FRAMES - 1
_T = TypeVar("_T")
_R = TypeVar("_R")
PER_TRACK_CAP = 8  # postings of one hash kept per track
STOP_FACTOR = 24.0  # a hash is stop-listed above this many times the index's mean postings per hash value ...
STOP_MIN = 256  # ... and never below this many postings (small indexes stop-list nothing)


@dataclass(frozen=True, slots=True)
class TrackPostings:
    """What one track contributes: keys (hash << 8 | f1 bin), anchor frames, length in frames."""

    track_id: str
    keys: npt.NDArray[np.uint32]
    frames: npt.NDArray[np.uint32]
    length_frames: int


@dataclass(frozen=True, slots=True)
class Postings:
    """Lookup result, one row per (query row, stored posting) pair.

    ``query_row`` indexes the query keys; ``track`` indexes :attr:`tracks`;
    ``frame`` is the stored anchor frame, ``freq`` its frequency bin.
    """

    query_row: npt.NDArray[np.int64]
    track: npt.NDArray[np.int64]
    frame: npt.NDArray[np.int64]
    freq: npt.NDArray[np.int64]
    tracks: tuple[str, ...]
    lengths: npt.NDArray[np.int64]
    stopped: int = 0  # distinct query hashes skipped by the stop-list


@dataclass(frozen=True, slots=True)
class IndexStats:
    tracks: int
    postings: int
    segments: int
    tombstones: int
    bytes_on_disk: int


class FingerprintIndex(Protocol):
    """What the matcher needs from a backend."""

    def add(self, items: Sequence[TrackPostings]) -> None: ...
    def remove(self, track_ids: Sequence[str]) -> int: ...
    def lookup(self, keys: npt.NDArray[np.uint32]) -> Postings: ...
    def contains(self, track_id: str) -> bool: ...
    def track_ids(self) -> list[str]: ...
    def track_count(self) -> int: ...
    def stats(self) -> IndexStats: ...


@dataclass(frozen=True, slots=True)
class Recovery:
    """What opening the index repaired: leftovers removed, damaged segments (and their tracks) dropped."""

    leftovers: tuple[str, ...] = ()
    dropped_segments: tuple[str, ...] = ()
    lost_tracks: tuple[str, ...] = ()  # ids read from dropped segments whose track list was still readable
    manifest_reset: bool = False

    @property
    def repaired(self) -> bool:
        """True when a writer was interrupted or data was damaged: a track being written may be missing."""
        return bool(self.leftovers) or self.lost_data

    @property
    def lost_data(self) -> bool:
        """True when tracks may have left the index: the caller should reconcile it with the catalogue."""
        return bool(self.dropped_segments) or self.manifest_reset


@dataclass
class _Manifest:
    segments: list[str]
    tombstones: dict[str, list[int]]
    next: int = 1
    mark: int = 0  # the shared index feed's position this copy holds (0: not a replica, or nothing applied)

    def tombstone(self, segment: str, slot: int) -> None:
        self.tombstones.setdefault(segment, []).append(slot)


@dataclass
class _Segment:
    name: str
    keys: npt.NDArray[np.uint32]
    vals: npt.NDArray[np.uint32]
    track_ids: list[str]
    lengths: npt.NDArray[np.int64]
    hashes: npt.NDArray[np.int64]


@dataclass
class _View:
    """An immutable snapshot of the manifest with its segments mapped."""

    stamp: tuple[int, int]
    segments: list[_Segment]
    dead: list[npt.NDArray[np.bool_]]  # per segment, per slot
    bases: npt.NDArray[np.int64]  # first global track number of each segment
    postings: int  # stored postings (tombstoned included: they are still searched)
    track_ids: tuple[str, ...]
    lengths: npt.NDArray[np.int64]
    where: dict[str, tuple[int, int]]  # live track id -> (segment, slot)
    mark: int = 0  # the manifest's feed position


class MmapIndex:
    """Append-only segments of sorted keys, memory-mapped; see the module docstring."""

    def __init__(
        self,
        folder: Path,
        *,
        max_segments: int = 8,
        recover: bool = True,
        shard_tracks: int = MAX_SLOTS,
        per_track_cap: int = PER_TRACK_CAP,
        stop_factor: float = STOP_FACTOR,
        stop_min: int = STOP_MIN,
        workers: int = 4,
    ) -> None:
        if not 1 <= shard_tracks <= MAX_SLOTS:
            raise InvalidInput(f"shard_tracks={shard_tracks} is outside 1..{MAX_SLOTS}", hint="use a smaller shard")
        if per_track_cap < 1 or stop_min < 1 or stop_factor <= 0 or workers < 1:
            raise InvalidInput(
                f"per_track_cap={per_track_cap}, stop_min={stop_min}, stop_factor={stop_factor}, workers={workers}",
                hint="caps, factors and workers must be positive",
            )
        self._folder = folder
        self._max_segments = max_segments
        self._shard = shard_tracks
        self._per_track_cap = per_track_cap
        self._stop_factor = stop_factor
        self._stop_min = stop_min
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._lock = threading.Lock()
        self._view: _View | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.recovery = self.recover() if recover else Recovery()

    @property
    def folder(self) -> Path:
        return self._folder

    # -- writes -------------------------------------------------------------
    def add(self, items: Sequence[TrackPostings]) -> None:
        """Add (or replace) tracks; written as new segments of at most ``shard_tracks`` tracks.

        Each track keeps at most ``per_track_cap`` postings per hash (the earliest).
        """
        items = self._checked(items)
        if not items:
            return
        with self._writing() as manifest:
            self._add_into(manifest, items)

    def remove(self, track_ids: Sequence[str]) -> int:
        """Tombstone tracks; returns how many were present."""
        with self._writing() as manifest:
            return self._remove_from(manifest, track_ids)

    def feed_mark(self) -> int:
        """The position in a shared index feed up to which this copy has applied changes (see ``catch_up``)."""
        return self._current().mark

    def catch_up(self, *, start: int, mark: int, removed: Sequence[str], added: Sequence[TrackPostings]) -> bool:
        """Apply a feed's changes after ``start`` up to ``mark`` in one write: ``removed`` tombstoned, then
        ``added`` added (replacing), and the mark moved.  False, changing nothing, if the copy is no longer at
        ``start`` (another process on this folder applied them first): read the feed again from the new mark."""
        items = self._checked(added)
        with self._writing() as manifest:
            if manifest.mark != start:
                return False
            self._remove_from(manifest, removed)
            if items:
                self._add_into(manifest, items)
            manifest.mark = mark
            return True

    def _checked(self, items: Sequence[TrackPostings]) -> list[TrackPostings]:
        for item in items:
            _check_postings(item)
        return [cap_postings(item, self._per_track_cap) for item in items]

    def _add_into(self, manifest: _Manifest, items: Sequence[TrackPostings]) -> None:
        view = self._load(manifest)
        for item in items:  # replacing: tombstone the old copy first
            if item.track_id in view.where:
                seg, slot = view.where[item.track_id]
                manifest.tombstone(view.segments[seg].name, slot)
        for start in range(0, len(items), self._shard):
            name = self._write_segment(items[start : start + self._shard], manifest)
            manifest.segments.append(name)
        self._merge_small(manifest)

    def _remove_from(self, manifest: _Manifest, track_ids: Sequence[str]) -> int:
        view = self._load(manifest)
        removed = 0
        for track_id in dict.fromkeys(track_ids):
            if track_id in view.where:
                seg, slot = view.where[track_id]
                manifest.tombstone(view.segments[seg].name, slot)
                removed += 1
        return removed

    def compact(self) -> None:
        """Rewrite all segments without tombstoned postings."""
        with self._writing() as manifest:
            self._merge(manifest, list(manifest.segments))

    # -- reads --------------------------------------------------------------
    def lookup(self, keys: npt.NDArray[np.uint32]) -> Postings:
        """Every live posting whose hash (key >> 8) equals a query key's hash, stop-listed hashes skipped."""
        view = self._current()
        hashes = (np.asarray(keys, dtype=np.uint32) >> np.uint32(8)).astype(np.uint64)
        unique, inverse = np.unique(hashes, return_inverse=True)
        bounds = self._map(lambda seg: _bounds(seg, unique), view.segments)
        count = np.zeros(unique.size, dtype=np.int64)
        for lo, hi in bounds:
            count += hi - lo
        common = count > self.stop_cap(view)
        stopped = int(np.count_nonzero(common))
        if stopped:
            bounds = [(lo, np.where(common, lo, hi)) for lo, hi in bounds]
        parts = [p for p in self._map(lambda a: _gather(view, *a), list(enumerate(bounds))) if p is not None]
        if not parts:
            empty = np.zeros(0, np.int64)
            return Postings(empty, empty, empty, empty, view.track_ids, view.lengths, stopped)
        unique_row, track, frame, freq = (np.concatenate(p) for p in zip(*parts, strict=True))
        # expand unique hashes back to every query row that carried them
        order = np.argsort(inverse, kind="stable")
        first = np.searchsorted(inverse[order], np.arange(unique.size))
        per_hash = np.bincount(inverse, minlength=unique.size)
        reps = per_hash[unique_row]
        pair = np.repeat(np.arange(unique_row.size), reps)
        offsets = np.arange(pair.size) - np.repeat(np.cumsum(reps) - reps, reps)
        query_row = order[first[unique_row[pair]] + offsets].astype(np.int64)
        return Postings(query_row, track[pair], frame[pair], freq[pair], view.track_ids, view.lengths, stopped)

    def stop_cap(self, view: _View | None = None) -> int:
        """Most postings a hash may have and still be looked up (the stop-list's bound for this index now)."""
        postings = (view or self._current()).postings
        return max(self._stop_min, math.ceil(self._stop_factor * postings / HASH_SPACE))

    def close(self) -> None:
        """Stop the lookup threads (the index stays usable: they start again when needed)."""
        pool, self._pool = self._pool, None
        if pool is not None and self._pool_pid == os.getpid():
            pool.shutdown(wait=True)

    def _map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """``fn`` over ``items``, on the thread pool when there are several segments to search."""
        if len(items) < 2 or self._workers < 2:
            return [fn(item) for item in items]
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():  # a forked worker inherits no threads
                self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="fingerprint-lookup")
                self._pool_pid = os.getpid()
            pool = self._pool
        return list(pool.map(fn, items))

    def contains(self, track_id: str) -> bool:
        return track_id in self._current().where

    # -- crash recovery (write/open path) ------------------------------------------
    def recover(self) -> Recovery:
        """Make the folder consistent after a writer was killed or a file was damaged.

        Under the writers' lock: an unreadable manifest is set aside and the
        index starts empty; listed segments that do not open with consistent
        sizes are dropped from the manifest; ``.tmp`` leftovers and segment
        folders the manifest does not list are removed.  Cheap (no posting
        is read), so it runs every time the index is opened.
        """
        with self._lock, open(self._folder / "index.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            manifest, reset = self._read_manifest_or_reset()
            dropped: list[str] = []
            lost: list[str] = []
            for name in list(manifest.segments):
                problem = _segment_problem(self._folder / name)
                if problem is None:
                    continue
                dropped.append(f"{name}: {problem}")
                lost.extend(_readable_track_ids(self._folder / name))
                manifest.segments.remove(name)
            listed = set(manifest.segments)
            leftovers = sorted(
                p.name
                for p in self._folder.iterdir()
                if p.name.endswith(".tmp") or (p.name.startswith("seg-") and p.name not in listed)
            )
            manifest.next = max(manifest.next, _next_free_number(self._folder))
            for name in leftovers:
                _remove(self._folder / name)
            if dropped or reset:
                self._write_manifest(manifest)
                self._view = None
            return Recovery(tuple(leftovers), tuple(dropped), tuple(lost), reset)

    def _read_manifest_or_reset(self) -> tuple[_Manifest, bool]:
        try:
            return self._read_manifest(), False
        except (StorageError, KeyError, TypeError):
            path = self._folder / "index.json"
            os.replace(path, path.with_name(f"index.json.damaged-{time.time_ns()}"))
            return _Manifest([], {}, _next_free_number(self._folder)), True

    def track_ids(self) -> list[str]:
        return sorted(self._current().where)

    def track_count(self) -> int:
        return len(self._current().where)

    def stats(self) -> IndexStats:
        view = self._current()
        live = sum(int(seg.hashes[~dead].sum()) for seg, dead in zip(view.segments, view.dead, strict=True))
        size = sum(f.stat().st_size for f in self._folder.rglob("*") if f.is_file())
        tombstones = sum(int(d.sum()) for d in view.dead)
        return IndexStats(len(view.where), live, len(view.segments), tombstones, size)

    # -- internals ------------------------------------------------------------
    @contextlib.contextmanager
    def _writing(self) -> Iterator[_Manifest]:
        with self._lock, open(self._folder / "index.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            manifest = self._read_manifest()
            yield manifest
            self._write_manifest(manifest)
            self._view = None
            self._drop_unused(manifest)

    def _current(self) -> _View:
        stamp = self._stamp()
        view = self._view
        if view is None or view.stamp != stamp:
            view = self._load(self._read_manifest(), stamp=stamp)
            self._view = view
        return view

    def _stamp(self) -> tuple[int, int]:
        try:
            st = (self._folder / "index.json").stat()
        except FileNotFoundError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_ino)

    def _read_manifest(self) -> _Manifest:
        try:
            data = json.loads((self._folder / "index.json").read_text())
        except FileNotFoundError:
            return _Manifest([], {})
        except (OSError, ValueError) as exc:
            raise StorageError(
                f"fingerprint index manifest in {self._folder} is unreadable: {exc}",
                hint="rebuild it with `consentune index build`",
            ) from exc
        try:
            return _Manifest(
                [str(n) for n in data["segments"]],
                {str(k): [int(i) for i in v] for k, v in data["tombstones"].items()},
                int(data["next"]),
                int(data.get("mark", 0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StorageError(
                f"fingerprint index manifest in {self._folder} is malformed: {exc!r}",
                hint="rebuild it with `consentune index build`",
            ) from exc

    def _write_manifest(self, manifest: _Manifest) -> None:
        live = set(manifest.segments)
        tombstones = {name: sorted(set(slots)) for name, slots in manifest.tombstones.items() if name in live}
        data = {"segments": manifest.segments, "tombstones": tombstones, "next": manifest.next, "mark": manifest.mark}
        _write_durably(self._folder / "index.json.tmp", json.dumps(data, sort_keys=True).encode())
        os.replace(self._folder / "index.json.tmp", self._folder / "index.json")
        _fsync_dir(self._folder)

    def _load(self, manifest: _Manifest, *, stamp: tuple[int, int] | None = None) -> _View:
        segments = [_open_segment(self._folder / name) for name in manifest.segments]
        dead = []
        for seg in segments:
            mask = np.zeros(len(seg.track_ids), dtype=bool)
            mask[manifest.tombstones.get(seg.name, [])] = True
            dead.append(mask)
        counts = np.array([len(s.track_ids) for s in segments], dtype=np.int64)
        bases = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        track_ids = tuple(t for s in segments for t in s.track_ids)
        lengths = np.concatenate([s.lengths for s in segments]) if segments else np.zeros(0, np.int64)
        where = {}
        for s, (seg, mask) in enumerate(zip(segments, dead, strict=True)):
            for slot, track_id in enumerate(seg.track_ids):
                if not mask[slot]:
                    where[track_id] = (s, slot)
        postings = int(sum(int(seg.hashes.sum()) for seg in segments))
        return _View(stamp or self._stamp(), segments, dead, bases, postings, track_ids, lengths, where, manifest.mark)

    def _write_segment(self, items: Sequence[TrackPostings], manifest: _Manifest) -> str:
        number = max(manifest.next, _next_free_number(self._folder))  # never reuse a leftover's name
        manifest.next = number + 1
        name = f"seg-{number:06d}"
        keys = np.concatenate([i.keys for i in items]) if items else np.zeros(0, np.uint32)
        vals = np.concatenate(
            [(np.uint32(slot) << np.uint32(_SLOT_SHIFT)) | i.frames for slot, i in enumerate(items)]
        ).astype(np.uint32)
        meta = [{"id": i.track_id, "frames": i.length_frames, "hashes": int(i.keys.size)} for i in items]
        _save_segment(self._folder / name, keys, vals, meta)
        return name

    def _merge_small(self, manifest: _Manifest) -> None:
        names = list(manifest.segments)
        if len(names) <= self._max_segments:
            return
        sizes = {n: (self._folder / n / "keys.npy").stat().st_size for n in names}
        smallest = sorted(names, key=lambda n: sizes[n])[: len(names) - self._max_segments // 2]
        self._merge(manifest, smallest)

    def _merge(self, manifest: _Manifest, names: list[str]) -> None:
        """Replace ``names`` by new segments holding only their live postings."""
        items: list[TrackPostings] = []
        for name in names:
            seg = _open_segment(self._folder / name)
            dead = set(manifest.tombstones.get(name, []))
            slot = seg.vals >> np.uint32(_SLOT_SHIFT)
            order = np.argsort(slot, kind="stable")
            bounds = np.searchsorted(slot[order], np.arange(len(seg.track_ids) + 1))
            for s, track_id in enumerate(seg.track_ids):
                if s in dead:
                    continue
                rows = order[bounds[s] : bounds[s + 1]]
                items.append(
                    TrackPostings(
                        track_id, np.array(seg.keys[rows]), seg.vals[rows] & np.uint32(_TIME_MASK), int(seg.lengths[s])
                    )
                )
        kept = [n for n in manifest.segments if n not in names]
        for start in range(0, len(items), self._shard):
            kept.append(self._write_segment(items[start : start + self._shard], manifest))
        manifest.segments = kept

    def _drop_unused(self, manifest: _Manifest) -> None:
        keep = set(manifest.segments)
        for path in self._folder.glob("seg-*"):
            if path.name not in keep and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)


def _check_postings(item: TrackPostings) -> None:
    if item.keys.shape != item.frames.shape:
        raise InvalidInput(f"track {item.track_id}: keys and frames differ in length", hint="pass one frame per key")
    if item.length_frames >= MAX_FRAMES or (item.frames.size and int(item.frames.max()) >= MAX_FRAMES):
        raise InvalidInput(
            f"track {item.track_id} is longer than the index holds ({MAX_FRAMES} frames)",
            hint="split very long recordings before indexing",
        )


def _save_segment(path: Path, keys: npt.NDArray[np.uint32], vals: npt.NDArray[np.uint32], meta: list[dict]) -> None:  # type: ignore[type-arg]
    order = np.argsort(keys, kind="stable")
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, array in (("keys.npy", keys[order]), ("vals.npy", vals[order])):
        with open(tmp / name, "wb") as out:
            np.save(out, array)
            out.flush()
            os.fsync(out.fileno())
    _write_durably(tmp / "tracks.json", json.dumps(meta).encode())
    _fsync_dir(tmp)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` survive a power cut (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _segment_problem(path: Path) -> str | None:
    """Why a listed segment cannot be used, or None: files open, sizes agree with its track list."""
    try:
        seg = _open_segment(path)
    except StorageError as exc:
        return exc.message
    except (KeyError, TypeError) as exc:
        return f"track list is malformed ({exc!r})"
    expected = int(seg.hashes.sum())
    if seg.keys.ndim != 1 or seg.keys.shape != seg.vals.shape or seg.keys.size != expected:
        return f"{seg.keys.size} keys and {seg.vals.size} values where the track list says {expected}"
    if seg.keys.dtype != np.uint32 or seg.vals.dtype != np.uint32:
        return f"arrays of {seg.keys.dtype}/{seg.vals.dtype}, not uint32"
    return None


def _readable_track_ids(path: Path) -> list[str]:
    try:
        return [str(m["id"]) for m in json.loads((path / "tracks.json").read_text())]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def _next_free_number(folder: Path) -> int:
    """One past the highest segment number present on disk (finished or not)."""
    numbers = [0]
    for p in folder.glob("seg-*"):
        digits = p.name[4:].removesuffix(".tmp")
        if digits.isdigit():
            numbers.append(int(digits))
    return max(numbers) + 1


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _open_segment(path: Path) -> _Segment:
    try:
        keys = np.load(path / "keys.npy", mmap_mode="r")
        vals = np.load(path / "vals.npy", mmap_mode="r")
        meta = json.loads((path / "tracks.json").read_text())
    except (OSError, ValueError, EOFError) as exc:
        raise StorageError(
            f"fingerprint index segment {path.name} is unreadable: {exc}",
            hint="rebuild the index with `consentune index build`",
        ) from exc
    lengths = np.array([m["frames"] for m in meta], dtype=np.int64)
    hashes = np.array([m["hashes"] for m in meta], dtype=np.int64)
    return _Segment(path.name, keys, vals, [m["id"] for m in meta], lengths, hashes)


def _bounds(segment: _Segment, hashes: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per hash in ``hashes`` (sorted, unique): the range ``[lo, hi)`` of its postings in the segment."""
    if segment.keys.size == 0:
        empty = np.zeros(hashes.size, dtype=np.int64)
        return empty, empty
    # bounds in the keys' own dtype: a wider dtype would make numpy copy the whole mapped array per call
    lo = np.searchsorted(segment.keys, (hashes << np.uint64(8)).astype(np.uint32), side="left")
    hi = np.searchsorted(segment.keys, ((hashes + np.uint64(1)) << np.uint64(8)).astype(np.uint32), side="left")
    return lo.astype(np.int64), hi.astype(np.int64)


def _gather(
    view: _View, s: int, bounds: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]
) -> tuple[npt.NDArray[np.int64], ...] | None:
    """Live postings of segment ``s`` in the given ranges: (hash row, global track, frame, f1 bin)."""
    lo, hi = bounds
    count = hi - lo
    total = int(count.sum())
    if total == 0:
        return None
    segment = view.segments[s]
    unique_row = np.repeat(np.arange(lo.size), count)
    position = np.arange(total) - np.repeat(np.cumsum(count) - count, count) + np.repeat(lo, count)
    vals = segment.vals[position]
    slot = (vals >> np.uint32(_SLOT_SHIFT)).astype(np.int64)
    live = ~view.dead[s][slot]
    return (
        unique_row[live],
        slot[live] + view.bases[s],
        (vals[live] & np.uint32(_TIME_MASK)).astype(np.int64),
        (segment.keys[position[live]] & np.uint32(0xFF)).astype(np.int64),
    )


def cap_postings(item: TrackPostings, cap: int) -> TrackPostings:
    """``item`` with at most ``cap`` postings per hash (``key >> 8``), keeping the earliest of each."""
    hashes = item.keys >> np.uint32(8)
    order = np.lexsort((item.frames, hashes))
    ordered = hashes[order]
    rank = np.arange(ordered.size) - np.searchsorted(ordered, ordered, side="left")
    if ordered.size == 0 or int(rank.max()) < cap:
        return item
    keep = np.sort(order[rank < cap])
    return TrackPostings(item.track_id, item.keys[keep], item.frames[keep], item.length_frames)


__all__ = [
    "PER_TRACK_CAP",
    "STOP_FACTOR",
    "STOP_MIN",
    "FingerprintIndex",
    "IndexStats",
    "MmapIndex",
    "Postings",
    "Recovery",
    "TrackPostings",
    "cap_postings",
]
