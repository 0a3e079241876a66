"""MmapIndex after a killed writer or a damaged file: opening repairs the folder and lookups stay exact.

Torn states are made by hand (what a writer killed at each step leaves, and
damage no writer leaves), and by SIGKILL of a process adding tracks at
random moments; after each, the index opens, lookups equal a brute-force
scan over the tracks it reports, and it accepts writes again.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import pytest

from consentune.identify import MmapIndex, TrackPostings
from tests.identify.test_index import brute, found, postings

NO_STOP_LIST = 1 << 40


@pytest.fixture
def query() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 400, 300).astype(np.uint32) << np.uint32(8)


def _items(n: int) -> dict[str, TrackPostings]:
    return {f"t{i}": postings(f"t{i}", i, n=100 + 37 * i) for i in range(n)}


def _filled(folder: Path, items: dict[str, TrackPostings]) -> MmapIndex:
    index = MmapIndex(folder, max_segments=4)
    for item in items.values():  # one segment each (then merged): several segments to damage
        index.add([item])
    return index


def _listed(folder: Path) -> list[str]:
    return list(json.loads((folder / "index.json").read_text())["segments"])


def _exact(index: MmapIndex, items: dict[str, TrackPostings], query: np.ndarray) -> None:
    live = {t: items[t] for t in index.track_ids()}
    assert found(index, query) == brute(live, query)


def _writes_again(index: MmapIndex, query: np.ndarray, items: dict[str, TrackPostings]) -> None:
    extra = postings("after", 4242)
    index.add([extra])
    items["after"] = extra
    assert index.contains("after")
    _exact(index, items, query)


def _leave_tmp_segment(folder: Path) -> None:
    tmp = folder / "seg-000777.tmp"
    tmp.mkdir()
    (tmp / "keys.npy").write_bytes(b"\x93NUMPY half")


def _leave_unlisted_segment(folder: Path) -> None:
    """Killed after the segment's rename, before the manifest: a finished folder under the next number."""
    number = json.loads((folder / "index.json").read_text())["next"]
    source = folder / _listed(folder)[0]
    target = folder / f"seg-{number:06d}"
    target.mkdir()
    for f in source.iterdir():
        (target / f.name).write_bytes(f.read_bytes())


def _leave_tmp_manifest(folder: Path) -> None:
    (folder / "index.json.tmp").write_text('{"segments": ["seg-0')


LEFTOVERS: dict[str, Callable[[Path], None]] = {
    "tmp segment": _leave_tmp_segment,
    "unlisted finished segment": _leave_unlisted_segment,
    "tmp manifest": _leave_tmp_manifest,
}


@pytest.mark.parametrize("leave", LEFTOVERS.values(), ids=LEFTOVERS.keys())
def test_leftovers_of_a_killed_writer_are_removed_and_nothing_is_lost(
    tmp_path: Path, query: np.ndarray, leave: Callable[[Path], None]
) -> None:
    folder = tmp_path / "ix"
    items = _items(6)
    _filled(folder, items)
    leave(folder)
    index = MmapIndex(folder, max_segments=4)
    assert index.recovery.leftovers and not index.recovery.lost_data
    assert index.recovery.repaired
    assert sorted(index.track_ids()) == sorted(items)
    assert {p.name for p in folder.iterdir()} == {*_listed(folder), "index.json", "index.lock"}
    _exact(index, items, query)
    _writes_again(index, query, items)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage_header(path: Path) -> None:
    path.write_bytes(b"\x00" * 16 + path.read_bytes()[16:])


DAMAGE: dict[str, tuple[str, Callable[[Path], None]]] = {
    "vals truncated": ("vals.npy", _truncate),
    "keys truncated": ("keys.npy", _truncate),
    "keys header garbage": ("keys.npy", _garbage_header),
    "track list garbage": ("tracks.json", lambda p: p.write_text('[{"id": "t0", "fra')),
    "track list wrong shape": ("tracks.json", lambda p: p.write_text('{"id": 1}')),
    "vals missing": ("vals.npy", lambda p: p.unlink()),
}


@pytest.mark.parametrize(("file", "damage"), DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_segment_is_dropped_and_reported_the_rest_still_matches(
    tmp_path: Path, query: np.ndarray, file: str, damage: Callable[[Path], None]
) -> None:
    folder = tmp_path / "ix"
    items = _items(7)
    _filled(folder, items)
    victim = _listed(folder)[-1]
    in_victim = [m["id"] for m in json.loads((folder / victim / "tracks.json").read_text())]
    damage(folder / victim / file)
    index = MmapIndex(folder, max_segments=4)
    assert [d.split(":")[0] for d in index.recovery.dropped_segments] == [victim]
    assert index.recovery.lost_data
    if file != "tracks.json":  # the track list survived: the caller learns exactly what to re-index
        assert sorted(index.recovery.lost_tracks) == sorted(in_victim)
    assert sorted(index.track_ids()) == sorted(set(items) - set(in_victim))
    _exact(index, items, query)
    index.add([items[t] for t in in_victim])  # re-indexed: every track matches again
    assert sorted(index.track_ids()) == sorted(items)
    _exact(index, items, query)
    _writes_again(index, query, items)


@pytest.mark.parametrize("content", ["{not json", '["a list"]', '{"segments": 3, "tombstones": {}, "next": 1}'])
def test_an_unreadable_manifest_is_set_aside_and_the_index_starts_empty(
    tmp_path: Path, query: np.ndarray, content: str
) -> None:
    folder = tmp_path / "ix"
    items = _items(5)
    _filled(folder, items)
    (folder / "index.json").write_text(content)
    index = MmapIndex(folder, max_segments=4)
    assert index.recovery.manifest_reset and index.recovery.lost_data
    assert index.track_ids() == []
    assert [p.name for p in folder.glob("index.json.damaged-*")]  # kept for whoever investigates
    assert not list(folder.glob("seg-*"))  # old segments can no longer be trusted to be live
    index.add(list(items.values()))
    _exact(index, items, query)
    _writes_again(index, query, items)


def _adder(folder: str, conn: Connection, start: int) -> None:
    """Add tracks one or a few at a time (merging often), reporting each acknowledged add, until killed."""
    index = MmapIndex(Path(folder), max_segments=3)
    n = start
    rng = random.Random(start)
    while True:
        batch = [postings(f"t{i}", i, n=200) for i in range(n, n + rng.randint(1, 3))]
        index.add(batch)
        n += len(batch)
        conn.send(n)
        if rng.random() < 0.2:
            index.remove([f"t{rng.randrange(n)}"])
            conn.send(-1)


def test_sigkill_while_adding_never_leaves_an_index_that_refuses_to_open_or_write(
    tmp_path: Path, query: np.ndarray
) -> None:
    folder = tmp_path / "ix"
    rng = random.Random(2121)
    ctx = mp.get_context("fork")
    start = 0
    repaired = 0
    for _kill in range(15):
        mine, theirs = ctx.Pipe(duplex=False)
        worker = ctx.Process(target=_adder, args=(str(folder), theirs, start), daemon=True)
        worker.start()
        theirs.close()
        time.sleep(rng.uniform(0.02, 0.5))
        os.kill(worker.pid or 0, signal.SIGKILL)
        worker.join(timeout=30)
        acked = start
        while mine.poll(0):
            try:
                value = mine.recv()
            except EOFError:
                break
            acked = max(acked, value)
        mine.close()
        # how many tracks land depends on the machine's speed; with the stop-list off the
        # lookup stays exact however many did (the stop-list has its own tests)
        index = MmapIndex(folder, max_segments=3, stop_min=NO_STOP_LIST)
        repaired += index.recovery.repaired
        assert not index.recovery.lost_data  # a kill alone never damages a listed segment
        written = {f"t{i}": postings(f"t{i}", i, n=200) for i in range(acked + 3)}
        ids = index.track_ids()
        assert set(ids) <= set(written)
        _exact(index, written, query)
        start = acked + 3  # fresh ids: the next worker never collides with a half-acknowledged batch
    assert repaired > 0  # some kills did land inside a write
