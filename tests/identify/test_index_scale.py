"""Scale features of MmapIndex: per-track postings cap, stop-list from the index's own counts, shards, threads."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from consentune.errors import InvalidInput
from consentune.identify import MmapIndex, TrackPostings, identify_samples, track_postings
from consentune.identify.index import cap_postings

from .conftest import song
from .test_index import brute, found, postings


@pytest.fixture
def query() -> np.ndarray:
    rng = np.random.default_rng(99)
    return rng.integers(0, 400, 200).astype(np.uint32) << np.uint32(8)


def _hashes(item: TrackPostings) -> np.ndarray:
    return np.asarray(item.keys >> np.uint32(8))


def test_cap_keeps_the_earliest_postings_of_each_hash_and_bounds_the_track() -> None:
    rng = np.random.default_rng(5)
    loop = (rng.integers(0, 50, 40).astype(np.uint32) << np.uint32(8)) | np.uint32(7)
    keys = np.tile(loop, 30)  # a 40-hash loop repeated 30 times
    frames = rng.permutation(keys.size).astype(np.uint32)
    capped = cap_postings(TrackPostings("t", keys, frames, 5000), 3)
    hashes, counts = np.unique(_hashes(capped), return_counts=True)
    assert counts.max() <= 3
    assert capped.keys.size <= 3 * np.unique(keys >> np.uint32(8)).size
    for h in hashes.tolist():  # the kept ones are the earliest of their hash
        kept = np.sort(capped.frames[_hashes(capped) == h])
        every = np.sort(frames[(keys >> np.uint32(8)) == h])
        assert kept.tolist() == every[: kept.size].tolist()
    plain = postings("u", 1)  # nothing over the cap: unchanged
    assert cap_postings(plain, 1000) is plain


def test_index_applies_the_cap_so_its_size_is_bounded(tmp_path: Path) -> None:
    index = MmapIndex(tmp_path / "ix", per_track_cap=2)
    keys = np.full(500, 123 << 8, dtype=np.uint32)  # one hash, 500 times (a held note)
    index.add([TrackPostings("held", keys, np.arange(500, dtype=np.uint32), 600), postings("other", 2)])
    stats = index.stats()
    assert stats.postings <= 2 + 2 * np.unique(postings("other", 2).keys >> np.uint32(8)).size
    hits = index.lookup(np.array([123 << 8], dtype=np.uint32))
    assert sorted(hits.frame[[hits.tracks[t] == "held" for t in hits.track]].tolist()) == [0, 1]


def test_stop_list_equals_brute_force_without_hashes_above_the_cap(tmp_path: Path, query: np.ndarray) -> None:
    index = MmapIndex(tmp_path / "ix", stop_min=6, stop_factor=1e-9, per_track_cap=1000, shard_tracks=3)
    live = {f"t{i}": postings(f"t{i}", i) for i in range(9)}  # ~6.75 postings per hash value
    index.add(list(live.values()))
    assert index.stop_cap() == 6
    df: dict[int, int] = {}
    for item in live.values():
        for h in _hashes(item).tolist():
            df[h] = df.get(h, 0) + 1
    common = {h for h, n in df.items() if n > 6}
    assert common, "the fixture must have hashes above the cap"
    kept_query = query[[int(k >> 8) not in common for k in query.tolist()]]
    expected = {hit for hit in brute(live, query) if int(query[hit[0]] >> 8) not in common}
    assert found(index, query) == expected
    assert index.lookup(query).stopped == len({int(k >> 8) for k in query.tolist()} & common)
    assert len(kept_query) < len(query)


def test_a_stop_listed_key_never_crowds_out_the_true_match(tmp_path: Path) -> None:
    """A hash stuffed into every track (a drone, a click track) is skipped; the copied track still wins."""
    index = MmapIndex(tmp_path / "ix", stop_min=12, per_track_cap=4)  # 4 tracks x 4 flood postings > 12
    rng = np.random.default_rng(3)
    everywhere = np.uint32(777_777 << 8)
    items = []
    for seed in range(4):
        base = track_postings(f"song{seed}", song(seed, duration_s=12.0))
        flood = np.full(40, everywhere, dtype=np.uint32)
        frames = rng.integers(0, base.length_frames, 40).astype(np.uint32)
        items.append(
            TrackPostings(
                base.track_id,
                np.concatenate([base.keys, flood]),
                np.concatenate([base.frames, frames]),
                base.length_frames,
            )
        )
    index.add(items)
    flood_hits = index.lookup(np.array([everywhere], dtype=np.uint32))
    assert flood_hits.stopped == 1 and flood_hits.query_row.size == 0
    excerpt = song(2, duration_s=12.0)[2 * 8000 : 10 * 8000]
    matches = identify_samples(excerpt, index)
    assert matches and matches[0].track_id == "song2"


def test_shards_hold_at_most_shard_tracks_through_merges_and_threads_agree(tmp_path: Path, query: np.ndarray) -> None:
    threaded = MmapIndex(tmp_path / "ix", shard_tracks=3, max_segments=3, workers=4)
    live = {}
    for i in range(11):
        item = postings(f"t{i}", i)
        threaded.add([item])
        live[item.track_id] = item
    for seg in sorted((tmp_path / "ix").glob("seg-*")):
        assert len((seg / "tracks.json").read_text().split('"id"')) - 1 <= 3
    assert threaded.stats().segments > 1
    single = MmapIndex(tmp_path / "ix", workers=1)
    assert found(threaded, query) == found(single, query) == brute(live, query)
    threaded.close()
    assert found(threaded, query) == brute(live, query)  # the pool starts again when needed


@pytest.mark.parametrize(
    "option", [{"shard_tracks": 0}, {"shard_tracks": 1 << 20}, {"per_track_cap": 0}, {"workers": 0}]
)
def test_bad_options_are_refused(tmp_path: Path, option: dict[str, int]) -> None:
    with pytest.raises(InvalidInput):
        MmapIndex(tmp_path / "ix", **option)  # type: ignore[arg-type]


def _lookup_count(index: MmapIndex, query: np.ndarray, out: Any) -> None:
    out.put(int(index.lookup(query).query_row.size))


def test_a_forked_worker_gets_its_own_lookup_threads(tmp_path: Path, query: np.ndarray) -> None:
    """A server that forks workers after a lookup must not wait forever on the parent's (absent) threads."""
    index = MmapIndex(tmp_path / "ix", shard_tracks=2, workers=2)
    index.add([postings(f"t{i}", i) for i in range(5)])
    expected = int(index.lookup(query).query_row.size)  # starts the pool in the parent
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_lookup_count, args=(index, query, out))
    child.start()
    child.join(timeout=60)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive and child.exitcode == 0
    assert out.get(timeout=5) == expected
    index.close()
