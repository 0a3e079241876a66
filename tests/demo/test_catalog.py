"""The demo catalogue shows every capability on real (synthesized) audio, honouring its mixed consents."""

from __future__ import annotations

from pathlib import Path

from consentune.config import Settings
from consentune.demo.catalog import build_demo
from consentune.errors import AccessDenied
from consentune.service import open_service
from consentune.types import Purpose


def test_demo_describes_consenting_tracks_and_skips_the_opted_out_artist(tmp_path: Path) -> None:
    svc = open_service(Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}"))
    try:
        keys = build_demo(svc, duration_s=2.0)
        assert keys.admin and len(keys.artists) == 3
        described: dict[str, bool] = {}
        for artist in svc.catalog.artists():
            for track in svc.catalog.tracks(artist=artist, limit=100):
                try:
                    found = svc.organize.descriptors(track.id, actor="admin:test") is not None
                except AccessDenied:  # the opted-out artist's tracks are refused, not merely empty
                    found = False
                described[f"{artist.name}/{track.title}"] = found
        opted_out = {k: v for k, v in described.items() if k.startswith("Lumen Drift/")}
        others = {k: v for k, v in described.items() if not k.startswith("Lumen Drift/")}
        assert opted_out and not any(opted_out.values())
        assert others and all(others.values())

        original = next(t for t in svc.catalog.tracks(artist=svc.catalog.artist("The Night Sequencers"), limit=10)
                        if t.title == "Pulse Grid")  # fmt: skip
        [match] = svc.identify.matches_for(original.id)
        copy = svc.store.get_track(match.track_id)
        assert copy is not None and copy.title == "Pulse Grid (nightcore edit)"
        assert match.matched_track_id == original.id and abs(match.time_scale - 1.04) < 0.02
        # the copy is claimed and held: not streamed or recommended until The Night Sequencers decide
        [claim] = svc.claims.claims(as_artist=None)
        assert (claim.copy_track_id, claim.original_track_id, claim.status.value) == (copy.id, original.id, "open")
        for purpose in ("stream", "recommend"):
            assert not svc.gate.decide(purpose=Purpose(purpose), tracks=[copy.id]).allowed[0]
    finally:
        svc.close()
