"""The demo synthesizer makes loud-enough, unclipped, varied, music-like audio."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf  # type: ignore[import-untyped,unused-ignore]

from consentune.demo import STYLES, SongSpec, encode, synthesize
from consentune.errors import InvalidInput

SR = 22050  # tests stay fast; the synthesizer works at any rate in 8-192 kHz


def _song(seed: int = 1, style: str = "pop", seconds: float = 6.0) -> np.ndarray:
    return synthesize(SongSpec(seed=seed, duration_s=seconds, sample_rate=SR, style=style))


def _rms_dbfs(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64)))))


@pytest.mark.parametrize("style", STYLES)
def test_shape_level_and_no_clipping(style: str) -> None:
    audio = _song(style=style)
    assert audio.dtype == np.float32 and audio.shape == (6 * SR, 2)
    assert np.all(np.isfinite(audio))
    assert np.max(np.abs(audio)) < 0.95
    assert _rms_dbfs(audio) == pytest.approx(-14.0, abs=1.0)
    assert not np.allclose(audio[:, 0], audio[:, 1])  # panned, not dual mono


def test_same_seed_same_song_other_seed_other_song() -> None:
    first = _song(seed=3)
    np.testing.assert_array_equal(first, _song(seed=3))
    other = _song(seed=4)
    assert abs(np.corrcoef(first[:, 0], other[:, 0])[0, 1]) < 0.5


@pytest.mark.parametrize("style", STYLES)
def test_has_rhythmic_onsets(style: str) -> None:
    mono = _song(style=style).mean(axis=1)
    hop = SR // 50  # 20 ms frames
    energy = np.square(mono[: mono.size // hop * hop].reshape(-1, hop)).mean(axis=1)
    rises = np.diff(10 * np.log10(energy + 1e-12)) > 3.0  # dB jump between frames
    assert rises.sum() >= 3  # even sparse ambient has a pulse every couple of seconds
    assert np.std(energy) / np.mean(energy) > 0.3


@pytest.mark.parametrize("style", STYLES)
def test_spectrum_has_many_peaks(style: str) -> None:
    mono = _song(style=style).mean(axis=1)
    frames = mono[: mono.size // 4096 * 4096].reshape(-1, 4096) * np.hanning(4096)
    spectrum = 20 * np.log10(np.abs(np.fft.rfft(frames, axis=1)).mean(axis=0) + 1e-12)
    local_peak = (spectrum[1:-1] > spectrum[:-2]) & (spectrum[1:-1] > spectrum[2:])
    strong = spectrum[1:-1] > spectrum.max() - 40
    assert np.count_nonzero(local_peak & strong) >= 20


def test_styles_differ_in_brightness() -> None:
    def centroid(x: np.ndarray) -> float:
        magnitude = np.abs(np.fft.rfft(x.mean(axis=1)))
        return float((magnitude * np.fft.rfftfreq(x.shape[0], 1 / SR)).sum() / magnitude.sum())

    centroids = {style: centroid(_song(style=style)) for style in STYLES}
    assert centroids["lofi"] < centroids["techno"]
    assert len({round(c, -1) for c in centroids.values()}) == len(STYLES)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg-vorbis", "opus", "mp3"])
def test_encode_round_trips_through_libsndfile(fmt: str) -> None:
    data = encode(_song(seconds=2.0), SR, format=fmt)
    with sf.SoundFile(io.BytesIO(data)) as decoded:
        assert decoded.channels == 2
        assert decoded.samplerate == (48000 if fmt == "opus" else SR)
        assert decoded.frames / decoded.samplerate == pytest.approx(2.0, abs=0.06)


def test_bad_specs_are_rejected_with_hints() -> None:
    with pytest.raises(InvalidInput, match="unknown style 'polka'"):
        SongSpec(seed=1, style="polka")
    with pytest.raises(InvalidInput, match="duration_s=0"):
        SongSpec(seed=1, duration_s=0)
    with pytest.raises(InvalidInput, match="cannot encode format 'aiff'"):
        encode(np.zeros((10, 2), np.float32), SR, format="aiff")
