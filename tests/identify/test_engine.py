"""Fingerprint + index + matcher on synthetic music with known offsets, speeds and pitch shifts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from consentune.errors import InvalidInput
from consentune.identify import SAMPLE_RATE, THRESHOLD, MmapIndex, fingerprint, identify_samples, track_postings
from tests.identify.conftest import pitch_shift, speed_up

Songs = dict[int, npt.NDArray[np.float32]]


@pytest.fixture(scope="module")
def index(songs: Songs, tmp_path_factory: pytest.TempPathFactory) -> MmapIndex:
    idx = MmapIndex(tmp_path_factory.mktemp("fp"))
    idx.add([track_postings(f"song-{seed}", x) for seed, x in songs.items() if seed != 14])
    return idx


def excerpt(x: npt.NDArray[np.float32], start_s: float, length_s: float) -> npt.NDArray[np.float32]:
    return x[int(start_s * SAMPLE_RATE) : int((start_s + length_s) * SAMPLE_RATE)]


def test_clean_excerpt_is_found_at_its_offset(songs: Songs, index: MmapIndex) -> None:
    found = identify_samples(excerpt(songs[12], 7.0, 8.0), index)
    assert found and found[0].track_id == "song-12"
    best = found[0]
    assert best.score >= THRESHOLD
    # the reference time range starts where the excerpt was cut (query starts at 0)
    assert abs((best.ref_start_s - best.query_start_s) - 7.0) < 0.1
    assert abs(best.time_scale - 1.0) < 0.01 and abs(best.pitch_semitones) < 0.2


@pytest.mark.parametrize(("up", "down", "scale"), [(20, 21, 1.05), (20, 19, 0.95)])
def test_speed_change_is_estimated(songs: Songs, index: MmapIndex, up: int, down: int, scale: float) -> None:
    query = speed_up(excerpt(songs[11], 5.0, 10.0 * scale), up, down)
    best = identify_samples(query, index)[0]
    assert best.track_id == "song-11"
    assert abs(best.time_scale - scale) < 0.01
    assert abs(best.pitch_semitones - 12 * np.log2(scale)) < 0.25


@pytest.mark.parametrize("semitones", [1.0, -1.0])
def test_pitch_shift_with_tempo_kept_is_estimated(songs: Songs, index: MmapIndex, semitones: float) -> None:
    shifted = pitch_shift(excerpt(songs[13], 4.0, 10.0), semitones)
    best = identify_samples(shifted, index)[0]
    assert best.track_id == "song-13"
    assert abs(best.pitch_semitones - semitones) < 0.25
    assert abs(best.time_scale - 1.0) < 0.01


def test_tempo_change_with_pitch_kept_is_estimated(songs: Songs, index: MmapIndex) -> None:
    """Speed up by 5 %, then shift the pitch back down: only the tempo changed."""
    faster = speed_up(excerpt(songs[12], 3.0, 10.5), 20, 21)
    tempo_only = pitch_shift(faster, -12 * np.log2(1.05))
    best = identify_samples(tempo_only, index)[0]
    assert best.track_id == "song-12"
    assert abs(best.time_scale - 1.05) < 0.01
    assert abs(best.pitch_semitones) < 0.25


def test_unindexed_song_and_noise_do_not_match(songs: Songs, index: MmapIndex) -> None:
    assert identify_samples(excerpt(songs[14], 3.0, 10.0), index) == []
    noise = np.random.default_rng(0).standard_normal(10 * SAMPLE_RATE).astype(np.float32) * 0.1
    assert identify_samples(noise, index) == []


def test_noisy_excerpt_still_matches(songs: Songs, index: MmapIndex) -> None:
    clean = excerpt(songs[12], 2.0, 10.0)
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(clean.shape[0]).astype(np.float32)
    noisy = clean + noise * np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10)  # 10 dB SNR
    assert identify_samples(noisy, index)[0].track_id == "song-12"


def test_long_query_holds_two_matches_with_their_time_ranges(songs: Songs, index: MmapIndex) -> None:
    query = np.concatenate([excerpt(songs[11], 2.0, 8.0), excerpt(songs[13], 10.0, 8.0)])
    found = {m.track_id: m for m in identify_samples(query, index)}
    assert set(found) == {"song-11", "song-13"}
    assert found["song-11"].query_end_s < 8.5 and found["song-13"].query_start_s > 7.5


@pytest.mark.parametrize(
    ("samples", "words"),
    [
        (np.zeros(5 * SAMPLE_RATE, np.float32), "silent"),
        (np.ones(int(0.2 * SAMPLE_RATE), np.float32), "at least"),
        (np.full(SAMPLE_RATE * 2, np.nan, np.float32), "NaN"),
    ],
)
def test_unusable_audio_is_a_typed_error(samples: npt.NDArray[np.float32], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        fingerprint(samples, query=True)


def test_reference_hashes_are_deterministic(songs: Songs) -> None:
    a = track_postings("x", songs[11])
    b = track_postings("x", songs[11])
    assert np.array_equal(a.keys, b.keys) and np.array_equal(a.frames, b.frames)
    assert 10 < a.keys.size / (songs[11].shape[0] / SAMPLE_RATE) < 60  # hashes per second: the size budget


def test_index_survives_reopen(index: MmapIndex, songs: Songs) -> None:
    reopened = MmapIndex(Path(index.folder))
    assert reopened.track_count() == 3
    assert identify_samples(excerpt(songs[13], 1.0, 6.0), reopened)[0].track_id == "song-13"
