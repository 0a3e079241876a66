"""Near duplicates come from the fingerprint engine's stored matches; a short shared span is not a duplicate."""

from __future__ import annotations

import numpy as np

from consentune.demo.synth import SongSpec, encode, synthesize
from consentune.service import Consentune

RATE = 22_050


def _speed(audio: np.ndarray, factor: float) -> np.ndarray:
    """Resample so that played back at the same rate the audio runs ``factor`` times faster."""
    at = np.arange(int(len(audio) / factor)) * factor
    return np.stack([np.interp(at, np.arange(len(audio)), audio[:, c]) for c in range(audio.shape[1])], axis=1)


def test_reencoded_sped_up_copy_is_a_near_duplicate_and_a_shared_snippet_is_not(svc: Consentune) -> None:
    original = synthesize(SongSpec(seed=41, duration_s=16.0, sample_rate=RATE, style="techno"))
    other = synthesize(SongSpec(seed=42, duration_s=16.0, sample_rate=RATE, style="pop"))
    snippet = np.concatenate([original[: 4 * RATE], other[4 * RATE :]])  # 4 s of the original, then other music
    ada, bo = svc.catalog.add_artist("Ada", actor="t"), svc.catalog.add_artist("Bo", actor="t")
    a = svc.catalog.ingest(encode(original, RATE, format="flac"), filename="a.flac", artist=ada, title="A", actor="t")
    copy = encode(_speed(original, 1.03).astype(np.float32), RATE, format="mp3")
    b = svc.catalog.ingest(copy, filename="b.mp3", artist=bo, title="A (fast)", actor="t")
    c = svc.catalog.ingest(encode(snippet, RATE, format="wav"), filename="c.wav", artist=bo, title="C", actor="t")
    ids = [a.track.id, b.track.id, c.track.id]
    svc.organize.analyze(ids, actor="admin:test")

    near = svc.organize.duplicates(a.track.id, actor="admin:test")
    assert [(m.track, m.kind) for m in near] == [(b.track.id, "near")]
    assert svc.organize.duplicate_groups(actor="admin:test") == [sorted([a.track.id, b.track.id])]
    shared = {m.track_id for m in svc.identify.matches_for(c.track.id)} | {
        m.matched_track_id for m in svc.identify.matches_for(c.track.id)
    }
    assert a.track.id in shared  # identification reports the shared 4 s as a partial match ...
    assert a.track.id not in {m.track for m in svc.organize.duplicates(c.track.id, actor="admin:test")}
    assert c.track.id not in {m.track for m in near}  # ... but it is not a duplicate
