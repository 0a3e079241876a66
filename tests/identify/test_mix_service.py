"""Mix tracklists through the service: ledger `match` entries, and a mix upload opening a claim per track."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from consentune.api import create_app
from consentune.identify.service import MIX_UPLOAD_S
from consentune.service import Consentune
from consentune.types import ArtistId, Role
from tests.identify.conftest import SAMPLE_RATE, crossfaded, styled_song
from tests.identify.test_service import ACTOR, wav
from tests.web.test_web import _sign_in


def test_tracklist_logs_matches_and_a_mix_upload_opens_claims(svc: Consentune) -> None:
    ada = svc.catalog.add_artist("Ada", actor=ACTOR)
    bo = svc.catalog.add_artist("Bo", actor=ACTOR)
    songs = [styled_song(200 + n, duration_s=140.0) for n in range(4)]  # four styles: no shared drum kits
    originals = [
        svc.catalog.ingest(wav(x), filename=f"{n}.wav", artist=ada, title=f"song {n}", actor=ACTOR).track.id
        for n, x in enumerate(songs[:3])
    ]
    mix = crossfaded(songs)  # the fourth song is not in the catalogue
    assert mix.shape[0] >= MIX_UPLOAD_S * SAMPLE_RATE

    before = svc.ledger.size
    segments = svc.identify.tracklist(wav(mix), actor=ACTOR, filename="mix.wav")
    assert [s.track_id for s in segments] == [*originals, None]
    switches = [130.0 * n + 5.0 for n in range(1, 4)]  # middles of the crossfades
    assert all(abs(s.end_s - t) <= 5.0 for s, t in zip(segments[:3], switches, strict=True))
    logged = svc.ledger.entries(range(before, svc.ledger.size))
    assert [(e.action, e.track) for e in logged] == [("match", t) for t in originals]

    # Bo uploads the mix to the catalogue: a claim per track, on the range where it plays
    upload = svc.catalog.ingest(wav(mix), filename="mix.wav", artist=bo, title="Bo's mix", actor=ACTOR).track
    claims = svc.claims.claims(as_artist=None, track=upload.id)
    assert sorted(c.original_track_id for c in claims) == sorted(originals)
    for claim in claims:
        seg = next(s for s in segments if s.track_id == claim.original_track_id)
        assert abs(claim.copy_start_s - seg.start_s) <= 5.0 and abs(claim.copy_end_s - seg.end_s) <= 5.0
    assert np.isclose(sum(c.copy_end_s - c.copy_start_s for c in claims), segments[2].end_s, atol=5.0)

    # the dashboard's page of Bo's mix shows its tracklist, with a link to each track's artist
    client = TestClient(create_app(svc), raise_server_exceptions=True)
    _sign_in(client, svc.keys.create(role=Role.ARTIST, artist_id=ArtistId(bo.id))[1])
    page = client.get(f"/dashboard/tracks/{upload.id}").text
    assert "Tracklist of this mix" in page
    assert page.count(f'href="/dashboard/artists/{ada.id}">Ada</a>') == 3
    assert page.index("song 0") < page.index("song 1") < page.index("song 2")
    assert "no other artist&#39;s track identified" in page or "no other artist's track identified" in page
