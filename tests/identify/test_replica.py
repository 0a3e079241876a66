"""ReplicatedIndex over the real feed adapter (database rows, sealed postings in a folder): every copy
answers like one index holding every change, in feed order; removals purge the published postings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from consentune.artifacts.index_feed import FolderPostings, PublishedIndexFeed
from consentune.errors import StorageError
from consentune.identify import FeedChange, MmapIndex, ReplicatedIndex, TrackPostings
from consentune.identify.replica import decode_postings, encode_postings
from consentune.storage import make_engine, migrate
from consentune.storage.index_feed_sql import SqlIndexFeedRows
from tests.identify.test_index import brute, found, postings

KEY = b"k" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(database_url: str) -> Engine:
    made = make_engine(database_url)
    migrate(made)
    return made


def copy(engine: Engine, tmp_path: Path, name: str, clock: Clock, *, key: bytes = KEY) -> ReplicatedIndex:
    feed = PublishedIndexFeed(SqlIndexFeedRows(engine), FolderPostings(tmp_path / "shared"), key=key)
    return ReplicatedIndex(MmapIndex(tmp_path / name), feed, refresh_s=1.0, clock=clock)


@pytest.fixture
def query() -> np.ndarray:
    return np.random.default_rng(99).integers(0, 400, 200).astype(np.uint32) << np.uint32(8)


def test_every_copy_answers_like_one_index_through_adds_replacements_and_removals(
    engine: Engine, tmp_path: Path, query: np.ndarray
) -> None:
    clock = Clock()
    a, b = copy(engine, tmp_path, "host-a", clock), copy(engine, tmp_path, "host-b", clock)
    live: dict[str, TrackPostings] = {}
    for step in range(12):
        writer = (a, b)[step % 2]
        item = postings(f"t{step % 7}", step)  # steps 7..11 replace t0..t4
        writer.add([item])
        live[item.track_id] = item
        if step % 4 == 3:
            gone = f"t{(step + 2) % 7}"
            writer.remove([gone])
            live.pop(gone, None)
        clock.now += 1.0
        for reader in (a, b):
            assert found(reader, query) == brute(live, query)  # type: ignore[arg-type]
            assert sorted(reader.track_ids()) == sorted(live)
    late = copy(engine, tmp_path, "host-c", clock)  # a machine that joins later replays the whole feed
    assert found(late.local, query) == set() and found(late, query) == brute(live, query)  # type: ignore[arg-type]


def test_a_copy_reads_the_feed_at_most_once_per_refresh_interval_and_writers_see_their_change_at_once(
    engine: Engine, tmp_path: Path
) -> None:
    clock = Clock()
    a, b = copy(engine, tmp_path, "host-a", clock), copy(engine, tmp_path, "host-b", clock)
    assert not b.contains("t1")  # b has read the (empty) feed now
    a.add([postings("t1", 1)])
    assert a.contains("t1")  # the writer applied its own change before returning
    clock.now += 0.5
    assert not b.contains("t1")  # within the interval b answers from its copy
    clock.now += 0.6
    assert b.contains("t1")
    assert b.remove(["t1", "never-indexed"]) == 1 and not b.contains("t1")
    assert a.local.contains("t1")  # a's copy holds it until a next reads the feed ...
    assert not a.contains("t1")  # ... which its next answer does: its last read was 1.1 s ago


def test_a_removal_purges_the_published_postings_and_a_replay_skips_them(engine: Engine, tmp_path: Path) -> None:
    clock = Clock()
    a = copy(engine, tmp_path, "host-a", clock)
    a.add([postings("t1", 1), postings("t2", 2)])
    assert {p.name for p in (tmp_path / "shared").iterdir()} == {"t1.bin", "t2.bin"}
    a.remove(["t1"])
    assert {p.name for p in (tmp_path / "shared").iterdir()} == {"t2.bin"}
    late = copy(engine, tmp_path, "host-b", clock)
    assert late.track_ids() == ["t2"] and late.local.feed_mark() == a.local.feed_mark() == 3


def test_workers_sharing_one_folder_apply_each_change_once(engine: Engine, tmp_path: Path) -> None:
    clock = Clock()
    writer = copy(engine, tmp_path, "elsewhere", clock)
    writer.add([postings(f"t{i}", i) for i in range(5)])
    first, second = copy(engine, tmp_path, "here", clock), copy(engine, tmp_path, "here", clock)
    assert first.refresh() == 5
    assert second.refresh() == 0  # the folder is already at the feed's end
    stats = second.stats()
    assert stats.tracks == 5 and stats.tombstones == 0


def test_postings_not_sealed_by_this_deployment_are_left_out(engine: Engine, tmp_path: Path) -> None:
    clock = Clock()
    honest = copy(engine, tmp_path, "host-a", clock)
    honest.add([postings("t1", 1)])
    planted = copy(engine, tmp_path, "intruder", clock, key=b"x" * 32)  # a writer without the deployment's secret
    planted.add([postings("t2", 2)])
    reader = copy(engine, tmp_path, "host-b", clock)
    assert reader.track_ids() == ["t1"]


def test_a_damaged_local_copy_is_rebuilt_from_the_feed(engine: Engine, tmp_path: Path, query: np.ndarray) -> None:
    clock = Clock()
    a = copy(engine, tmp_path, "host-a", clock)
    items = {f"t{i}": postings(f"t{i}", i) for i in range(4)}
    a.add(list(items.values()))
    (tmp_path / "host-a" / "index.json").write_text("{not json")
    reopened = copy(engine, tmp_path, "host-a", clock)  # recovery resets the copy; the feed fills it again
    assert reopened.local.recovery.manifest_reset
    assert found(reopened, query) == brute(items, query)  # type: ignore[arg-type]


def test_postings_round_trip_and_truncated_records_are_refused() -> None:
    item = postings("t1", 5)
    back = decode_postings("t1", encode_postings(item))
    assert np.array_equal(back.keys, item.keys) and np.array_equal(back.frames, item.frames)
    assert back.length_frames == item.length_frames
    for broken in (b"", encode_postings(item)[:-3]):
        with pytest.raises(StorageError):
            decode_postings("t1", broken)


def test_a_copy_that_loses_a_race_on_its_folder_reads_on_from_the_winners_mark(engine: Engine, tmp_path: Path) -> None:
    clock = Clock()
    writer = copy(engine, tmp_path, "elsewhere", clock)
    items = [postings(f"t{i}", i) for i in range(5)]
    writer.add(items)
    feed = PublishedIndexFeed(SqlIndexFeedRows(engine), FolderPostings(tmp_path / "shared"), key=KEY)
    other_process = MmapIndex(tmp_path / "here")

    class RacedFeed:
        """The feed, except that another process on the same folder applies positions 1-2 during the first read."""

        raced = False

        def publish(self, changes: list[tuple[str, bytes | None]]) -> None:
            feed.publish(changes)

        def read(self, after: int, limit: int) -> list[FeedChange]:
            if not self.raced:
                self.raced = True
                assert other_process.catch_up(start=0, mark=2, removed=[], added=items[:2])
            return feed.read(after, limit)

    late = ReplicatedIndex(MmapIndex(tmp_path / "here"), RacedFeed(), clock=clock)
    assert late.refresh() == 3  # its own read lost (the mark moved to 2): it read on from 2
    assert late.local.track_ids() == [f"t{i}" for i in range(5)] and late.local.feed_mark() == 5
    assert late.stats().tombstones == 0  # nothing applied twice
