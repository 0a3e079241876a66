"""End to end on real music: Debian package ``fretsonfire-songs-sectoid`` (MIT-licensed songs).

CI installs the package (``apt-get install fretsonfire-songs-sectoid``); the
songs' folder can be overridden with CONSENTUNE_TEST_MUSIC_DIR.  Absent
locally the test skips; under CI=true it fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from consentune.service import Consentune
from consentune.types import IDENTIFY
from tests.conftest import IN_CI
from tests.identify.test_service import wav

MUSIC_DIR = Path(os.environ.get("CONSENTUNE_TEST_MUSIC_DIR", "/usr/share/games/fretsonfire/data/songs/sectoid"))
SONGS = ("Metal madness", "War of freedom")


def songs() -> list[Path]:
    paths = [MUSIC_DIR / name / "song.ogg" for name in SONGS]
    missing = [p for p in paths if not p.exists()]
    if missing:
        message = f"real music {missing[0]} is absent: apt-get install fretsonfire-songs-sectoid"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return paths


def test_real_music_sped_up_and_noisy_excerpt_is_identified(sqlite_svc: Consentune) -> None:
    svc = sqlite_svc
    paths = songs()
    artist = svc.catalog.add_artist("Sectoid", actor="admin:test")
    tracks = [
        svc.catalog.ingest(
            p.read_bytes(), filename="song.ogg", artist=artist, title=p.parent.name, actor="admin:test"
        ).track
        for p in paths
    ]
    assert all(svc.identify.index.contains(t.id) for t in tracks)
    target = tracks[1]
    grant = svc.gate.request(actor="admin:test", purpose=IDENTIFY, tracks=[target.id])
    x, rate = svc.gate.decode_audio(grant.allowed[0], mono=True, target_sr=22_050)
    start = 60 * rate
    excerpt = resample_poly(x[start : start + int(10.5 * rate)], 20, 21)  # 5 % faster, 10 s
    rng = np.random.default_rng(5)
    noise = rng.standard_normal(excerpt.shape[0])
    noisy = excerpt + noise * np.sqrt(np.mean(excerpt**2) / np.mean(noise**2) / 10)  # 10 dB SNR
    found = svc.identify.identify(wav(noisy / np.max(np.abs(noisy)), rate), actor="admin:test")
    assert found and found[0].track_id == target.id
    best = found[0]
    assert abs(best.time_scale - 1.05) < 0.01 and abs(best.pitch_semitones - 0.845) < 0.3
    assert abs(best.ref_start_s - 60.0 - best.query_start_s * best.time_scale) < 0.5
    # an excerpt of the other song is not confused with it
    other = svc.gate.request(actor="admin:test", purpose=IDENTIFY, tracks=[tracks[0].id]).allowed[0]
    y, _ = svc.gate.decode_audio(other, mono=True, target_sr=22_050)
    assert {m.track_id for m in svc.identify.identify(wav(y[30 * rate : 38 * rate], rate), actor="t")} == {tracks[0].id}
