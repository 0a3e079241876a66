"""The recommendation service respects consent: in training, at serving, and at once after a revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consentune.service import Consentune
from consentune.types import PlayEvent, Purpose, TrackId

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def _song(seed: int) -> bytes:
    """Distinct music per upload: the same song from two artists would be a claimed copy, held from recommendations."""
    from consentune.demo.synth import SongSpec, encode, synthesize

    return encode(synthesize(SongSpec(seed=seed, duration_s=3.0, sample_rate=22_050)), 22_050, format="wav")


@pytest.fixture
def world(svc: Consentune, audio_files: dict[str, bytes]) -> dict[str, list[TrackId]]:
    tracks: dict[str, list[TrackId]] = {}
    for base, (name, genre) in ((200, ("Ada", "ambient")), (300, ("Bo", "techno"))):
        artist = svc.catalog.add_artist(name, actor="admin:test")
        tracks[name] = [
            svc.catalog.ingest(_song(base + i), filename=f"{fmt}.wav", artist=artist, title=f"{name} {fmt}",
                               actor="t", tags=[genre]).track.id
            for i, fmt in enumerate(audio_files)
        ]  # fmt: skip
    plays = []
    for u in range(30):  # ambient fans play Ada, techno fans play Bo, everyone skips nothing
        group = tracks["Ada"] if u % 2 else tracks["Bo"]
        for k, track in enumerate(group[: 2 + u % 3]):
            plays.append(PlayEvent(f"user{u}", track, T0 + timedelta(minutes=u * 10 + k), 120_000))
    svc.store.add_plays(plays)
    return tracks


def _recommend(svc: Consentune, user: str) -> list[TrackId]:
    return [r.track for r in svc.recommend.for_user(user, n=10, actor="service:test")]


def test_non_consenting_track_is_never_trained_on_or_recommended(
    svc: Consentune, world: dict[str, list[TrackId]]
) -> None:
    ada = svc.catalog.artist("Ada")
    excluded = world["Ada"][4]
    svc.consent.set(ada, purpose=Purpose("recommend"), allow=False, actor="artist:ada", track=excluded)
    before = svc.ledger.size
    report = svc.recommend.train(actor="admin:test")
    assert report.tracks_used == 9 and report.tracks_refused == 1
    entries = svc.ledger.entries(range(before, svc.ledger.size))
    decisions = {e.track: e.decision for e in entries if e.action == "read-plays"}
    assert decisions[excluded] == "deny" and sum(d == "allow" for d in decisions.values()) == 9
    assert any(e.action == "train" and report.model_id in e.reason for e in entries)
    for u in range(30):
        assert excluded not in _recommend(svc, f"user{u}")


def test_revocation_removes_a_track_from_served_lists_immediately(
    svc: Consentune, world: dict[str, list[TrackId]]
) -> None:
    svc.recommend.train(actor="admin:test")
    recs = _recommend(svc, "user1")
    assert recs
    target = recs[0]
    owner = svc.catalog.artist(svc.catalog.track(target).artist_id)
    svc.consent.revoke(owner, purpose=Purpose("recommend"), actor="artist:test", track=target)
    assert target not in _recommend(svc, "user1")
    impressions = [e for e in svc.ledger.entries(range(svc.ledger.size)) if e.action == "recommend"]
    assert impressions and all(e.purpose == "recommend" and e.decision == "allow" for e in impressions)


def test_new_upload_is_recommended_from_its_tags(
    svc: Consentune, world: dict[str, list[TrackId]], audio_files: dict[str, bytes]
) -> None:
    svc.recommend.train(actor="admin:test")
    newcomer = svc.catalog.add_artist("Cy", actor="admin:test")
    fresh = svc.catalog.ingest(_song(400), filename="new.wav", artist=newcomer, title="New", actor="t",
                               tags=["ambient"]).track  # fmt: skip
    recs = svc.recommend.for_user("user1", n=10, actor="service:test")
    assert any(r.track == fresh.id and r.source == "cold-start" for r in recs)
    techno_fan = [r.track for r in svc.recommend.for_user("user0", n=10, actor="service:test")]
    assert fresh.id not in techno_fan
