"""The operator console and the reach page come in pages that together cover everything once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consentune.auth import Principal
from consentune.service import Consentune
from consentune.types import PlayEvent, Purpose, Role
from consentune.web import views
from tests.shield.test_public_catalog import add_track


def test_operator_artists_come_in_pages_by_name(svc: Consentune) -> None:
    names = ["Cleo", "Ada", "Eve", "Bo", "Dan"]
    artists = {name: svc.catalog.add_artist(name, actor="admin:test") for name in names}
    svc.consent.set(artists["Eve"], purpose=Purpose("organize"), allow=False, actor="artist:eve")
    admin = Principal("k", Role.ADMIN, None)
    seen, after = [], ""
    while True:
        page = views.operator_overview(svc, admin, after=after, page_size=2)
        seen.extend(a.name for a in page.artists)
        if page.next_artists is None:
            break
        after = page.next_artists
    assert seen == sorted(names)
    first = views.operator_overview(svc, admin, page_size=2)
    assert [r.artist.name for r in first.revocations] == ["Eve"]  # named although not on this page
    assert first.artist_names[artists["Eve"].id] == "Eve"


def test_reach_tracks_come_in_pages_with_totals_from_the_rollups(svc: Consentune) -> None:
    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    tracks = [add_track(svc, ada, f"Song {n}") for n in range(5)]
    now = datetime.now(UTC)
    plays = [PlayEvent(f"u{n % 3}", t.id, now - timedelta(days=n % 4), 1000) for n, t in enumerate(tracks * 3)]
    svc.store.add_plays(plays)
    owner = Principal("k", Role.ARTIST, ada.id)
    rows, after = [], -1
    while True:
        report = views.reach(svc, owner, ada, now=now, after=after, page_size=2)
        rows.extend((r.track.id, r.plays) for r in report.tracks)
        if report.next_after is None:
            break
        after = report.next_after
    assert rows == [(t.id, 3) for t in tracks]
    assert sum(report.plays) == 15 and report.total_listeners == 3
    assert report.listeners[-1] == len({p.user_id for p in plays if p.played_at.date() == now.date()})
