"""One artist's bad consent data cannot fail anyone else's decision, on SQLite and PostgreSQL.

Time bounds are checked where they enter (years 1970–9000 once in UTC); a
rule already stored out of range reads back as a deny with its own reason,
and the gate decides the rest of a batch as usual.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert

from consentune.consent import ConsentContext, ConsentRule
from consentune.consent.decide import Reason, decide_isolated
from consentune.consent.terms import default_terms
from consentune.errors import InvalidInput
from consentune.service import Consentune
from consentune.storage import tables
from consentune.storage.timeutil import to_us
from consentune.types import RECOMMEND, TRAIN_AI, Artist, ArtistId, Track, TrackId

# 9999-12-31T23:59:59-14:00 is 10000-01-01T13:59:59Z: past the calendar once moved to UTC
END_OF_CALENDAR_US = 253_402_351_199_000_000


def _track(svc: Consentune, artist: Artist, n: int) -> TrackId:
    track = Track(
        TrackId(f"trk_{artist.name.lower()}{n}"), artist.id, f"t{n}", f"{n:064x}", "wav", 1.0, 44_100, 1, 10,
        datetime.now(UTC),
    )  # fmt: skip
    svc.store.add_track(track, filename="t.wav", actor="test")
    return track.id


def _store_rule_past_the_calendar(svc: Consentune, artist: Artist, *, allow: bool) -> None:
    """A rule as an older version could store it: its end lies past year 9999 in UTC."""
    with svc.store.engine.begin() as conn:
        conn.execute(
            insert(tables.consent_rules).values(
                artist_id=artist.id, track_id=None, purpose=TRAIN_AI, allow=allow, valid_from_us=None,
                valid_until_us=END_OF_CALENDAR_US, actor="artist:old", created_us=to_us(datetime.now(UTC)),
            )
        )  # fmt: skip


@pytest.mark.parametrize(
    "bound",
    [
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14))),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(9000, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-14))),  # 9001 in UTC
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1970, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),  # 1969 in UTC
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
    ],
)
def test_time_bounds_outside_1970_to_9000_in_utc_are_refused(svc: Consentune, bound: datetime) -> None:
    ada = svc.catalog.add_artist("Ada", actor="admin")
    for field in ("valid_from", "valid_until"):
        with pytest.raises(InvalidInput, match=field) as caught:
            svc.consent.set(ada, purpose=TRAIN_AI, allow=True, actor="artist:ada", **{field: bound})
        assert "1970" in caught.value.hint
    assert svc.store.rules_for_artists([ada.id]) == []


def test_bounds_inside_the_range_are_stored_in_utc(svc: Consentune) -> None:
    ada = svc.catalog.add_artist("Ada", actor="admin")
    start = datetime(2020, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    end = datetime(9000, 12, 31, 23, 59, 59, tzinfo=UTC)
    rule = svc.consent.set(ada, purpose=TRAIN_AI, allow=True, actor="a", valid_from=start, valid_until=end)
    (stored,) = svc.store.rules_for_artists([ada.id])
    assert stored.valid_from == datetime(2019, 12, 31, 23, 0, tzinfo=UTC) == rule.valid_from
    assert stored.valid_until == end


@pytest.mark.parametrize("allow", [True, False])
def test_a_stored_rule_past_the_calendar_denies_only_its_artists_tracks(svc: Consentune, allow: bool) -> None:
    ada, bo = svc.catalog.add_artist("Ada", actor="admin"), svc.catalog.add_artist("Bo", actor="admin")
    ada_tracks = [_track(svc, ada, i) for i in range(2)]
    bo_tracks = [_track(svc, bo, i) for i in range(2)]
    svc.consent.set(bo, purpose=TRAIN_AI, allow=True, actor="artist:bo")
    _store_rule_past_the_calendar(svc, ada, allow=allow)

    view = svc.consent.view(ada)  # reading the artist's consent never raises
    (train,) = [p for p in view.purposes if p.purpose == TRAIN_AI]
    assert train.artist_rule is not None and train.artist_rule.defect and not train.artist_rule.allow

    grant = svc.gate.request(actor="service:t", purpose=TRAIN_AI, tracks=[ada_tracks[0], *bo_tracks, ada_tracks[1]])
    assert {h.track for h in grant.allowed} == set(bo_tracks)
    assert {d.track for d in grant.denied} == set(ada_tracks)
    assert all("unreadable" in d.reason for d in grant.denied)
    logged = svc.ledger.entries(list(svc.ledger.sequences(grant.ledger_ticket)))
    assert [(e.track, e.decision) for e in logged] == [
        (ada_tracks[0], "deny"), (bo_tracks[0], "allow"), (bo_tracks[1], "allow"), (ada_tracks[1], "deny"),
    ]  # fmt: skip
    # other purposes of the same artist are unaffected, and a new answer replaces the unreadable one
    assert len(svc.gate.request(actor="s", purpose=RECOMMEND, tracks=ada_tracks).allowed) == 2
    svc.consent.set(ada, purpose=TRAIN_AI, allow=True, actor="artist:ada")
    assert len(svc.gate.request(actor="s", purpose=TRAIN_AI, tracks=ada_tracks).allowed) == 2


def test_an_undecidable_artist_is_denied_and_the_rest_of_the_batch_decided() -> None:
    """Data the vectorised pass cannot handle (here a naive time among aware ones) fails one artist only."""
    now = datetime(2030, 1, 1, tzinfo=UTC)
    ada, bo = ArtistId("art_ada"), ArtistId("art_bo")
    broken = ConsentRule(1, ada, None, TRAIN_AI, True, now, valid_from=datetime(2020, 1, 1))  # naive
    fine = ConsentRule(2, bo, None, TRAIN_AI, True, now)
    context = ConsentContext(
        terms={1: default_terms()},
        track_artist={TrackId("a1"): ada, TrackId("b1"): bo, TrackId("b2"): bo},
        artist_terms={ada: 1, bo: 1},
        rules=[broken, fine],
    )
    tracks = [TrackId("b1"), TrackId("a1"), TrackId("ghost"), TrackId("b2")]
    batch = decide_isolated(context, tracks=tracks, purpose=TRAIN_AI, at=now)
    assert batch.allowed.tolist() == [True, False, False, True]
    assert [Reason(int(r)) for r in batch.reasons] == [
        Reason.ARTIST_ALLOW, Reason.UNDECIDABLE, Reason.UNKNOWN_TRACK, Reason.ARTIST_ALLOW,
    ]  # fmt: skip
    assert "could not be read" in batch.reason_text(1)
