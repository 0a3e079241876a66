"""IdentifyService wired in the real service: consent, purge on revocation, ingest re-upload check, ledger."""

from __future__ import annotations

import io

import numpy as np
import pytest
from scipy.io import wavfile

from consentune.consent.terms import DEFAULT_KINDS
from consentune.demo.synth import encode
from consentune.errors import AudioRejected
from consentune.service import Consentune
from consentune.types import IDENTIFY, Artist, PurposeKind, TrackId
from tests.identify.conftest import SAMPLE_RATE, song, speed_up

ACTOR = "admin:test"


def wav(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    buffer = io.BytesIO()
    wavfile.write(buffer, rate, (np.clip(samples, -1, 1) * 32767).astype(np.int16))
    return buffer.getvalue()


def ledger_actions(svc: Consentune, track: str) -> list[tuple[str, str]]:
    entries = svc.ledger.entries(range(svc.ledger.size))
    return [(e.action, e.decision) for e in entries if e.track == track and e.purpose == IDENTIFY]


def optional_identify_terms(svc: Consentune, artist: Artist) -> Artist:
    """Move an artist onto terms where `identify` is opt-out, so they may refuse it."""
    kinds = {str(p): k.value for p, k in DEFAULT_KINDS.items()} | {IDENTIFY: PurposeKind.OPT_OUT.value}
    terms = svc.consent.publish_terms(kinds, summary="identify optional", actor=ACTOR)
    svc.consent.accept_terms(artist, version=terms.version, actor=ACTOR)
    return svc.catalog.artist(artist.id)


@pytest.fixture
def original() -> np.ndarray:
    return song(21, duration_s=30.0)


def test_reupload_is_flagged_identified_and_purged_on_revocation(svc: Consentune, original: np.ndarray) -> None:
    ada = svc.catalog.add_artist("Ada", actor=ACTOR)
    bo = svc.catalog.add_artist("Bo", actor=ACTOR)
    decoy = svc.catalog.ingest(wav(song(22, 20.0)), filename="decoy.wav", artist=bo, title=None, actor=ACTOR).track
    track = svc.catalog.ingest(wav(original), filename="a.wav", artist=ada, title=None, actor=ACTOR).track
    assert svc.identify.index.contains(track.id) and svc.identify.index.contains(decoy.id)
    assert ("index", "record") in ledger_actions(svc, track.id)

    # Bo re-uploads Ada's song 5 % faster: flagged at ingest with the speed estimated
    copy = speed_up(original[5 * SAMPLE_RATE :], 20, 21)
    reupload = svc.catalog.ingest(wav(copy), filename="b.wav", artist=bo, title=None, actor=ACTOR).track
    flagged = svc.identify.matches_for(reupload.id)
    assert [m.matched_track_id for m in flagged] == [track.id]
    assert abs(flagged[0].time_scale - 1.05) < 0.01 and abs(flagged[0].pitch_semitones - 0.845) < 0.25
    assert svc.identify.matches_for(track.id) == flagged  # shown on the original too

    # a query excerpt (not stored) matches, and the match is in the ledger against the matched track
    before = svc.ledger.size
    found = svc.identify.identify(wav(original[12 * SAMPLE_RATE : 20 * SAMPLE_RATE]), actor=ACTOR)
    assert found[0].track_id in {track.id, reupload.id}
    assert {m.track_id for m in found} <= {track.id, reupload.id}
    logged = svc.ledger.entries(range(before, svc.ledger.size))
    assert {(e.action, e.track) for e in logged} == {("match", m.track_id) for m in found}

    # Ada (on terms where identify is optional) revokes it: her track leaves the index and its matches go
    ada = optional_identify_terms(svc, ada)
    svc.consent.revoke(ada, purpose=IDENTIFY, actor=ACTOR)
    assert not svc.identify.index.contains(track.id)
    assert svc.identify.matches_for(reupload.id) == []
    assert ("unindex", "record") in ledger_actions(svc, track.id)
    found = svc.identify.identify(wav(original[12 * SAMPLE_RATE : 20 * SAMPLE_RATE]), actor=ACTOR)
    assert track.id not in {m.track_id for m in found}
    # a rebuild respects the refusal
    report = svc.identify.rebuild(actor=ACTOR)
    assert track.id in report.denied and not svc.identify.index.contains(track.id)


def test_track_without_identify_consent_is_never_indexed_or_matched(svc: Consentune, original: np.ndarray) -> None:
    cy = optional_identify_terms(svc, svc.catalog.add_artist("Cy", actor=ACTOR))
    svc.consent.set(cy, purpose=IDENTIFY, allow=False, actor=ACTOR)
    track = svc.catalog.ingest(wav(original), filename="c.wav", artist=cy, title=None, actor=ACTOR).track
    assert not svc.identify.index.contains(track.id)
    assert svc.identify.index_tracks([TrackId(track.id)], actor=ACTOR).denied == [track.id]
    assert svc.identify.identify(wav(original[: 10 * SAMPLE_RATE]), actor=ACTOR) == []
    assert ("read-audio", "deny") in ledger_actions(svc, track.id)
    assert ("index", "record") not in ledger_actions(svc, track.id)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"this is not audio at all" * 100, "not_audio"),
        (wav(np.zeros(5 * SAMPLE_RATE)), "silent"),
        (wav(np.sin(np.arange(int(0.2 * SAMPLE_RATE)) * 0.3) * 0.5), "too_short"),
    ],
)
def test_bad_query_audio_is_rejected(sqlite_svc: Consentune, data: bytes, reason: str) -> None:
    with pytest.raises(AudioRejected) as info:
        sqlite_svc.identify.identify(data, actor=ACTOR)
    assert info.value.reason == reason and info.value.hint


def test_truncated_query_is_rejected(sqlite_svc: Consentune, original: np.ndarray) -> None:
    data = encode(original[: 6 * SAMPLE_RATE], SAMPLE_RATE, format="flac")
    with pytest.raises(AudioRejected) as info:
        sqlite_svc.identify.identify(data[: len(data) // 2], actor=ACTOR)
    assert info.value.reason in {"corrupt", "unsupported_format"}


def test_an_upload_is_decoded_once_and_fingerprinted_from_exactly_what_a_second_decode_gives(
    sqlite_svc: Consentune, original: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    import consentune.identify.service as identify_service
    from consentune.gate import decode as gate_decode

    calls: list[str] = []
    fingerprinted: list[np.ndarray] = []
    real_decode, real_one_pass, real_postings = (
        gate_decode.decode, gate_decode.validate_and_decode, identify_service.track_postings
    )  # fmt: skip
    monkeypatch.setattr(gate_decode, "decode", lambda *a, **k: calls.append("decode") or real_decode(*a, **k))
    monkeypatch.setattr(
        gate_decode, "validate_and_decode", lambda *a, **k: calls.append("one pass") or real_one_pass(*a, **k)
    )
    monkeypatch.setattr(
        identify_service, "track_postings", lambda t, s: fingerprinted.append(s.copy()) or real_postings(t, s)
    )
    data = encode(original, SAMPLE_RATE, format="flac")
    ada = sqlite_svc.catalog.add_artist("Ada", actor=ACTOR)
    track = sqlite_svc.catalog.ingest(data, filename="a.flac", artist=ada, title=None, actor=ACTOR).track
    assert calls == ["one pass"]  # validated and fingerprinted from one decode
    assert sqlite_svc.identify.index.contains(track.id) and ("index", "record") in ledger_actions(sqlite_svc, track.id)
    again, _ = real_decode(data, mono=True, target_sr=identify_service.SAMPLE_RATE)
    assert len(fingerprinted) == 1
    np.testing.assert_array_equal(fingerprinted[0], again)

    # the same bytes again (no new track, no hook) and a later read of the track decode from the stored original
    sqlite_svc.catalog.ingest(data, filename="a.flac", artist=ada, title=None, actor=ACTOR)
    calls.clear()
    assert sqlite_svc.identify.index_tracks([track.id], actor=ACTOR).indexed == [track.id]
    assert calls == ["decode"]
