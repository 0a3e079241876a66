"""Listening events pass the same gate as audio: only allowed tracks' plays are readable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consentune.errors import AccessDenied
from consentune.service import Consentune
from consentune.types import PlayEvent, Purpose, TrackId

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _plays(track: TrackId, n: int) -> list[PlayEvent]:
    return [
        PlayEvent(f"user{i % 7}", track, T0 + timedelta(minutes=i), 30_000 + i, ip="10.0.0.1", country="FR")
        for i in range(n)
    ]


def test_plays_are_read_only_for_allowed_tracks(svc: Consentune, audio_files: dict[str, bytes]) -> None:
    artist = svc.catalog.add_artist("Ada", actor="admin:test")
    a = svc.catalog.ingest(audio_files["wav"], filename="a.wav", artist=artist, title=None, actor="t").track
    b = svc.catalog.ingest(audio_files["flac"], filename="b.flac", artist=artist, title=None, actor="t").track
    assert svc.store.add_plays(_plays(a.id, 40) + _plays(b.id, 25)) == 65
    svc.consent.set(artist, purpose=Purpose("recommend"), allow=False, actor="artist:test", track=b.id)

    grant = svc.gate.request(
        actor="service:rec", purpose=Purpose("recommend"), tracks=[a.id, b.id], action="read-plays"
    )
    assert [h.track for h in grant.allowed] == [a.id]
    assert [d.track for d in grant.denied] == [b.id]
    pages = list(svc.gate.read_plays(grant.allowed))
    plays = [p for page in pages for p in page]
    assert len(plays) == 40 and {p.track_id for p in plays} == {a.id}
    assert plays[0].country == "FR" and plays[0].played_at == T0

    window = [
        p
        for page in svc.gate.read_plays(
            grant.allowed, since=T0 + timedelta(minutes=10), until=T0 + timedelta(minutes=20)
        )
        for p in page
    ]
    assert len(window) == 10

    audio_grant = svc.gate.request(actor="service:rec", purpose=Purpose("recommend"), tracks=[a.id])
    with pytest.raises(AccessDenied):
        list(svc.gate.read_plays(audio_grant.allowed))
