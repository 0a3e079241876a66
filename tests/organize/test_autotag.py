"""The numpy musicnn: weights load offline, the front end never overflows, every patch is tagged."""

from __future__ import annotations

import numpy as np
import pytest

from consentune.organize.autotag import N_MELS, PATCH_FRAMES, SR, Musicnn, _slaney_mel_filters, log_mel, patches


@pytest.mark.parametrize(("name", "first_label"), [("mtt", "guitar"), ("msd", "rock")])
def test_packaged_models_load(name: str, first_label: str) -> None:
    model = Musicnn.load(name)
    assert len(model.labels) == 50 and model.labels[0] == first_label


def test_mel_filters_are_area_normalised() -> None:
    filters = _slaney_mel_filters()
    assert filters.shape == (N_MELS, 257) and np.all(filters >= 0)
    bin_hz = SR / 512
    areas = filters.sum(axis=1) * bin_hz
    assert np.median(areas) == pytest.approx(1.0, rel=0.1)  # Slaney: each triangle has unit area in Hz


def test_loud_audio_stays_finite_where_float16_overflows() -> None:
    t = np.arange(SR * 4) / SR
    square = np.sign(np.sin(2 * np.pi * 55.0 * t)).astype(np.float32)  # full-scale bass square wave
    mel = log_mel(square)
    assert np.all(np.isfinite(mel))
    mel_power = (10.0 ** mel.astype(np.float64) - 1.0) / 10_000.0  # undo the log
    with np.errstate(over="ignore"):  # upstream casts, then scales in float16
        upstream = np.float16(10_000) * mel_power.astype(np.float16)
    assert np.isinf(upstream).any()


def test_patches_cover_the_whole_track_and_pad_short_input() -> None:
    mel = np.arange(PATCH_FRAMES * 10 * N_MELS, dtype=np.float32).reshape(-1, N_MELS)
    all_patches = patches(mel)
    assert all_patches.shape == (10, PATCH_FRAMES, N_MELS) and len({float(p[0, 0]) for p in all_patches}) == 10
    spread = patches(mel, max_patches=4)
    assert [int(p[0, 0]) // (PATCH_FRAMES * N_MELS) for p in spread] == [0, 3, 6, 9]
    short = patches(mel[:50])
    assert short.shape == (1, PATCH_FRAMES, N_MELS) and np.array_equal(short[0, 50:100], mel[:50])


def test_each_patch_gets_its_own_tags() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(SR * 3) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440.0 * t) * np.exp(-((t % 0.5) * 4))).astype(np.float32)
    noise = (0.3 * rng.standard_normal(SR * 3)).astype(np.float32)
    found = Musicnn.load("mtt").predict(np.concatenate([tone, noise]), SR, max_patches=None)
    assert found.taggram.shape == (2, 50) and found.embedding.shape == (200,)
    assert np.all((found.taggram >= 0) & (found.taggram <= 1))
    assert np.abs(found.taggram[0] - found.taggram[1]).max() > 0.05  # not the first patch repeated
    with pytest.raises(ValueError):
        Musicnn.load("mtt").predict(tone, 44_100)
