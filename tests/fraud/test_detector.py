"""The streaming detector on small simulated worlds with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from consentune.fraud import EventBatch, StreamDetector
from consentune.fraud.simulate import DAY, START, Attack, AttackSpec, Stream, inject, merge, organic


def _stream(batch: EventBatch, detector: StreamDetector, size: int = 5000) -> None:
    for i in range(0, len(batch), size):
        detector.push(batch.take(np.arange(i, min(i + size, len(batch)))))
    detector.flush()


@pytest.fixture(scope="module")
def world() -> tuple[Stream, Attack, StreamDetector]:
    stream = organic(users=800, tracks=3000, events=40_000, days=2, seed=11)
    attack = inject(stream, AttackSpec(bots=60, targets=12, density=0.5, start=START + DAY, hours=3), seed=5)
    detector = StreamDetector()
    _stream(merge(stream, attack), detector)
    return stream, attack, detector


def test_known_injected_block_is_found_within_an_hour(world: tuple[Stream, Attack, StreamDetector]) -> None:
    _, attack, detector = world
    bots = {str(b) for b in attack.bots.tolist()}
    targets = {str(t) for t in attack.targets.tolist()}
    top = detector.alerts()[0]
    assert len(bots & set(top.members)) >= 0.9 * len(bots)
    assert len(targets & set(top.tracks)) >= 0.9 * len(targets)
    assert top.raised_at - attack.spec.start <= 3600
    assert top.window_start >= attack.spec.start - 60
    assert top.signals["members"] >= 5


def test_organic_listeners_of_targeted_tracks_are_not_flagged(world: tuple[Stream, Attack, StreamDetector]) -> None:
    stream, attack, detector = world
    ev = stream.events
    fans = set(np.unique(ev.user[np.isin(ev.track, attack.targets)]).tolist()) - set(attack.bots.tolist())
    assert len(fans) > 20  # the targets really have organic listeners
    flagged = {int(m) for alert in detector.alerts() for m in alert.members}
    assert len(flagged & fans) == 0
    organic_users = set(range(stream.n_users))
    assert len(flagged & organic_users) <= 0.005 * len(organic_users)


def test_organic_stream_alone_raises_nothing_big() -> None:
    stream = organic(users=800, tracks=3000, events=40_000, days=2, seed=12)
    detector = StreamDetector()
    _stream(stream.events, detector)
    flagged = {m for alert in detector.alerts() for m in alert.members}
    assert len(flagged) <= 4


def _batch(users: list[int], tracks: list[int], times: list[float], ms: list[int]) -> EventBatch:
    n = len(users)
    return EventBatch(
        np.array(users, dtype=np.int32),
        np.array(tracks, dtype=np.int32),
        np.array(times, dtype=np.float64),
        np.array(ms, dtype=np.int32),
        np.full(n, -1, dtype=np.int32),
        np.full(n, -1, dtype=np.int32),
        np.full(n, np.nan),
    )


def test_malformed_values_are_refused_and_counted() -> None:
    detector = StreamDetector()
    detector.push(_batch([0, 1, 2, -1], [0, 1, 2, 3], [START, float("nan"), START + 1, START + 2], [1000, 1000, -5, 1]))
    assert detector.stats.accepted == 1
    assert detector.stats.invalid == 3


def test_clock_skew_is_refused_and_does_not_move_the_stream() -> None:
    detector = StreamDetector()
    times = [START + i * 60.0 for i in range(10)] + [START + 3 * DAY]
    detector.push(_batch(list(range(11)), [0] * 11, times, [200_000] * 11))
    assert detector.stats.skewed == 1
    assert detector.watermark == START + 9 * 60.0
    wall = StreamDetector(clock=lambda: START)
    wall.push(_batch([0, 1], [0, 0], [START - 10, START + 2 * DAY], [1000, 1000]))
    assert wall.stats.skewed == 1 and wall.stats.accepted == 1


def test_duplicate_events_count_once() -> None:
    detector = StreamDetector()
    batch = _batch([0, 0, 1], [5, 5, 5], [START, START, START + 30], [40_000, 40_000, 40_000])
    detector.push(batch)
    detector.push(batch)
    assert detector.stats.accepted == 2
    assert detector.stats.duplicate == 4
    assert int(detector.state.total[0]) == 1


def test_late_events_older_than_the_window_are_refused() -> None:
    detector = StreamDetector()
    detector.push(_batch([0], [0], [START + DAY], [1000]))
    detector.push(_batch([1], [0], [START], [1000]))
    assert detector.stats.late == 1
