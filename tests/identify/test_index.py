"""MmapIndex: lookups equal a brute-force scan; add, replace, remove, merge and compaction keep that true."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from consentune.errors import InvalidInput
from consentune.identify import MmapIndex, TrackPostings


def postings(track: str, seed: int, n: int = 300) -> TrackPostings:
    rng = np.random.default_rng(seed)
    keys = (rng.integers(0, 400, n).astype(np.uint32) << np.uint32(8)) | rng.integers(0, 160, n).astype(np.uint32)
    frames = rng.integers(0, 5000, n).astype(np.uint32)
    return TrackPostings(track, keys, frames, 5000)


def brute(items: dict[str, TrackPostings], query: np.ndarray) -> set[tuple[int, str, int, int]]:
    out = set()
    for row, key in enumerate(query.tolist()):
        for item in items.values():
            hit = (item.keys >> 8) == (key >> 8)
            for k, f in zip(item.keys[hit].tolist(), item.frames[hit].tolist(), strict=True):
                out.add((row, item.track_id, f, k & 0xFF))
    return out


def found(index: MmapIndex, query: np.ndarray) -> set[tuple[int, str, int, int]]:
    p = index.lookup(query)
    names = [p.tracks[t] for t in p.track.tolist()]
    return set(zip(p.query_row.tolist(), names, p.frame.tolist(), p.freq.tolist(), strict=True))


@pytest.fixture
def query() -> np.ndarray:
    rng = np.random.default_rng(99)
    q = rng.integers(0, 400, 200).astype(np.uint32) << np.uint32(8)
    return np.concatenate([q, q[:20]])  # repeated query keys must each get their postings


def test_lookup_equals_brute_force_through_add_remove_merge(tmp_path: Path, query: np.ndarray) -> None:
    index = MmapIndex(tmp_path / "ix", max_segments=3)
    live: dict[str, TrackPostings] = {}
    for i in range(10):  # single adds: more segments than max_segments, so merges happen
        item = postings(f"t{i}", i)
        index.add([item])
        live[item.track_id] = item
        assert found(index, query) == brute(live, query)
    assert index.stats().segments <= 3
    assert index.remove(["t3", "t7", "missing"]) == 2
    del live["t3"], live["t7"]
    assert found(index, query) == brute(live, query)
    replacement = postings("t5", 1234)  # re-adding replaces the old postings
    index.add([replacement])
    live["t5"] = replacement
    assert found(index, query) == brute(live, query)
    index.compact()
    stats = index.stats()
    assert stats.segments == 1 and stats.tombstones == 0 and stats.tracks == len(live)
    assert stats.postings == sum(i.keys.size for i in live.values())
    reopened = MmapIndex(tmp_path / "ix")
    assert found(reopened, query) == brute(live, query)
    assert sorted(reopened.track_ids()) == sorted(live)


def test_a_second_handle_sees_writes(tmp_path: Path, query: np.ndarray) -> None:
    reader = MmapIndex(tmp_path / "ix")
    writer = MmapIndex(tmp_path / "ix")
    assert reader.track_count() == 0
    writer.add([postings("a", 1)])
    assert reader.contains("a") and found(reader, query) == brute({"a": postings("a", 1)}, query)
    writer.remove(["a"])
    assert not reader.contains("a") and found(reader, query) == set()


def test_bad_postings_are_refused_without_writing(tmp_path: Path) -> None:
    index = MmapIndex(tmp_path / "ix")
    bad = TrackPostings("x", np.zeros(3, np.uint32), np.zeros(2, np.uint32), 10)
    with pytest.raises(InvalidInput):
        index.add([postings("ok", 1), bad])
    assert index.track_count() == 0 and not list((tmp_path / "ix").glob("seg-*"))
