"""Nothing in a worker reads a blob without a valid grant: expired, wrong purpose, tampered or foreign → refused."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from consentune.errors import AccessDenied
from consentune.gate import GrantedReader, GrantItem, WorkGrant
from consentune.gate.grants import GrantSigner
from consentune.jobs import TaskPayload, run_task
from consentune.service import Consentune
from consentune.types import IDENTIFY, ORGANIZE, TrackId

ACTOR = "service:jobs-test"


def _reader(svc: Consentune, *, clock: float | None = None) -> GrantedReader:
    if clock is None:
        return GrantedReader(blob_dir=svc.settings.blob_dir, verify_key=svc.gate.grant_verify_key)
    return GrantedReader(blob_dir=svc.settings.blob_dir, verify_key=svc.gate.grant_verify_key, clock=lambda: clock)


def _grant(svc: Consentune, tracks: list[TrackId], *, key: str = "job:0/task:0") -> WorkGrant:
    return svc.gate.grant_work(actor=ACTOR, purpose=ORGANIZE, tracks=tracks, key=key).grant


def test_a_valid_grant_reads_exactly_its_tracks(svc: Consentune, catalogue: dict[str, list[TrackId]]) -> None:
    ada = catalogue["Ada"]
    grant = _grant(svc, ada[:2])
    reader = _reader(svc)
    assert reader.read_audio(grant, ada[0], purpose=ORGANIZE)[:4] == b"RIFF"
    samples, rate = reader.decode_audio(grant, ada[1], purpose=ORGANIZE, mono=True)
    assert rate == 44_100 and samples.shape[0] == pytest.approx(3 * 44_100, abs=10)
    with pytest.raises(AccessDenied, match="does not cover"):
        reader.read_audio(grant, ada[2], purpose=ORGANIZE)


def test_expired_wrong_purpose_tampered_and_foreign_grants_are_refused(
    svc: Consentune, catalogue: dict[str, list[TrackId]], tmp_path: Path
) -> None:
    ada, bo = catalogue["Ada"], catalogue["Bo"]
    grant = _grant(svc, ada[:1])
    track = ada[0]
    with pytest.raises(AccessDenied, match="expired"):
        _reader(svc, clock=grant.expires_at + 1).read_audio(grant, track, purpose=ORGANIZE)
    with pytest.raises(AccessDenied, match="not 'identify'"):
        _reader(svc).read_audio(grant, track, purpose=IDENTIFY)
    other = svc.catalog.track(bo[0])
    tampered = [
        dataclasses.replace(grant, items=(GrantItem(bo[0], other.content_sha256),)),  # swap in another track
        dataclasses.replace(grant, items=(*grant.items, GrantItem(bo[0], other.content_sha256))),  # add one
        dataclasses.replace(grant, purpose=IDENTIFY),
        dataclasses.replace(grant, expires_at=grant.expires_at + 86_400),
        dataclasses.replace(grant, key="job:0/task:1"),
        dataclasses.replace(grant, signature=bytes(64)),
    ]
    for bad in tampered:
        with pytest.raises(AccessDenied, match="not signed by this gate or was altered"):
            _reader(svc).read_audio(bad, bad.items[-1].track, purpose=bad.purpose)
    forged = GrantSigner(b"\x01" * 32).sign(key="job:0/task:0", purpose=ORGANIZE, actor=ACTOR, items=grant.items)
    with pytest.raises(AccessDenied, match="not signed by this gate"):
        _reader(svc).read_audio(forged, track, purpose=ORGANIZE)


def test_a_worker_task_with_a_bad_grant_computes_nothing(svc: Consentune, catalogue: dict[str, list[TrackId]]) -> None:
    grant = _grant(svc, catalogue["Ada"][:2])
    bad = dataclasses.replace(grant, purpose=IDENTIFY)  # tampered to pass as a fingerprint grant
    out = run_task(TaskPayload("fingerprint", 0, str(svc.settings.blob_dir), svc.gate.grant_verify_key, bad))
    assert out.outputs == () and [t for t, _ in out.refused] == list(grant.tracks)
    good = run_task(TaskPayload("fingerprint", 0, str(svc.settings.blob_dir), svc.gate.grant_verify_key, grant))
    assert good.outputs == () and len(good.refused) == 2  # an organize grant does not open audio for identify


def test_denied_tracks_never_enter_a_grant(svc: Consentune, catalogue: dict[str, list[TrackId]]) -> None:
    svc.consent.set(svc.catalog.artist("Bo"), purpose=ORGANIZE, allow=False, actor="artist:bo")
    batch = svc.gate.grant_work(actor=ACTOR, purpose=ORGANIZE, tracks=catalogue["order"][:4], key="job:9/task:0")
    assert set(batch.grant.tracks) == set(catalogue["Ada"][:2])
    assert {d.track for d in batch.denied} == set(catalogue["Bo"][:2])
    with pytest.raises(AccessDenied):
        _reader(svc).read_audio(batch.grant, catalogue["Bo"][0], purpose=ORGANIZE)


def test_write_back_refuses_results_outside_the_grant(svc: Consentune, catalogue: dict[str, list[TrackId]]) -> None:
    grant = _grant(svc, catalogue["Ada"][:1])
    with pytest.raises(AccessDenied, match="does not cover"):
        svc.gate.accept_work(grant, {catalogue["Bo"][0]: b"x"}, feature_kind="test.v1")
    with pytest.raises(AccessDenied, match="altered"):
        svc.gate.accept_work(dataclasses.replace(grant, actor="someone"), {grant.tracks[0]: b"x"}, feature_kind="t.v1")
    assert svc.store.get_feature(catalogue["Bo"][0], "test.v1") is None


def test_a_batch_key_is_logged_once_and_regranted_as_logged(
    svc: Consentune, catalogue: dict[str, list[TrackId]]
) -> None:
    tracks = catalogue["order"][:4]
    first = svc.gate.grant_work(actor=ACTOR, purpose=ORGANIZE, tracks=tracks, key="job:5/task:2")
    size = svc.ledger.size
    assert first.fresh and len(svc.ledger.sequences(first.ledger_ticket)) == 4
    svc.consent.set(svc.catalog.artist("Bo"), purpose=ORGANIZE, allow=False, actor="artist:bo")
    after_revoke = svc.ledger.size
    again = svc.gate.grant_work(actor=ACTOR, purpose=ORGANIZE, tracks=tracks, key="job:5/task:2")
    assert not again.fresh and again.ledger_ticket == first.ledger_ticket and svc.ledger.size == after_revoke
    assert again.grant.tracks == first.grant.tracks  # what was logged; write-back re-checks consent
    kept = svc.gate.accept_work(again.grant, dict.fromkeys(again.grant.tracks, b"r"), feature_kind="test.v1")
    assert kept == [t for t in tracks if t in catalogue["Ada"]]
    discarded = [e for e in svc.ledger.entries(range(after_revoke, svc.ledger.size))]
    assert {(e.action, e.track, e.decision) for e in discarded} == {
        ("write-features", t, "deny") for t in tracks if t in catalogue["Bo"]
    }
    assert size < after_revoke
