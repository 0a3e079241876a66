"""Publishing from the entries just integrated: served only when held, exactly as stored."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from consentune.ledger.tiles import CachedSource, RecentEntries


class _Row:
    def __init__(self, seq: int) -> None:
        self.data = f"entry {seq}".encode()


class _Store:
    """A stand-in tile source holding entries 0..n-1 that counts the reads that reach it."""

    def __init__(self) -> None:
        self.reads = 0

    def node_range(self, level: int, start: int, stop: int) -> list[bytes]:
        self.reads += 1
        return [f"hash {level} {i}".encode() for i in range(start, stop)]

    def iter_ledger(self, *, start: int = 0, stop: int | None = None, batch: int = 10_000) -> Iterator[Sequence[_Row]]:
        self.reads += 1
        yield [_Row(i) for i in range(start, stop or start)]


def _rows(first: int, count: int) -> list[tuple[int, bytes, bytes, str | None, str | None]]:
    return [(i, f"entry {i}".encode(), f"hash 0 {i}".encode(), None, None) for i in range(first, first + count)]


def _entries(source: CachedSource, start: int, stop: int) -> list[bytes]:
    return [row.data for page in source.iter_ledger(start=start, stop=stop) for row in page]


def test_held_runs_are_served_without_reading_and_match_the_store() -> None:
    store, recent = _Store(), RecentEntries(limit=1_000)
    source = CachedSource(store, recent)
    recent.add(0, _rows(0, 300))
    recent.add(300, _rows(300, 100))  # continues the run
    assert _entries(source, 256, 400) == [f"entry {i}".encode() for i in range(256, 400)]
    assert source.node_range(0, 0, 256) == store.node_range(0, 0, 256)
    assert store.reads == 1  # only the comparison read above reached the store
    assert source.node_range(8, 0, 1) == [b"hash 8 0"]  # higher levels always come from the store
    recent.keep_from(256)
    assert (recent.start, recent.stop) == (256, 400)
    before = store.reads
    assert _entries(source, 0, 256) == [f"entry {i}".encode() for i in range(256)]  # forgotten: read back
    assert store.reads == before + 1


def test_a_run_that_does_not_continue_replaces_the_held_one_and_the_limit_holds() -> None:
    store, recent = _Store(), RecentEntries(limit=500)
    source = CachedSource(store, recent)
    recent.add(0, _rows(0, 200))
    recent.add(350, _rows(350, 50))  # another process integrated 200..349 meanwhile
    assert (recent.start, recent.stop) == (350, 400)
    assert not recent.covers(0, 200)
    assert _entries(source, 100, 200) == [f"entry {i}".encode() for i in range(100, 200)]
    recent.add(400, _rows(400, 460))  # would exceed the limit: start over with this run only
    assert (recent.start, recent.stop) == (400, 860)
    recent.add(860, _rows(860, 600))  # larger than the limit on its own: hold nothing
    assert recent.start == recent.stop == 1460
