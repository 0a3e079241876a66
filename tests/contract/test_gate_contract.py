"""Purpose gate contract, on SQLite and PostgreSQL.

Handles only for allowed tracks, one ledger entry per decision, unforgeable
handles, purges when consent is withdrawn, and (property test) agreement
with the pure decide() over random histories of consent changes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from consentune.consent import ConsentContext, ConsentRule, decide
from consentune.errors import AccessDenied, ConsentError, InvalidInput, NotFound
from consentune.gate import Grant
from consentune.ledger import LedgerEntry
from consentune.service import Consentune, open_service
from consentune.storage import tables
from consentune.types import (
    DETECT_FRAUD,
    IDENTIFY,
    KNOWN_PURPOSES,
    ORGANIZE,
    RECOMMEND,
    TRAIN_AI,
    TRAIN_GENERATIVE,
    Artist,
    Purpose,
    TrackId,
)

SERVICE = "service:test"
GHOST = TrackId("trk_00000000deadbeef")


@dataclass(frozen=True)
class Catalogue:
    ada: Artist
    bob: Artist
    ada_tracks: tuple[TrackId, ...]
    bob_tracks: tuple[TrackId, ...]
    audio: dict[TrackId, bytes]

    @property
    def tracks(self) -> tuple[TrackId, ...]:
        return self.ada_tracks + self.bob_tracks

    def owner(self, track: TrackId) -> Artist:
        return self.ada if track in self.ada_tracks else self.bob


def _build(svc: Consentune, audio_files: dict[str, bytes]) -> Catalogue:
    ada = svc.catalog.add_artist("Ada", actor="admin")
    bob = svc.catalog.add_artist("Bob", actor="admin")
    tracks: dict[str, list[TrackId]] = {"ada": [], "bob": []}
    audio: dict[TrackId, bytes] = {}
    for fmt, who in (("wav", ada), ("flac", ada), ("ogg-vorbis", ada), ("opus", bob), ("mp3", bob)):
        track = svc.catalog.ingest(audio_files[fmt], filename=f"{fmt}.bin", artist=who, title=None, actor="admin").track
        tracks[who.name.lower()].append(track.id)
        audio[track.id] = audio_files[fmt]
    return Catalogue(ada, bob, tuple(tracks["ada"]), tuple(tracks["bob"]), audio)


@pytest.fixture
def cat(svc: Consentune, audio_files: dict[str, bytes]) -> Catalogue:
    return _build(svc, audio_files)


def _entries(svc: Consentune, seqs: range) -> list[LedgerEntry]:
    entries = svc.ledger.entries(list(seqs))
    assert [e.sequence for e in entries] == list(seqs)
    return entries


def _appends(svc: Consentune) -> int:
    """How many appends the ledger has acknowledged: queued batches plus integrated ones."""
    with svc.store.engine.connect() as conn:
        queued = conn.execute(select(func.count()).select_from(tables.ledger_queue)).scalar_one()
        integrated = conn.execute(select(func.count()).select_from(tables.ledger_batches)).scalar_one()
    return int(queued) + int(integrated)


def _feature_purpose(svc: Consentune, track: TrackId, kind: str) -> Purpose | None:
    found = svc.store.get_feature(track, kind)
    return None if found is None else found[0]


def _allowed(grant: Grant) -> list[TrackId]:
    return [h.track for h in grant.allowed]


# -- decisions and the ledger ----------------------------------------------------


def test_request_hands_out_handles_only_for_allowed_tracks(svc: Consentune, cat: Catalogue) -> None:
    svc.consent.set(cat.ada, purpose=TRAIN_AI, allow=True, actor="artist:ada")
    tracks = [*cat.tracks, GHOST]
    size = svc.ledger.size
    grant = svc.gate.request(actor=SERVICE, purpose=TRAIN_AI, tracks=tracks)
    assert _allowed(grant) == list(cat.ada_tracks)
    assert all((h.purpose, h.action, h.actor) == (TRAIN_AI, "read-audio", SERVICE) for h in grant.allowed)
    assert [d.track for d in grant.denied] == [*cat.bob_tracks, GHOST]
    assert all("opt-in" in d.reason for d in grant.denied[:-1])
    assert "unknown track" in grant.denied[-1].reason
    assert svc.ledger.sequences(grant.ledger_ticket) == range(size, size + len(tracks))
    assert svc.ledger.size == size + len(tracks)


def test_every_decision_is_one_ledger_entry(svc: Consentune, cat: Catalogue) -> None:
    svc.consent.revoke(cat.bob, purpose=RECOMMEND, actor="artist:bob", track=cat.bob_tracks[0])
    tracks = [*cat.tracks, GHOST]
    grant = svc.gate.request(actor=SERVICE, purpose=RECOMMEND, tracks=tracks, action="read-features")
    entries = _entries(svc, svc.ledger.sequences(grant.ledger_ticket))
    denials = {d.track: d.reason for d in grant.denied}
    allowed = set(_allowed(grant))
    assert allowed == set(tracks) - {cat.bob_tracks[0], GHOST}
    for entry, track in zip(entries, tracks, strict=True):
        assert (entry.actor, entry.action, entry.purpose, entry.track) == (SERVICE, "read-features", RECOMMEND, track)
        assert entry.decision == ("allow" if track in allowed else "deny")
        if track in denials:
            assert entry.reason == denials[track]
        assert entry.terms_version == (None if track == GHOST else cat.owner(track).terms_version)
    assert "track rule: deny" in denials[cat.bob_tracks[0]]


def test_a_5000_track_request_is_one_ledger_append(svc: Consentune, cat: Catalogue) -> None:
    now_us = int(datetime.now(UTC).timestamp() * 1e6)
    bulk = [TrackId(f"trk_bulk{i:011d}") for i in range(4_990)]
    with svc.store.engine.begin() as conn:
        conn.execute(
            insert(tables.tracks),
            [
                {
                    "id": track,
                    "artist_id": (cat.ada if i % 3 else cat.bob).id,
                    "title": track,
                    "content_sha256": f"{i:064x}",
                    "format": "wav",
                    "duration_s": 3.0,
                    "sample_rate": 44_100,
                    "channels": 2,
                    "size_bytes": 1,
                    "created_us": now_us,
                }
                for i, track in enumerate(bulk)
            ],
        )
    svc.consent.set(cat.ada, purpose=TRAIN_AI, allow=True, actor="artist:ada")
    tracks = [*bulk, *cat.tracks, *[TrackId(f"trk_ghost{i}") for i in range(5)]]
    assert len(tracks) == 5_000
    size, appends = svc.ledger.size, _appends(svc)
    grant = svc.gate.request(actor=SERVICE, purpose=TRAIN_AI, tracks=tracks)
    assert _appends(svc) == appends + 1
    assert svc.ledger.size == size + 5_000
    assert svc.ledger.sequences(grant.ledger_ticket) == range(size, size + 5_000)
    expected = [t for t in tracks if t in cat.ada_tracks or (t in bulk and int(t[9:]) % 3)]
    assert _allowed(grant) == expected
    assert len(grant.allowed) + len(grant.denied) == 5_000
    first, last = _entries(svc, range(size, size + 1))[0], _entries(svc, range(size + 4_999, size + 5_000))[0]
    assert (first.track, last.track) == (tracks[0], tracks[-1])
    assert (first.decision, last.decision) == ("deny", "deny")  # bulk 0 is Bob's; the last is a ghost


# -- handles ----------------------------------------------------------------------


def test_handles_read_the_original_and_forgeries_are_refused(svc: Consentune, cat: Catalogue) -> None:
    grant = svc.gate.request(actor=SERVICE, purpose=IDENTIFY, tracks=list(cat.tracks))
    handles = {h.track: h for h in grant.allowed}
    first, second = cat.tracks[0], cat.tracks[1]
    assert svc.gate.read_audio(handles[first]) == cat.audio[first]
    forgeries = [
        replace(handles[first], track=second),
        replace(handles[first], purpose=RECOMMEND),
        replace(handles[first], purpose=TRAIN_GENERATIVE),
        replace(handles[first], actor="service:other"),
        replace(handles[first], expires_at=handles[first].expires_at + 3600),
        replace(handles[first], token=bytes(32)),
    ]
    for forged in forgeries:
        with pytest.raises(AccessDenied):
            svc.gate.read_audio(forged)
    for action in ("read-features", "write-features"):
        forged = replace(handles[first], action=action)
        with pytest.raises(AccessDenied):
            svc.gate.read_feature(forged, "tempo")
        with pytest.raises(AccessDenied):
            svc.gate.write_feature(forged, "tempo", b"120")
    assert svc.store.get_feature(first, "tempo") is None


def test_handles_from_another_service_instance_are_refused(svc: Consentune, cat: Catalogue) -> None:
    other = open_service(svc.settings)
    try:
        theirs = other.gate.request(actor=SERVICE, purpose=IDENTIFY, tracks=[cat.tracks[0]]).allowed[0]
        assert other.gate.read_audio(theirs) == cat.audio[cat.tracks[0]]
        with pytest.raises(AccessDenied):
            svc.gate.read_audio(theirs)
        mine = svc.gate.request(actor=SERVICE, purpose=IDENTIFY, tracks=[cat.tracks[0]]).allowed[0]
        with pytest.raises(AccessDenied):
            other.gate.read_audio(mine)
    finally:
        other.close()


def test_a_write_features_handle_cannot_read(svc: Consentune, cat: Catalogue) -> None:
    track = cat.tracks[0]
    (writer,) = svc.gate.request(actor=SERVICE, purpose=ORGANIZE, tracks=[track], action="write-features").allowed
    svc.gate.write_feature(writer, "tempo", b"120")
    with pytest.raises(AccessDenied):
        svc.gate.read_audio(writer)
    with pytest.raises(AccessDenied):
        svc.gate.read_feature(writer, "tempo")
    (reader,) = svc.gate.request(actor=SERVICE, purpose=ORGANIZE, tracks=[track], action="read-features").allowed
    assert svc.gate.read_feature(reader, "tempo") == b"120"
    with pytest.raises(AccessDenied):
        svc.gate.write_feature(reader, "tempo", b"999")
    with pytest.raises(AccessDenied):
        svc.gate.read_audio(reader)


# -- withdrawing consent purges derived features -------------------------------------


def _write_features(svc: Consentune, purpose: Purpose, tracks: list[TrackId], kind: str) -> None:
    grant = svc.gate.request(actor=SERVICE, purpose=purpose, tracks=tracks, action="write-features")
    assert _allowed(grant) == tracks
    for handle in grant.allowed:
        svc.gate.write_feature(handle, kind, f"{kind}:{handle.track}".encode())


def _purge_entries(svc: Consentune, since: int) -> list[LedgerEntry]:
    return [e for e in _entries(svc, range(since, svc.ledger.size)) if e.action == "purge"]


def test_artist_revoke_purges_organize_features_only(svc: Consentune, cat: Catalogue) -> None:
    ada_tracks = list(cat.ada_tracks)
    _write_features(svc, ORGANIZE, ada_tracks, "tempo")
    _write_features(svc, ORGANIZE, list(cat.bob_tracks), "tempo")
    _write_features(svc, RECOMMEND, ada_tracks, "embedding")
    size, jobs = svc.ledger.size, len(svc.consent.purge_jobs())
    svc.consent.revoke(cat.ada, purpose=ORGANIZE, actor="artist:ada")
    assert all(_feature_purpose(svc, t, "tempo") is None for t in ada_tracks)
    assert all(_feature_purpose(svc, t, "embedding") == RECOMMEND for t in ada_tracks)
    assert all(_feature_purpose(svc, t, "tempo") == ORGANIZE for t in cat.bob_tracks)
    (job,) = svc.consent.purge_jobs()[jobs:]
    assert (job.artist_id, job.track_id, job.purpose, job.status, job.purged) == (
        cat.ada.id,
        None,
        ORGANIZE,
        "done",
        len(ada_tracks),
    )
    purges = _purge_entries(svc, size)
    assert sorted(e.track for e in purges) == sorted(ada_tracks)  # type: ignore[type-var]
    assert all((e.purpose, e.actor, e.decision) == (ORGANIZE, "artist:ada", "record") for e in purges)
    assert svc.gate.request(actor=SERVICE, purpose=ORGANIZE, tracks=ada_tracks).allowed == ()


def test_track_revoke_purges_only_that_track(svc: Consentune, cat: Catalogue) -> None:
    revoked, kept = cat.ada_tracks[0], list(cat.ada_tracks[1:])
    _write_features(svc, ORGANIZE, list(cat.ada_tracks), "tempo")
    size = svc.ledger.size
    svc.consent.revoke(cat.ada, purpose=ORGANIZE, actor="artist:ada", track=revoked)
    assert _feature_purpose(svc, revoked, "tempo") is None
    assert all(_feature_purpose(svc, t, "tempo") == ORGANIZE for t in kept)
    job = svc.consent.purge_jobs()[-1]
    assert (job.track_id, job.purpose, job.status, job.purged) == (revoked, ORGANIZE, "done", 1)
    assert [e.track for e in _purge_entries(svc, size)] == [revoked]


def test_track_allow_survives_an_artist_revoke(svc: Consentune, cat: Catalogue) -> None:
    favourite, others = cat.ada_tracks[0], list(cat.ada_tracks[1:])
    svc.consent.set(cat.ada, purpose=ORGANIZE, allow=True, actor="artist:ada", track=favourite)
    _write_features(svc, ORGANIZE, list(cat.ada_tracks), "tempo")
    size = svc.ledger.size
    svc.consent.revoke(cat.ada, purpose=ORGANIZE, actor="artist:ada")
    assert _feature_purpose(svc, favourite, "tempo") == ORGANIZE
    assert all(_feature_purpose(svc, t, "tempo") is None for t in others)
    assert svc.consent.purge_jobs()[-1].purged == len(others)
    assert sorted(e.track for e in _purge_entries(svc, size)) == sorted(others)  # type: ignore[type-var]
    assert _allowed(svc.gate.request(actor=SERVICE, purpose=ORGANIZE, tracks=list(cat.ada_tracks))) == [favourite]


@pytest.mark.parametrize("purpose", [IDENTIFY, DETECT_FRAUD])
def test_required_purposes_cannot_be_revoked(svc: Consentune, cat: Catalogue, purpose: Purpose) -> None:
    size = svc.ledger.size
    for track in (None, cat.ada_tracks[0]):
        with pytest.raises(ConsentError):
            svc.consent.revoke(cat.ada, purpose=purpose, actor="artist:ada", track=track)
    assert svc.ledger.size == size
    assert svc.store.rules_for_artists([cat.ada.id]) == []
    assert _allowed(svc.gate.request(actor=SERVICE, purpose=purpose, tracks=list(cat.tracks))) == list(cat.tracks)


# -- opt-in purposes -------------------------------------------------------------------


def test_train_generative_needs_the_artists_opt_in(svc: Consentune, cat: Catalogue) -> None:
    assert svc.gate.request(actor=SERVICE, purpose=TRAIN_GENERATIVE, tracks=list(cat.tracks)).allowed == ()
    svc.consent.set(cat.bob, purpose=TRAIN_GENERATIVE, allow=True, actor="artist:bob")
    grant = svc.gate.request(actor=SERVICE, purpose=TRAIN_GENERATIVE, tracks=list(cat.tracks))
    assert _allowed(grant) == list(cat.bob_tracks)
    assert all(
        "artist rule: allow" in e.reason
        for e in _entries(svc, svc.ledger.sequences(grant.ledger_ticket))[len(cat.ada_tracks) :]
    )


def test_time_bounded_opt_in_only_counts_inside_its_window(svc: Consentune, cat: Catalogue) -> None:
    now = datetime.now(UTC)
    expired, future, current = cat.ada_tracks
    svc.consent.set(
        cat.ada, purpose=TRAIN_AI, allow=True, actor="a", track=expired, valid_until=now - timedelta(days=1)
    )
    svc.consent.set(cat.ada, purpose=TRAIN_AI, allow=True, actor="a", track=future, valid_from=now + timedelta(days=1))
    svc.consent.set(
        cat.ada,
        purpose=TRAIN_AI,
        allow=True,
        actor="a",
        track=current,
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=1),
    )
    grant = svc.gate.request(actor=SERVICE, purpose=TRAIN_AI, tracks=list(cat.ada_tracks))
    assert _allowed(grant) == [current]
    assert {d.track for d in grant.denied} == {expired, future}


# -- property: the gate never hands out what decide() denies --------------------------

UNKNOWN_PURPOSES = [Purpose("remix"), Purpose("no-such-purpose")]
PURPOSES = [*KNOWN_PURPOSES, *UNKNOWN_PURPOSES]
HOURS = st.none() | st.integers(-48, 48).filter(lambda h: h != 0)


@st.composite
def changes(draw: st.DrawFn) -> tuple[int, int | None, Purpose, bool, int | None, int | None]:
    """(artist index, track index within that artist or None, purpose, allow, from/until hours)."""
    return (
        draw(st.integers(0, 1)),
        draw(st.none() | st.integers(0, 2)),
        draw(st.sampled_from(PURPOSES)),
        draw(st.booleans()),
        draw(HOURS),
        draw(HOURS),
    )


def test_gate_agrees_with_decide_over_random_consent_histories(
    sqlite_svc: Consentune, audio_files: dict[str, bytes]
) -> None:
    svc = sqlite_svc
    cat = _build(svc, audio_files)
    artists = (cat.ada, cat.bob)
    per_artist = (cat.ada_tracks, cat.bob_tracks)
    owners = {t: cat.owner(t).id for t in cat.tracks}
    accepted: list[ConsentRule] = []  # our own record of every rule the registry accepted

    @settings(
        max_examples=50,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        history=st.lists(changes(), max_size=6),
        purpose=st.sampled_from(PURPOSES),
        # every track each time, plus repeats and an unknown one, in any order
        tracks=st.lists(st.sampled_from([*cat.tracks, GHOST]), max_size=4).flatmap(
            lambda extra: st.permutations([*cat.tracks, *extra])
        ),
    )
    def check(
        history: list[tuple[int, int | None, Purpose, bool, int | None, int | None]],
        purpose: Purpose,
        tracks: list[TrackId],
    ) -> None:
        now = datetime.now(UTC)
        for who, which, rule_purpose, allow, start, end in history:
            mine = per_artist[who]
            track = None if which is None else mine[which % len(mine)]
            try:
                accepted.append(
                    svc.consent.set(
                        artists[who],
                        purpose=rule_purpose,
                        allow=allow,
                        actor="artist",
                        track=track,
                        valid_from=None if start is None else now + timedelta(hours=start),
                        valid_until=None if end is None else now + timedelta(hours=end),
                    )
                )
            except ConsentError:
                assert rule_purpose in UNKNOWN_PURPOSES or not allow  # unknown, or required switched off
            except InvalidInput:  # an empty time window
                assert start is not None and end is not None and end <= start
        size = svc.ledger.size
        grant = svc.gate.request(actor=SERVICE, purpose=purpose, tracks=tracks)
        assert svc.ledger.size == size + len(tracks)
        assert Counter(_allowed(grant)) + Counter(d.track for d in grant.denied) == Counter(tracks)
        context = ConsentContext(
            terms={1: svc.consent.terms(1)},
            track_artist=owners,
            artist_terms={a.id: a.terms_version for a in artists},
            rules=accepted,
        )
        at = datetime.now(UTC)
        handed_out = set(_allowed(grant))
        for track in set(tracks):
            allowed, reason = decide(context, track=track, purpose=purpose, at=at)
            assert (track in handed_out) == allowed, (track, purpose, reason)

    check()


def test_only_the_owner_can_set_a_track_rule(svc: Consentune, cat: Catalogue) -> None:
    size = svc.ledger.size
    with pytest.raises(NotFound):
        svc.consent.set(cat.ada, purpose=TRAIN_AI, allow=True, actor="artist:ada", track=cat.bob_tracks[0])
    assert svc.ledger.size == size
    assert svc.gate.request(actor=SERVICE, purpose=TRAIN_AI, tracks=[cat.bob_tracks[0]]).allowed == ()
