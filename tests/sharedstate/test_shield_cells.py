"""The shield's shared cells: one behaviour suite on every backend, and detectors that share them agree.

Backends: in memory, one SQLite file, real Redis (a private key prefix).
The detector tests run one event stream through a single in-memory
detector and through W "workers" (detectors over one cell store) that each
get a share of the events; the verdicts must be the same, event by event.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from consentune.errors import StreamSuperseded
from consentune.sharedstate.cells import RedisCells
from consentune.sharedstate.sqlitecells import SqliteCells
from consentune.shield.active import SharedActivePlays
from consentune.shield.cells import (
    Cell,
    CellWrite,
    MemoryCells,
    PrefetchCells,
    ReadsAndTakes,
    SharedCells,
    Take,
    update_cell,
)
from consentune.shield.detect import AccessEvent, ScraperDetector
from consentune.shield.ratelimit import CellRateLimiter, MemoryRateLimiter, Rate, RateLimiter
from consentune.shield.shareddetect import SharedScraperDetector
from consentune.shield.subjectcodec import decode_subject, encode_subject
from tests.sharedstate.conftest import SharedRedis
from tests.shield.test_detect import (
    CRAWLERS,
    DAY,
    T0,
    Who,
    concurrent_plays,
    ev,
    listener,
    merged,
    same,
    sequential,
    shuffled,
)

BACKENDS = ["memory", "sqlite", "redis"]


@pytest.fixture(params=BACKENDS)
def cells(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SharedCells]:
    yield from _cells(request, tmp_path, request.param)


def _cells(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> Iterator[SharedCells]:
    if backend == "memory":
        yield MemoryCells()
    elif backend == "sqlite":
        yield SqliteCells(tmp_path / "shield-state.sqlite3")
    else:
        from consentune.sharedstate import connect

        shared: SharedRedis = request.getfixturevalue("shared_redis")
        client = connect(shared.url)
        yield RedisCells(client, prefix=shared.prefix)
        client.close()


# -- the port's contract ---------------------------------------------------------------


def test_compare_and_set_applies_all_writes_or_none(cells: SharedCells) -> None:
    assert [c.version for c in cells.load(["a", "b"])] == [0, 0]
    assert cells.commit([CellWrite("a", 0, b"1"), CellWrite("b", 0, b"x")], ttl_s=60)
    a, b = cells.load(["a", "b"])
    assert (a.data, b.data) == (b"1", b"x") and a.version == b.version > 0
    assert not cells.commit([CellWrite("a", a.version, b"2"), CellWrite("b", b.version - 1, b"y")], ttl_s=60)
    assert [c.data for c in cells.load(["a", "b"])] == [b"1", b"x"]  # the stale version on b stopped both
    assert cells.commit([CellWrite("a", a.version, b"2"), CellWrite("b", None, None)], ttl_s=60)
    a2, b2 = cells.load(["a", "b"])
    assert (a2.data, b2.data) == (b"2", None) and a2.version > a.version


def test_counters_move_with_a_commit_and_not_with_a_lost_race(cells: SharedCells) -> None:
    assert cells.counters() == {}
    assert cells.commit([CellWrite("a", 0, b"1")], ttl_s=60, counts={"x": 2, "y": 0})
    assert not cells.commit([CellWrite("a", 0, b"2")], ttl_s=60, counts={"x": 5})
    assert cells.commit([CellWrite("a", None, b"3")], ttl_s=60, counts={"x": 1, "z": 4})
    assert cells.counters() == {"x": 3, "z": 4}


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_reads_and_takes_admit_what_the_rate_limiter_admits(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    """Tokens taken with the reads, up to the first refusal, are the rate limiter's own buckets; a live block
    record among the first cells takes none."""
    store = next(_cells(request, tmp_path, backend))
    assert isinstance(store, ReadsAndTakes)
    limiter = _limiter_over(store, request)
    rate, other = Rate(per_second=2.0, burst=5.0), Rate(per_second=0.5, burst=3.0)
    rng = random.Random(11)
    reference = MemoryRateLimiter()
    store.commit([CellWrite("block:s:late", None, f"7 {T0 + 5.0!r}".encode())], ttl_s=60)
    for n, t in enumerate(sorted(T0 + rng.uniform(0, 10) for _ in range(80))):
        takes = [Take("k1", rate.per_second, rate.burst), Take("k2", other.per_second, other.burst)]
        blocks = ["block:s:late"] if n % 3 == 0 else []
        cells, taken = store.load_and_take([*blocks, "det:x"], blocks=len(blocks), takes=takes, now=t)
        assert len(cells) == len(blocks) + 1
        if blocks and t < T0 + 5.0:
            assert taken is None
            continue
        expected = []
        for key, r in (("k1", rate), ("k2", other)):
            expected.append(reference.hit(key, r, now=t))
            if not expected[-1][0]:
                break
        assert taken is not None
        assert [(ok, round(retry, 9)) for ok, retry in taken] == [(ok, round(retry, 9)) for ok, retry in expected]
    assert limiter.hit("k1", rate, now=T0 + 10.0) == reference.hit("k1", rate, now=T0 + 10.0)  # the same bucket


def _limiter_over(store: SharedCells, request: pytest.FixtureRequest) -> RateLimiter:
    if isinstance(store, SqliteCells):
        return CellRateLimiter(store)
    from consentune.sharedstate.ratelimit import RedisRateLimiter

    shared: SharedRedis = request.getfixturevalue("shared_redis")
    return RedisRateLimiter(shared.url, prefix=f"{shared.prefix}rl:")


def test_two_stores_over_one_backend_race_and_exactly_one_wins(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    for backend in ("sqlite", "redis"):
        first, second = (next(_cells(request, tmp_path, backend)) for _ in range(2))
        (seen,) = first.load(["k"])
        assert first.commit([CellWrite("k", seen.version, b"first")], ttl_s=60)
        assert not second.commit([CellWrite("k", seen.version, b"second")], ttl_s=60)
        assert second.load(["k"])[0].data == b"first"


def test_update_cell_counts_every_increment_from_racing_threads(cells: SharedCells) -> None:
    def bump(data: bytes | None) -> bytes:
        return str(int(data or b"0") + 1).encode()

    def work() -> None:
        for _ in range(50):
            update_cell(cells, "counter", bump, ttl_s=60, attempts=1000)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cells.load(["counter"])[0].data == b"200"


def test_cells_expire_after_their_ttl() -> None:
    now = [0.0]
    mem = MemoryCells(clock=lambda: now[0])
    assert mem.commit([CellWrite("k", None, b"v")], ttl_s=10)
    now[0] = 9.9
    assert mem.load(["k"])[0].data == b"v"
    now[0] = 10.1
    assert mem.load(["k"])[0].data is None


def test_file_cells_expire_after_their_ttl(tmp_path: Path) -> None:
    now = [0.0]
    file_cells = SqliteCells(tmp_path / "s.sqlite3", clock=lambda: now[0])
    assert file_cells.commit([CellWrite("k", None, b"v")], ttl_s=10)
    now[0] = 10.1
    assert file_cells.load(["k"])[0].data is None


# -- the detector's subjects as cells ---------------------------------------------------


def _traffic(seed: int) -> list[AccessEvent]:
    """Listeners at one NAT plus a scraper beside them, sharing a network prefix."""
    rng = random.Random(seed)
    people = [listener(seed * 10 + i, Who(f"l{seed}-{i}", f"198.51.100.{i % 2}", account=f"a{i}"), hours_per_day=1,
                       days=1) for i in range(2)]  # fmt: skip
    agent = rng.choice(["python-requests/2.32", "Mozilla/5.0 (X11) Firefox/128.0"])
    scraper = concurrent_plays(same(Who(f"s{seed}", "198.51.100.7", agent=agent)), shuffled(seed) if seed % 2 else
                               sequential(), start=T0 + rng.uniform(0, 3600), concurrency=rng.choice([2, 4, 8]),
                               gap_s=rng.uniform(0, 30), tracks=40)  # fmt: skip
    return list(merged([*people, scraper]))


def test_every_subject_survives_encoding_exactly() -> None:
    det = ScraperDetector(crawler_tokens=CRAWLERS)
    for event in _traffic(3):
        det.observe(event)
    assert det._subjects
    for subject in det._subjects.values():
        data = encode_subject(subject)
        back = decode_subject(data)
        assert encode_subject(back) == data
        if subject.current is not None and subject.current in subject.sessions.values():
            assert back.current is not None and any(p is back.current for p in back.sessions.values())


@pytest.mark.parametrize(("seed", "workers"), [(1, 2), (2, 4), (3, 3), (4, 2)])
def test_a_scraper_split_across_workers_is_judged_as_by_one_worker(cells: SharedCells, seed: int, workers: int) -> None:
    events = _traffic(seed)
    one = ScraperDetector(crawler_tokens=CRAWLERS)
    shared = [SharedScraperDetector(cells, crawler_tokens=CRAWLERS) for _ in range(workers)]
    rng = random.Random(seed)
    alone = [one.observe(e) for e in events]
    together = [shared[rng.randrange(workers)].observe(e) for e in events]
    assert [v.action for v in together] == [v.action for v in alone]
    assert together == alone  # subjects, scores and explanations too
    assert any(v.action == "block" for v in alone)


@pytest.mark.parametrize("seed", [1, 2])
def test_without_shared_state_the_split_scraper_gets_further(seed: int) -> None:
    """The peer of the test above: private detectors per worker see 1/W of the scraper and catch it later."""
    events = [e for e in _traffic(seed) if e.session_id.startswith("s")]
    one = ScraperDetector(crawler_tokens=CRAWLERS)
    private = [ScraperDetector(crawler_tokens=CRAWLERS) for _ in range(4)]
    first_alone = next(i for i, e in enumerate(events) if one.observe(e).action == "block")
    rng = random.Random(seed)
    first_split = next((i for i, e in enumerate(events) if private[rng.randrange(4)].observe(e).action == "block"),
                       len(events))  # fmt: skip
    assert first_split > first_alone


def test_racing_workers_lose_no_update(cells: SharedCells) -> None:
    """Four threads (workers) start plays for one account at one instant: every play is counted."""
    detectors = [SharedScraperDetector(cells, attempts=1000) for _ in range(4)]

    def work(n: int) -> None:
        for k in range(25):
            who = Who(f"w{n}-{k}", "203.0.113.50", account="shared-account")
            detectors[n].observe(ev(who, T0, "play", track_id=f"trk_{n}_{k}", duration_s=200.0))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (cell,) = cells.load(["det:account:shared-account"])
    assert cell.data is not None
    account = decode_subject(cell.data)
    assert account.plays.get(T0, 600.0) == pytest.approx(100.0)
    assert len(account.recent) == 100
    assert detectors[0].stats()["last_write_wins"] == 0
    assert detectors[0].stats()["events"] == detectors[1].stats()["events"] == 100  # every worker's, counted once


def test_a_lift_on_one_worker_ends_the_lockdown_on_another(cells: SharedCells) -> None:
    a, b = (SharedScraperDetector(cells, crawler_tokens=CRAWLERS) for _ in range(2))
    address = "192.0.2.92"
    bot = Who("bot", address, agent="Mozilla/5.0 (compatible; GPTBot/1.2)")
    blocked = a.observe(ev(bot, T0, "play", track_id="trk_1", catalog_index=1, duration_s=200.0))
    assert blocked.action == "block"
    refused = b.observe(ev(Who("n1", address, account="n1"), T0 + 100, "play", track_id="trk_2", duration_s=200.0))
    assert refused.action == "block" and refused.signals[0].name == "ban_evasion"  # the lockdown is shared
    b.forgive(blocked.subject)
    after = a.observe(ev(Who("n2", address, account="n2"), T0 + 200, "play", track_id="trk_3", duration_s=200.0))
    assert after.action == "allow"
    page = a.observe(ev(bot, T0 + 300, "page"))
    assert page.action == "allow"  # the bot's own record is gone everywhere too


def test_blocked_subjects_are_remembered_across_workers_for_a_day(cells: SharedCells) -> None:
    a, b = (SharedScraperDetector(cells, crawler_tokens=CRAWLERS) for _ in range(2))
    bot = Who("bot", "192.0.2.93", agent="GPTBot/1.2")
    assert a.observe(ev(bot, T0, "play", track_id="trk_1", duration_s=200.0)).action == "block"
    assert b.observe(ev(bot, T0 + DAY - 60, "page")).action == "block"
    assert b.observe(ev(bot, T0 + DAY + 60, "page")).action == "allow"


# -- active streams and rate limits -------------------------------------------------------


def test_one_active_stream_per_listener_across_workers(cells: SharedCells) -> None:
    a, b = SharedActivePlays(cells), SharedActivePlays(cells)
    a.start("account:x", "play-1")
    b.check("account:x", "play-1")
    b.start("account:x", "play-2")  # the same account starts a play on another worker
    with pytest.raises(StreamSuperseded):
        a.check("account:x", "play-1")
    a.check("account:x", "play-2")
    a.check("account:unknown", "play-9")  # a listener nobody has seen passes


def test_shared_buckets_admit_what_one_bucket_admits(cells: SharedCells) -> None:
    rate = Rate(per_second=2.0, burst=5.0)
    rng = random.Random(7)
    times = sorted(T0 + rng.uniform(0, 20) for _ in range(120))
    one = MemoryRateLimiter()
    workers = [CellRateLimiter(cells) for _ in range(3)]
    alone = [one.hit("k", rate, now=t) for t in times]
    split = [workers[rng.randrange(3)].hit("k", rate, now=t) for t in times]
    assert [(ok, round(retry, 9)) for ok, retry in split] == [(ok, round(retry, 9)) for ok, retry in alone]
    assert 0 < sum(ok for ok, _ in alone) < len(times)


def test_events_with_an_account_and_without_a_session_share_state(cells: SharedCells) -> None:
    a, b = (SharedScraperDetector(cells, crawler_tokens=CRAWLERS) for _ in range(2))
    who = Who("-", "192.0.2.94", account="acct", agent="GPTBot/1.2")
    first = a.observe(replace(ev(who, T0, "play", track_id="trk_1", duration_s=200.0)))
    assert first.action == "block" and first.subject == "account:acct"
    assert b.observe(ev(who, T0 + 10, "page")).action == "block"


class CountingCells(MemoryCells):
    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    def load(self, keys: Sequence[str]) -> list[Cell]:
        self.loads += 1
        return super().load(keys)


def test_cells_read_ahead_are_served_once_and_a_stale_one_fails_its_commit() -> None:
    store = CountingCells()
    store.commit([CellWrite("a", None, b"1")], ttl_s=60)
    ahead = PrefetchCells(store)
    with ahead.prefetched(["a", "b"]):
        assert store.loads == 1
        store.commit([CellWrite("a", None, b"2")], ttl_s=60)  # another worker writes after the read-ahead
        (a,) = ahead.load(["a"])
        assert a.data == b"1" and store.loads == 1  # served from the read-ahead, one moment old
        assert not ahead.commit([CellWrite("a", a.version, b"3")], ttl_s=60)  # compare-and-set catches it
        assert ahead.load(["a"])[0].data == b"2" and store.loads == 2  # each read-ahead cell is served once
        assert ahead.load(["b"])[0].data is None and store.loads == 2
    assert ahead.load(["b"])[0].data is None and store.loads == 3  # nothing is read ahead outside the block


def test_a_guarded_request_reads_its_shared_state_in_one_round_trip(tmp_path: Path) -> None:
    from consentune.config import Settings
    from consentune.service import open_service

    svc = open_service(Settings(home=tmp_path / "h", database_url=f"sqlite:///{tmp_path / 'c.db'}",
                                identify_at_ingest=False, shield_state="file"))  # fmt: skip
    try:
        guard = svc.listen.guard
        store = CountingCells()
        ahead = PrefetchCells(store)
        guard._board._cells = ahead  # type: ignore[union-attr]
        guard._detector._cells = ahead  # type: ignore[attr-defined]
        who = Who("one-trip", "203.0.113.77", account="acct-one-trip")
        guard.check(ev(who, T0, "play", track_id="trk_1", catalog_index=1, duration_s=200.0))
        assert store.loads == 1
    finally:
        svc.close()


class CountingFile(SqliteCells):
    """The state file, counting round trips (each call is one transaction or read)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.trips: list[str] = []

    def load(self, keys: Sequence[str]) -> list[Cell]:
        self.trips.append("load")
        return super().load(keys)

    def load_and_take(
        self, keys: Sequence[str], *, blocks: int, takes: Sequence[Take], now: float
    ) -> tuple[list[Cell], list[tuple[bool, float]] | None]:
        self.trips.append("load_and_take")
        return super().load_and_take(keys, blocks=blocks, takes=takes, now=now)

    def commit(self, writes: Sequence[CellWrite], *, ttl_s: float, counts: Mapping[str, int] | None = None) -> bool:
        self.trips.append("commit")
        return super().commit(writes, ttl_s=ttl_s, counts=counts)


def test_a_guarded_request_costs_two_round_trips_rate_limits_included(tmp_path: Path) -> None:
    from consentune.config import Settings
    from consentune.service import open_service

    svc = open_service(Settings(home=tmp_path / "h", database_url=f"sqlite:///{tmp_path / 'c.db'}",
                                identify_at_ingest=False, shield_state="file"))  # fmt: skip
    try:
        guard = svc.listen.guard
        store = CountingFile(tmp_path / "h" / "shield-state.sqlite3")
        ahead = PrefetchCells(store)
        guard._board._cells = ahead  # type: ignore[union-attr]
        guard._detector._cells = ahead  # type: ignore[attr-defined]
        guard._limiter = CellRateLimiter(store)
        who = Who("two-trips", "203.0.113.78", account="acct-two-trips")
        for n in range(3):  # the first and later events alike (the later ones reuse this worker's decoded subjects)
            store.trips.clear()
            outcome = guard.check(ev(who, T0 + n, "play", track_id=f"trk_{n}", catalog_index=n, duration_s=200.0))
            assert outcome.action == "allow"
            assert store.trips == ["load_and_take", "commit"]
        buckets = store.load(["rl:plays_per_session:session:two-trips", "rl:plays_per_account:account:acct-two-trips"])
        assert all(b.data is not None for b in buckets)  # both plays' tokens were taken, in the read
    finally:
        svc.close()
