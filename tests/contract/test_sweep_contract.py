"""Lapsed time-bounded consent: derived data is withheld at once and purged by the sweep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consentune.service import Consentune
from consentune.types import Purpose


def test_expired_opt_in_features_are_withheld_then_swept(svc: Consentune, audio_files: dict[str, bytes]) -> None:
    artist = svc.catalog.add_artist("Ada", actor="admin:test")
    track = svc.catalog.ingest(audio_files["wav"], filename="a.wav", artist=artist, title=None, actor="t").track
    soon = datetime.now(UTC) + timedelta(seconds=2)
    svc.consent.set(artist, purpose=Purpose("train-ai"), allow=True, actor="artist:test", valid_until=soon)
    write = svc.gate.request(actor="svc", purpose=Purpose("train-ai"), tracks=[track.id], action="write-features")
    svc.gate.write_feature(write.allowed[0], "embedding", b"\x01\x02")
    read = svc.gate.request(actor="svc", purpose=Purpose("recommend"), tracks=[track.id], action="read-features")
    assert svc.gate.read_feature(read.allowed[0], "embedding") == b"\x01\x02"
    assert svc.gate.sweep(actor="system:test") == 0

    later = soon + timedelta(seconds=1)
    svc.gate._clock = lambda: later  # the gate decides at its clock's time
    assert svc.gate.read_feature(read.allowed[0], "embedding") is None  # derived under a lapsed purpose
    assert svc.gate.sweep(actor="system:test") == 1
    assert svc.store.get_feature(track.id, "embedding") is None
    entries = svc.ledger.entries(range(svc.ledger.size))
    assert any(e.action == "purge" and e.track == track.id and e.purpose == "train-ai" for e in entries)


def test_handles_issued_before_a_revocation_stop_working_at_once(
    svc: Consentune, audio_files: dict[str, bytes]
) -> None:
    import pytest

    from consentune.errors import AccessDenied

    artist = svc.catalog.add_artist("Ada", actor="admin:test")
    track = svc.catalog.ingest(audio_files["wav"], filename="a.wav", artist=artist, title=None, actor="t").track
    handles = {
        action: svc.gate.request(actor="svc", purpose=Purpose("recommend"), tracks=[track.id], action=action).allowed[0]
        for action in ("read-audio", "read-features", "write-features")
    }
    svc.gate.write_feature(handles["write-features"], "vec", b"1")
    svc.consent.revoke(artist, purpose=Purpose("recommend"), actor="artist:test")
    with pytest.raises(AccessDenied):
        svc.gate.write_feature(handles["write-features"], "vec", b"derived-after-revocation")
    with pytest.raises(AccessDenied):
        svc.gate.read_feature(handles["read-features"], "vec")
    with pytest.raises(AccessDenied):
        svc.gate.read_audio(handles["read-audio"])
    assert svc.store.get_feature(track.id, "vec") is None


def test_accepting_stricter_terms_purges_what_they_switch_off(svc: Consentune, audio_files: dict[str, bytes]) -> None:
    artist = svc.catalog.add_artist("Ada", actor="admin:test")
    track = svc.catalog.ingest(audio_files["wav"], filename="a.wav", artist=artist, title=None, actor="t").track
    write = svc.gate.request(actor="svc", purpose=Purpose("organize"), tracks=[track.id], action="write-features")
    svc.gate.write_feature(write.allowed[0], "tempo", b"120")
    kinds = {p: k.value for p, k in svc.consent.current_terms().kinds.items()}
    stricter = svc.consent.publish_terms(dict(kinds, organize="opt-in"), summary="organize is opt-in", actor="admin")
    assert svc.store.get_feature(track.id, "tempo") is not None  # nobody moved yet
    svc.consent.accept_terms(svc.catalog.artist("Ada"), version=stricter.version, actor="artist:ada")
    assert svc.store.get_feature(track.id, "tempo") is None
    assert [j.purpose for j in svc.consent.purge_jobs()] == ["organize"]


def _revoke_with_a_purger_failing_once(svc: Consentune, audio_files: dict[str, bytes]) -> tuple[str, list[list[str]]]:
    """Revoke ``recommend`` for a new track while a registered purger fails on its first call; return the
    track and the purger's calls."""
    import pytest

    artist = svc.catalog.add_artist("Ada", actor="admin:test")
    track = svc.catalog.ingest(audio_files["wav"], filename="a.wav", artist=artist, title=None, actor="t").track
    calls: list[list[str]] = []

    def flaky(purpose: Purpose, tracks: list[str], _actor: str) -> int:
        calls.append(list(tracks))
        if len(calls) == 1:
            raise OSError("index volume unavailable")
        return len(tracks)

    svc.consent.add_purger(flaky)  # type: ignore[arg-type]
    with pytest.raises(OSError):
        svc.consent.revoke(artist, purpose=Purpose("recommend"), actor="artist:test", track=track.id)
    return track.id, calls


def test_a_purge_that_failed_is_finished_by_the_next_sweep(svc: Consentune, audio_files: dict[str, bytes]) -> None:
    track, calls = _revoke_with_a_purger_failing_once(svc, audio_files)
    (pending,) = svc.consent.purge_jobs(status="pending")
    assert svc.consent.retry_pending_purges(actor="system:test") == 1
    assert calls[-1] == [track]
    (job,) = [j for j in svc.consent.purge_jobs() if j.id == pending.id]
    assert job.status == "done" and job.purged >= 1
    assert svc.consent.purge_jobs(status="pending") == []
    assert svc.consent.retry_pending_purges(actor="system:test") == 0


def test_a_retried_purge_spares_tracks_whose_consent_came_back(svc: Consentune, audio_files: dict[str, bytes]) -> None:
    track, calls = _revoke_with_a_purger_failing_once(svc, audio_files)
    artist = svc.catalog.artist("Ada")
    svc.consent.set(artist, purpose=Purpose("recommend"), allow=True, actor="artist:test", track=track)  # type: ignore[arg-type]
    assert svc.consent.retry_pending_purges(actor="system:test") == 1
    assert len(calls) == 1  # re-decided now: recommend is allowed again, so no purger is asked to delete anything
    assert svc.consent.purge_jobs(status="pending") == []
