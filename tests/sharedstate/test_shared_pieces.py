"""Pieces shared through Redis by several workers: the gate's use-log dedup, the live fraud intake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from consentune.config import Settings
from consentune.demo.synth import SongSpec, encode, synthesize
from consentune.errors import StorageError
from consentune.fraud.simulate import DAY, START, AttackSpec, inject, merge, organic
from consentune.service import Consentune, open_service
from consentune.sharedstate import RedisLiveEventLog, RedisUseDedup, connect
from consentune.types import PlayEvent, Purpose, TrackId
from tests.sharedstate.conftest import SharedRedis


@pytest.fixture
def workers(shared_redis: SharedRedis, tmp_path: Path) -> Iterator[list[Consentune]]:
    """Two workers: one database, one Redis prefix."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    opened = [open_service(shared_redis.settings(tmp_path / f"w{i}", url)) for i in range(2)]
    yield opened
    for svc in opened:
        svc.close()


def _catalogue(svc: Consentune, n: int) -> list[TrackId]:
    artist = svc.catalog.add_artist("Ada", actor="admin:test")
    clip = encode(synthesize(SongSpec(seed=3, duration_s=1.0, sample_rate=8_000)), 8_000, format="wav")
    out = []
    for i in range(n):  # distinct bytes per track: a tiny tail changes the content hash
        data = clip[:-2] + i.to_bytes(2, "little")
        out.append(svc.catalog.ingest(data, filename="t.wav", artist=artist, title=f"T{i}", actor="t").track.id)
    return out


def test_each_use_is_logged_once_per_window_across_workers(workers: list[Consentune]) -> None:
    a, b = workers
    tracks = _catalogue(a, 3)
    before = a.ledger.size
    for worker in (a, b, a, b):
        list(worker.gate.read_track_plays(actor="service:reach", purpose=Purpose("recommend"), tracks=tracks))
    entries = a.ledger.entries(range(before, a.ledger.size))
    assert sorted(e.track for e in entries) == sorted(tracks)  # once each, whichever worker served


def _play_events(tracks: list[TrackId]) -> list[list[PlayEvent]]:
    stream = organic(users=300, tracks=len(tracks), events=12_000, days=2, seed=11)
    attack = inject(stream, AttackSpec(bots=40, targets=6, density=0.6, start=START + DAY, hours=3), seed=5)
    batch = merge(stream, attack)
    order = np.argsort(batch.t, kind="stable")
    events = [
        PlayEvent(
            user_id=f"u{int(batch.user[i])}",
            track_id=tracks[int(batch.track[i])],
            played_at=datetime.fromtimestamp(float(batch.t[i]), UTC),
            ms_played=int(batch.ms[i]),
            ip=None if batch.net[i] < 0 else f"10.{int(batch.net[i]) // 256 % 256}.{int(batch.net[i]) % 256}.7",
            device_id=None if batch.device[i] < 0 else f"d{int(batch.device[i])}",
            account_created_at=None
            if np.isnan(batch.created[i])
            else datetime.fromtimestamp(float(batch.created[i]), UTC),
        )
        for i in order.tolist()
    ]
    return [events[i : i + 400] for i in range(0, len(events), 400)]


def test_the_live_fraud_detector_sees_every_workers_events(workers: list[Consentune], tmp_path: Path) -> None:
    a, b = workers
    tracks = _catalogue(a, 24)
    alone = open_service(Settings(home=tmp_path / "alone", database_url=a.settings.database_url.replace("c.db", "r.db"),
                                  identify_at_ingest=False))  # fmt: skip
    try:
        reference = _catalogue(alone, 24)
        batches = _play_events(tracks)
        mapping = dict(zip(tracks, reference, strict=True))
        one_worker = []
        for i, events in enumerate(batches):
            (a if i % 2 else b).fraud.push(events, actor="service:ingest")
            one_worker.append(alone.fraud.push([_retrack(e, mapping) for e in events], actor="service:ingest"))
        shared = sorted((sorted(x.members), sorted(mapping[t] for t in x.tracks)) for x in a.fraud.alerts())
        single = sorted((sorted(x.members), sorted(x.tracks)) for x in alone.fraud.alerts())
        assert single, "the scenario raises at least one alert on one worker"
        # two workers, each fed half the batches, store exactly the alerts one worker stores (not one per worker)
        assert shared == single
        _, stats_a = a.fraud.push(batches[-1][:1], actor="service:ingest")  # a duplicate: counted once overall
        assert stats_a.as_dict()["accepted"] == one_worker[-1][1].as_dict()["accepted"]
    finally:
        alone.close()


def _retrack(event: PlayEvent, mapping: dict[TrackId, TrackId]) -> PlayEvent:
    return PlayEvent(event.user_id, mapping[event.track_id], event.played_at, event.ms_played, event.ip,
                     event.device_id, event.user_agent, event.country, event.account_created_at)  # fmt: skip


def test_without_redis_uses_are_logged_and_fraud_intake_fails_with_a_typed_error() -> None:
    down = connect("redis://127.0.0.1:1/0")
    assert RedisUseDedup(down, prefix="x:").first_uses(["a", "b"], window_s=60) == [True, True]
    with pytest.raises(StorageError) as caught:
        RedisLiveEventLog(down, prefix="x:").epoch()
    assert "CONSENTUNE_REDIS_URL" in caught.value.hint
