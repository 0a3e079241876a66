"""probe_and_validate and decode on real encoded audio, good and damaged."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import soundfile as sf  # type: ignore[import-untyped,unused-ignore]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentune.demo import SongSpec, encode, synthesize
from consentune.errors import AudioRejected
from consentune.gate.decode import ACCEPTED_FORMATS, AudioLimits, decode, probe_and_validate, validate_and_decode

SR = 44100
SECONDS = 3.0


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    return synthesize(SongSpec(seed=7, duration_s=SECONDS, sample_rate=SR))


@pytest.fixture(scope="module")
def encoded(song: np.ndarray) -> dict[str, bytes]:
    return {fmt: encode(song, SR, format=fmt) for fmt in ACCEPTED_FORMATS}


def _wav(samples: np.ndarray, sr: int = SR, *, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sr, format=fmt, subtype=subtype)
    return buffer.getvalue()


def _reason(data: bytes, limits: AudioLimits | None = None) -> str:
    with pytest.raises(AudioRejected) as caught:
        probe_and_validate(data, limits=limits or AudioLimits())
    return caught.value.reason


@pytest.mark.parametrize("fmt", ACCEPTED_FORMATS)
def test_accepts_every_format(encoded: dict[str, bytes], fmt: str) -> None:
    info = probe_and_validate(encoded[fmt])
    assert info.format == fmt
    assert info.sample_rate == (48000 if fmt == "opus" else SR)
    assert info.channels == 2
    assert info.duration_s == pytest.approx(SECONDS, abs=0.06)
    assert info.frames == pytest.approx(SECONDS * info.sample_rate, rel=0.02)
    assert -20 < info.rms_dbfs < -10
    assert info.rms_dbfs < info.peak_dbfs <= 0.5


def test_bad_inputs_have_stable_reasons() -> None:
    rng = np.random.default_rng(0)
    assert _reason(b"") == "empty"
    assert _reason(b"just some notes about a song\n" * 50) == "not_audio"
    assert _reason(b"\x89PNG\r\n\x1a\n" + bytes(13) + rng.bytes(500)) == "not_audio"
    assert _reason(rng.bytes(4096)) == "not_audio"


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg-vorbis", "opus", "mp3"])
def test_truncated_upload_is_corrupt(encoded: dict[str, bytes], fmt: str) -> None:
    data = encoded[fmt]
    assert _reason(data[: len(data) // 2]) == "corrupt"
    assert _reason(data[: len(data) - 7]) == "corrupt"


def test_flipped_byte_inside_ogg_page_is_corrupt(encoded: dict[str, bytes]) -> None:
    data = bytearray(encoded["ogg-vorbis"])
    data[len(data) // 2] ^= 0x40
    assert _reason(bytes(data)) == "corrupt"


def test_header_claiming_more_frames_than_present_is_corrupt(encoded: dict[str, bytes]) -> None:
    data = encoded["flac"]
    cut = data[: len(data) * 3 // 4]
    with pytest.raises(AudioRejected, match="damaged or truncated") as caught:
        probe_and_validate(cut, filename="take1.flac")
    assert caught.value.reason == "corrupt"
    assert "'take1.flac'" in caught.value.message


def _without_info_frame(mp3: bytes) -> bytes:
    """Drop LAME's first frame, which holds the Xing/Info length header (MPEG-1, 44.1 kHz)."""
    kbps = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)[mp3[2] >> 4]
    return mp3[144 * kbps * 1000 // 44100 + ((mp3[2] >> 1) & 1) :]


def test_mp3_without_length_header(encoded: dict[str, bytes]) -> None:
    bare = _without_info_frame(encoded["mp3"])
    assert b"Info" not in bare[:2048] and b"Xing" not in bare[:2048]
    assert _reason(bare[:-5]) == "corrupt"  # last frame cut short
    # libsndfile would decode only the length it guesses for this VBR stream
    assert _reason(bare) == "unsupported_format"


def test_mp3_tags_are_not_mistaken_for_damage(encoded: dict[str, bytes]) -> None:
    id3v2 = b"ID3\x04\x00\x00\x00\x00\x01\x00" + bytes(128)
    id3v1 = b"TAG" + bytes(125)
    info = probe_and_validate(id3v2 + encoded["mp3"] + id3v1)
    assert info.format == "mp3" and info.frames == SR * 3


def test_silence_and_faint_noise_are_silent() -> None:
    assert _reason(_wav(np.zeros((SR * 2, 2), np.float32))) == "silent"
    faint = np.random.default_rng(1).uniform(-1e-4, 1e-4, (SR * 2, 2))  # peak < -80 dBFS
    assert _reason(_wav(faint, subtype="FLOAT")) == "silent"


def test_duration_and_size_limits(song: np.ndarray, encoded: dict[str, bytes]) -> None:
    with pytest.raises(AudioRejected, match=r"3\.0 s, more than the limit of 1 s") as caught:
        probe_and_validate(encoded["wav"], limits=AudioLimits(max_duration_s=1.0))
    assert caught.value.reason == "too_long"
    assert _reason(_wav(song[: SR // 5])) == "too_short"
    assert _reason(encoded["wav"], AudioLimits(max_bytes=1000)) == "too_large"


def test_other_libsndfile_formats_are_unsupported(song: np.ndarray) -> None:
    with pytest.raises(AudioRejected) as caught:
        probe_and_validate(_wav(song, fmt="AIFF"))
    assert caught.value.reason == "unsupported_format"
    assert "flac" in caught.value.message and caught.value.hint
    assert _reason(_wav(song, fmt="AU")) == "unsupported_format"


def test_decode_shapes_and_resampling(encoded: dict[str, bytes]) -> None:
    stereo, sr = decode(encoded["flac"])
    assert sr == SR and stereo.dtype == np.float32 and stereo.shape == (SR * 3, 2)
    mono, sr = decode(encoded["flac"], mono=True, target_sr=16000)
    assert sr == 16000 and mono.dtype == np.float32 and mono.shape == (16000 * 3,)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_only_ever_raise_audio_rejected(data: bytes) -> None:
    with contextlib.suppress(AudioRejected):
        probe_and_validate(data)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(ACCEPTED_FORMATS), cut=st.floats(0.0, 1.0), flip=st.integers(0, 255))
def test_damaged_real_files_only_ever_raise_audio_rejected(
    encoded: dict[str, bytes], fmt: str, cut: float, flip: int
) -> None:
    data = bytearray(encoded[fmt][: max(1, int(len(encoded[fmt]) * cut))])
    data[int((len(data) - 1) * cut / 2)] ^= flip
    with contextlib.suppress(AudioRejected):
        probe_and_validate(bytes(data))


def _flac_streaminfo_total(data: bytes, total: int) -> bytes:
    """The FLAC with STREAMINFO's 36-bit total sample count replaced (bytes 18..26 hold rate|channels|bits|total)."""
    assert data[:4] == b"fLaC"
    packed = int.from_bytes(data[18:26], "big")
    packed = (packed & ~(2**36 - 1)) | total
    return data[:18] + packed.to_bytes(8, "big") + data[26:]


def test_tiny_file_declaring_a_huge_length_is_refused_before_decoding(encoded: dict[str, bytes]) -> None:
    huge = _flac_streaminfo_total(encoded["flac"], 2**36 - 1)  # 43 hours at 44.1 kHz, in 50 KB
    with pytest.raises(AudioRejected, match=r"lasts 1558264\.8 s, more than the limit of 1800 s") as caught:
        probe_and_validate(huge)
    assert caught.value.reason == "too_long"
    eight_channels = _flac_streaminfo_total(_wav(np.zeros((SR, 8), np.float32), fmt="FLAC"), 1000 * SR)
    with pytest.raises(AudioRejected, match="declares 44100000 frames of 8-channel audio") as caught:
        probe_and_validate(eight_channels)  # 1000 s is within the duration limit, not within the budget
    assert caught.value.reason == "too_long" and "decoding budget" in caught.value.message
    with pytest.raises(AudioRejected) as caught:
        decode(huge)
    assert caught.value.reason == "too_long"


def test_budget_counts_channels_and_rate(song: np.ndarray) -> None:
    """3 s of stereo is 6 s of mono: a budget of 4 s of mono refuses it before decoding."""
    limits = AudioLimits(max_duration_s=4.0, budget_rate_hz=SR, budget_channels=1)
    assert limits.max_samples == 4 * SR
    with pytest.raises(AudioRejected, match="decoding budget of 176400 samples") as caught:
        probe_and_validate(_wav(song), limits=limits)
    assert caught.value.reason == "too_long" and "2.0 s at this rate" in caught.value.message
    assert probe_and_validate(_wav(song[:, :1]), limits=limits).channels == 1


def test_stream_decoding_matches_whole_file_resampling(encoded: dict[str, bytes]) -> None:
    from scipy.signal import resample_poly

    stereo, _ = decode(encoded["wav"])
    for target in (8000, 16000, 48000):
        mono, sr = decode(encoded["wav"], mono=True, target_sr=target)
        step = np.gcd(SR, target)
        whole = resample_poly(stereo.mean(axis=1), target // step, SR // step)
        assert sr == target and mono.shape == whole.shape
        np.testing.assert_allclose(mono, whole, atol=1e-5)


@pytest.mark.parametrize("fmt", ACCEPTED_FORMATS)
@pytest.mark.parametrize(("mono", "target"), [(True, 8000), (False, None), (True, None), (False, 16000)])
def test_validating_and_decoding_in_one_pass_gives_what_each_gives_alone(
    encoded: dict[str, bytes], fmt: str, mono: bool, target: int | None
) -> None:
    info, samples, sr = validate_and_decode(encoded[fmt], mono=mono, target_sr=target)
    alone, alone_sr = decode(encoded[fmt], mono=mono, target_sr=target)
    assert info == probe_and_validate(encoded[fmt])
    assert sr == alone_sr and samples.dtype == np.float32
    np.testing.assert_array_equal(samples, alone)


@pytest.mark.parametrize("channels", [1, 2, 3, 6])
def test_mono_is_the_float32_channel_mean_bit_for_bit(song: np.ndarray, channels: int) -> None:
    wide = np.column_stack([song[:, i % 2] * (0.5 + 0.1 * i) for i in range(channels)]).astype(np.float32)
    data = _wav(wide, subtype="FLOAT")
    mono, _ = decode(data, mono=True)
    full, _ = decode(data)
    np.testing.assert_array_equal(mono, full.mean(axis=1, dtype=np.float32))


def test_one_pass_decoding_refuses_what_validation_refuses(song: np.ndarray, encoded: dict[str, bytes]) -> None:
    with pytest.raises(AudioRejected) as caught:
        validate_and_decode(encoded["wav"], mono=True, target_sr=8000, limits=AudioLimits(max_duration_s=1.0))
    assert caught.value.reason == "too_long"
    with pytest.raises(AudioRejected) as caught:
        validate_and_decode(encoded["flac"][: len(encoded["flac"]) // 2], mono=True, target_sr=8000)
    assert caught.value.reason == "corrupt"


def _constant_flac(seconds: int, sr: int = 48000, channels: int = 2) -> bytes:
    """A long constant tone: FLAC squeezes it to a few KB that decode to hundreds of MB of float32."""
    buffer = io.BytesIO()
    block = np.full((sr, channels), 8192, np.int16)
    with sf.SoundFile(buffer, "w", sr, channels, format="FLAC", subtype="PCM_16") as out:
        for _ in range(seconds):
            out.write(block)
    return buffer.getvalue()


def test_decoding_a_compression_bomb_stays_within_its_output_budget() -> None:
    import tracemalloc

    import scipy.signal  # noqa: F401  (imported before tracing: the import itself allocates ~40 MB once)

    bomb = _constant_flac(300)  # 300 s of 48 kHz stereo: 115 MB of float32 at the native rate
    assert len(bomb) < 200_000
    probe_and_validate(bomb)
    tracemalloc.start()
    try:
        samples, sr = decode(bomb, mono=True, target_sr=8000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    output = samples.nbytes
    assert sr == 8000 and samples.shape == (300 * 8000,) and output == 9_600_000
    native = 300 * 48000 * 2 * 4
    assert peak < output * 1.1 + 2**20, f"peak {peak} bytes for {output} bytes of output"
    assert peak < native / 8
