"""Descriptors on synthetic signals with known answers, and on awkward input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

from consentune.errors import InvalidInput
from consentune.organize import Descriptors, analyze
from consentune.organize.key import PITCH_CLASSES, mirex_key_score
from consentune.organize.loudness import integrated_loudness, k_weighting
from tests.organize.signals import click_track, progression, sine


@pytest.mark.parametrize("bpm", [72.0, 96.0, 120.0, 135.0, 150.0])
def test_click_track_tempo_within_two_percent(bpm: float) -> None:
    found = analyze(click_track(bpm), 22_050, autotag=False)
    assert found.tempo_bpm is not None
    assert abs(found.tempo_bpm - bpm) / bpm < 0.02, found.tempo_bpm


@pytest.mark.parametrize(("tonic", "mode"), [(0, "major"), (9, "minor"), (7, "major"), (2, "minor"), (10, "major")])
def test_chord_progression_key(tonic: int, mode: str) -> None:
    found = analyze(progression(tonic, mode), 22_050, autotag=False)
    assert found.key == f"{PITCH_CLASSES[tonic]} {mode}"
    assert found.key_tonic == tonic and found.key_mode == mode


def test_mirex_weights() -> None:
    assert mirex_key_score((0, "major"), (0, "major")) == 1.0
    assert mirex_key_score((7, "major"), (0, "major")) == 0.5  # G for C
    assert mirex_key_score((9, "minor"), (0, "major")) == 0.3  # A minor for C major
    assert mirex_key_score((0, "minor"), (0, "major")) == 0.2
    assert mirex_key_score((1, "major"), (0, "major")) == 0.0


@pytest.mark.parametrize("sr", [48_000, 44_100, 11_025])
def test_ebu_r128_reference_sine_is_minus_23_lufs(sr: int) -> None:
    # EBU Tech 3341 case 1: a 1 kHz stereo sine at -23 dBFS measures -23.0 ± 0.1 LUFS
    assert integrated_loudness(sine(1000.0, -23.0, sr=sr), sr) == pytest.approx(-23.0, abs=0.1)


def test_loudness_one_channel_and_gating() -> None:
    mono = sine(1000.0, -20.0, channels=1)
    assert integrated_loudness(mono, 48_000) == pytest.approx(-20.0 - 3.01, abs=0.1)
    # 10 s at -20 dBFS then 10 s at -60 dBFS: the quiet half falls under the relative gate
    loud, quiet = sine(1000.0, -20.0, seconds=10), sine(1000.0, -60.0, seconds=10)
    assert integrated_loudness(np.concatenate([loud, quiet]), 48_000) == pytest.approx(-20.0, abs=0.1)
    assert integrated_loudness(np.zeros((48_000, 2), np.float32), 48_000) is None


def test_k_weighting_matches_the_printed_48k_coefficients() -> None:
    (shelf_b, shelf_a), (hp_b, hp_a) = k_weighting(48_000)
    assert shelf_b == pytest.approx([1.53512485958697, -2.69169618940638, 1.19839281085285], abs=1e-9)
    assert shelf_a == pytest.approx([1.0, -1.69065929318241, 0.73248077421585], abs=1e-9)
    assert hp_a == pytest.approx([1.0, -1.99004745483398, 0.99007225036621], abs=1e-9)
    assert hp_b == pytest.approx([1.0, -2.0, 1.0])


def test_silence_is_flagged_and_has_no_tempo_key_or_loudness() -> None:
    found = analyze(np.zeros((44_100 * 2, 2), np.float32), 44_100)
    assert found.silent and found.tempo_bpm is None and found.key is None and found.loudness_lufs is None
    assert found.duration_s == 2.0 and np.all(np.isfinite(found.vector()))


@pytest.mark.parametrize("sr", [11_025, 44_100, 48_000])
def test_odd_rates_and_channel_layouts_agree(sr: int) -> None:
    base = progression(0, "major", repeats=2) + click_track(120.0, seconds=8.0)
    audio = resample_poly(base, sr, 22_050).astype(np.float32)
    mono = analyze(audio, sr, autotag=False)
    stereo = analyze(np.stack([audio, audio], axis=1), sr, autotag=False)
    assert mono.key == stereo.key == "C major"
    assert mono.tempo_bpm is not None and abs(mono.tempo_bpm - 120.0) < 2.4
    assert mono.duration_s == pytest.approx(8.0, abs=0.01)
    # identical channels add 3 dB in BS.1770 (each channel counts)
    assert stereo.loudness_lufs is not None and mono.loudness_lufs is not None
    assert stereo.loudness_lufs - mono.loudness_lufs == pytest.approx(3.01, abs=0.05)


def test_one_second_file_gives_finite_descriptors() -> None:
    found = analyze(sine(440.0, -12.0, seconds=1.0, sr=44_100), 44_100)
    assert found.duration_s == 1.0 and not found.silent
    assert found.tempo_bpm is None  # one second cannot show two beats at 40 BPM
    assert found.loudness_lufs is not None and np.all(np.isfinite(found.vector()))


def test_very_short_audio_is_handled() -> None:
    found = analyze(np.full(100, 0.1, np.float32), 8_000)
    assert found.loudness_lufs is None and np.all(np.isfinite(found.vector()))


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(InvalidInput):
        analyze(np.zeros((0,), np.float32), 44_100)
    with pytest.raises(InvalidInput):
        analyze(np.zeros((10, 2, 2), np.float32), 44_100)
    with pytest.raises(InvalidInput):
        analyze(np.zeros(10, np.float32), 0)


def test_stored_form_round_trips() -> None:
    found = analyze(progression(2, "minor", repeats=1), 22_050)
    again = Descriptors.from_bytes(found.to_bytes())
    assert again == found
