"""The multi-day collusion search: pair history bookkeeping, a low-rate human-like farm found on the graph
alone, a farm as large as the world found as well, organic listening and look-alikes left alone, the
newcomer rule's blind spot made explicit, and the search run on its schedule rather than in push."""

from __future__ import annotations

import numpy as np
import pytest

from consentune.fraud import StreamDetector
from consentune.fraud.collusion import DAY, CollusionConfig, PairHistory, find_collusion
from consentune.fraud.detector import DetectorConfig
from consentune.fraud.encode import F64, EventBatch
from consentune.fraud.family import CollusionSpec, Injected, collusion, lookalikes
from consentune.fraud.simulate import START, Stream, organic


def _batch(user: list[int], track: list[int], t: list[float]) -> EventBatch:
    n = len(user)
    return EventBatch(
        np.array(user, dtype=np.int32),
        np.array(track, dtype=np.int32),
        np.array(t, dtype=np.float64),
        np.full(n, 200_000, dtype=np.int32),
        np.full(n, -1, dtype=np.int32),
        np.full(n, -1, dtype=np.int32),
        np.full(n, np.nan),
    )


def test_pair_history_counts_plays_and_days_and_forgets_old_days() -> None:
    history = PairHistory(horizon_days=2)
    history.add(_batch([1, 1, 1, 3], [2, 2, 2, 2], [START + 10, START + 20, START + DAY + 5, START + DAY + 9]))
    table = history.table(START + DAY + 100)
    rows = {
        (int(u), int(t)): (p, d) for u, t, p, d in zip(table.user, table.track, table.plays, table.days, strict=True)
    }
    assert rows == {(1, 2): (3.0, 2.0), (3, 2): (1.0, 1.0)}
    later = history.table(START + 2 * DAY + 100)  # day 0 has left the two-day horizon
    assert {(int(u), float(p)) for u, p in zip(later.user, later.plays, strict=True)} == {(1, 1.0), (3, 1.0)}


@pytest.fixture(scope="module")
def world() -> Stream:
    return organic(users=1500, tracks=10_000, events=1500 * 10 * 9, days=9, seed=21)


# a farm of a tenth of the world's accounts
FARM = CollusionSpec(accounts=150, targets=30, density=0.1, camouflage=0.5, plays_per_day=6.0, days=6.0)


def _scan(
    world: Stream, groups: list[Injected], *, established: set[int] = frozenset(), created: bool = False
) -> tuple[set[int], F64]:
    """Members of every block found at day 8; ``created`` passes the accounts' creation times (the
    organic world's are years old or within the stream, a farm's the week before its attack)."""
    merged = EventBatch.concat([world.events, *[g.events for g in groups]])
    history = PairHistory(7)
    history.add(merged)
    first_seen = np.full(int(merged.user.max()) + 1, np.inf)
    np.minimum.at(first_seen, merged.user, merged.t)
    first_seen[list(established)] = START - 60 * DAY  # pretend these accounts listened for two months
    opened = np.full(first_seen.shape[0], np.nan)
    opened[merged.user] = merged.created
    now = START + 8 * DAY
    blocks = find_collusion(
        history.table(now), CollusionConfig(), now=now, first_seen=first_seen, created=opened if created else None
    )
    return {int(m) for b in blocks for m in b.members}, first_seen


def test_a_low_rate_human_farm_is_found_and_look_alikes_are_not(world: Stream) -> None:
    farm = collusion(world, CollusionSpec(**{**vars(FARM), "start": START + 2 * DAY}), seed=22)
    looks = lookalikes(world, start=START + 2 * DAY, seed=23)
    flagged, _ = _scan(world, [farm, *looks])
    bots = set(farm.accounts.tolist())
    assert len(flagged & bots) >= 0.9 * len(bots)
    assert len(flagged - bots) <= 0.05 * len(flagged)
    for group in looks:
        assert not flagged & set(group.accounts.tolist()), group.kind


def test_organic_listening_alone_raises_nothing(world: Stream) -> None:
    flagged, _ = _scan(world, [])
    assert flagged == set()


def test_accounts_that_listened_long_before_are_not_members(world: Stream) -> None:
    """The newcomer rule's blind spot: a farm of accounts with a stream history (hijacked, or aged by
    listening) is not claimed by this search; behaviour and the window search remain for it."""
    farm = collusion(world, CollusionSpec(**{**vars(FARM), "start": START + 2 * DAY}), seed=24)
    flagged, _ = _scan(world, [farm], established=set(farm.accounts.tolist()))
    assert not flagged & set(farm.accounts.tolist())


def test_a_farm_that_is_a_large_share_of_all_listening_is_found(world: Stream) -> None:
    """The judge's expectation comes from the accounts outside the block, so a farm of as many accounts
    as the organic world, every one on every target, is as clear as a small one (a lift against random
    mixing is about 1 / the farm's share of all listening, and missed it)."""
    spec = CollusionSpec(**{**vars(FARM), "accounts": 1500, "density": 1.0, "start": START + 2 * DAY})
    farm = collusion(world, spec, seed=26)
    looks = lookalikes(world, start=START + 2 * DAY, seed=27)
    flagged, _ = _scan(world, [farm, *looks], created=True)
    bots = set(farm.accounts.tolist())
    assert len(flagged & bots) >= 0.9 * len(bots)
    assert len(flagged - bots) <= 0.05 * len(flagged)  # precision >= 0.95, the bench's goal


def _replay(detector: StreamDetector, events: EventBatch, *, scheduled: bool) -> None:
    for i in range(0, len(events), 20_000):
        part = events.take(np.arange(i, min(i + 20_000, len(events))))
        if scheduled:
            detector.feed(part)
        else:
            detector.push(part)


def test_the_collusion_search_runs_on_its_schedule_not_in_push(world: Stream) -> None:
    farm = collusion(world, CollusionSpec(**{**vars(FARM), "start": START + 2 * DAY}), seed=25)
    merged = EventBatch.concat([world.events, farm.events])
    events = merged.take(np.argsort(merged.t, kind="stable"))
    events = events.take(np.flatnonzero(events.t < START + 6 * DAY))  # four days of the farm
    names = {f"{b}" for b in farm.accounts.tolist()}
    # the window search is not what is measured here (and costs most); a search every 6 h keeps it cheap
    every = 6 * 3600.0
    quiet = DetectorConfig(max_blocks=0, collusion=CollusionConfig(every_s=every))
    pushed = StreamDetector(quiet)
    _replay(pushed, events, scheduled=False)
    assert pushed.search_cpu_s == 0.0 and pushed.collusion_due()  # push folded the pairs, searched nothing
    assert not any("collusion_lift" in a.signals for a in pushed.alerts())
    raised = pushed.search_collusion()  # what the scheduler's job does
    assert any(len(set(a.members) & names) >= 0.9 * len(names) for a in raised)

    fed = StreamDetector(quiet)
    _replay(fed, events, scheduled=True)
    top = fed.alerts()[0]
    assert len(set(top.members) & names) >= 0.9 * len(names)
    assert top.signals["collusion_lift"] > 10 and top.window_end > top.window_start
    # raised by a search during the stream, at its schedule, not by the final flush
    offset = (top.raised_at - float(events.t[0])) % every
    assert top.raised_at < float(events.t[-1]) and min(offset, every - offset) < 1.0
