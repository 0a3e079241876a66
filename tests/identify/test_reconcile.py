"""The fingerprint index is brought back in line with the catalogue after a crash or a damaged segment.

Index and catalogue are made to disagree the way a crash can (a track
missing, an orphan entry, a track still indexed after identify was
withdrawn, a segment damaged on disk); reconcile or the next start puts
them back, through the gate and with ledger entries, and matches work.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from consentune.config import Settings
from consentune.identify import track_postings
from consentune.service import Consentune, open_service
from consentune.types import IDENTIFY, TrackId
from tests.identify.conftest import SAMPLE_RATE, song
from tests.identify.test_service import ACTOR, ledger_actions, optional_identify_terms, wav


def _catalogue(svc: Consentune, n: int) -> tuple[list[TrackId], dict[TrackId, np.ndarray]]:
    ada = optional_identify_terms(svc, svc.catalog.add_artist("Ada", actor=ACTOR))
    audio: dict[TrackId, np.ndarray] = {}
    for seed in range(n):
        samples = song(300 + seed, duration_s=12.0)
        track = svc.catalog.ingest(wav(samples), filename=f"{seed}.wav", artist=ada, title=None, actor=ACTOR).track
        audio[track.id] = samples
    return list(audio), audio


def _identified(svc: Consentune, samples: np.ndarray) -> list[str]:
    return [m.track_id for m in svc.identify.identify(wav(samples[2 * SAMPLE_RATE : 9 * SAMPLE_RATE]), actor=ACTOR)]


def test_reconcile_removes_orphans_and_revoked_tracks_and_reindexes_missing_ones(svc: Consentune) -> None:
    tracks, audio = _catalogue(svc, 4)
    missing, revoked, kept = tracks[0], tracks[1], tracks[2:]
    index = svc.identify.index
    index.remove([missing])  # as if the process died between the ingest commit and the index write
    index.add([track_postings("trk_not_in_catalogue", song(999, 10.0))])  # an orphan
    report = svc.identify.reconcile(actor=ACTOR)
    assert report.orphans == ["trk_not_in_catalogue"] and report.revoked == []
    assert report.reindexed.indexed == [missing] and report.missing == []
    assert sorted(index.track_ids()) == sorted(tracks)
    assert _identified(svc, audio[missing])[0] == missing
    assert ("index", "record") in ledger_actions(svc, missing)

    # identify withdrawn while the purge could not run (its postings put back): reconcile removes them
    ada = svc.catalog.artists()[0]
    svc.consent.set(ada, purpose=IDENTIFY, allow=False, actor=ACTOR)
    index.add([track_postings(revoked, audio[revoked])])
    report = svc.identify.reconcile(actor=ACTOR)
    assert set(report.revoked) == {revoked} and report.reindexed.indexed == []
    assert index.track_ids() == []  # every track of Ada's is refused now
    assert ("unindex", "record") in ledger_actions(svc, revoked)
    assert not set(_identified(svc, audio[kept[0]])) & set(tracks)


def test_reconcile_reindexes_at_most_the_limit_and_reports_the_rest(svc: Consentune) -> None:
    tracks, _ = _catalogue(svc, 3)
    svc.identify.index.remove(tracks)
    report = svc.identify.reconcile(actor=ACTOR, limit=1)
    assert len(report.reindexed.indexed) == 1 and sorted([*report.reindexed.indexed, *report.missing]) == sorted(tracks)
    assert svc.identify.reconcile(actor=ACTOR, reindex=False).reindexed.indexed == []
    assert svc.identify.index.track_count() == 1
    # the sweep's window: tracks created before it are left for `index build`
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert svc.identify.reconcile(actor=ACTOR, created_after=later).reindexed.indexed == []
    earlier = datetime.now(UTC) - timedelta(days=1)
    assert len(svc.identify.reconcile(actor=ACTOR, created_after=earlier).reindexed.indexed) == 2
    assert sorted(svc.identify.index.track_ids()) == sorted(tracks)


@pytest.mark.parametrize("damage", ["segment", "manifest"])
def test_a_damaged_index_is_repaired_and_refilled_when_the_service_opens(
    database_url: str, tmp_path: Path, damage: str
) -> None:
    settings = Settings(home=tmp_path / "home", database_url=database_url)
    svc = open_service(settings)
    try:
        tracks, audio = _catalogue(svc, 3)
        folder = settings.fingerprint_dir
    finally:
        svc.close()
    segments = json.loads((folder / "index.json").read_text())["segments"]
    if damage == "segment":
        keys = folder / segments[-1] / "keys.npy"
        keys.write_bytes(keys.read_bytes()[:100])
    else:
        (folder / "index.json").write_text("{torn")
    svc = open_service(settings)
    try:
        assert svc.identify.index.recovery.lost_data  # type: ignore[attr-defined]
        assert sorted(svc.identify.index.track_ids()) == sorted(tracks)
        for track in tracks:
            assert _identified(svc, audio[track])[0] == track
        svc.ledger.integrate()
        assert svc.ledger.audit().ok
    finally:
        svc.close()
