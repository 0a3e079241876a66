"""Probe, validate and decode uploaded audio: the only module that decodes audio.

Everything works on in-memory bytes; the caller stores originals elsewhere.
Accepted formats are WAV, FLAC, Ogg Vorbis, Ogg Opus and MP3 (Layer III),
identified from content, never from a file name.

Truncation and corruption are found by four independent checks:

- WAV: the ``data`` chunk must not declare more bytes than the upload holds
  (libsndfile silently shortens such files).
- FLAC: libFLAC reports frame CRC and sync errors while decoding, and the
  frames decoded must equal STREAMINFO ``total_samples``.
- Ogg (Vorbis, Opus): every page must be complete and pass its CRC, nothing
  may follow the last page, and every logical stream must end with an
  end-of-stream page (libogg silently skips damaged pages).
- MP3: the last frame header must not promise more bytes than remain, and
  when a Xing/Info header states the length, decoding must reach it.
  libsndfile guesses the length of a VBR MP3 without a Xing/Info header and
  stops decoding there, so decoding must also reach the length counted from
  the frame headers; if not, the file is rejected as ``unsupported_format``.

Not detectable: an MP3 without a Xing/Info header cut exactly on a frame
boundary (MPEG audio has no length field), or one cut that drops only the
final frame of a Xing/Info file (within the one-frame tolerance); damage
inside an MP3 frame, which has no mandatory checksum. A FLAC without
``total_samples`` (written to a pipe) is rejected as ``unsupported_format``
because libsndfile cannot read it reliably.
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import soundfile as sf  # type: ignore[import-untyped,unused-ignore]

from consentune.errors import AudioRejected

ACCEPTED_FORMATS: tuple[str, ...] = ("wav", "flac", "ogg-vorbis", "opus", "mp3")

_FORMAT_NAMES: dict[tuple[str, str | None], str] = {
    ("WAV", None): "wav",
    ("WAVEX", None): "wav",
    ("FLAC", None): "flac",
    ("OGG", "VORBIS"): "ogg-vorbis",
    ("OGG", "OPUS"): "opus",
    ("MP3", "MPEG_LAYER_III"): "mp3",
}
_ACCEPTED_HINT = "upload WAV, FLAC, Ogg Vorbis, Opus or MP3 audio"
_BLOCK_SAMPLES = 2**17  # per block, across channels: bounds memory whatever the channel count
_FLOOR_DBFS = -200.0  # reported for digital silence instead of -inf, keeps values JSON-safe
_SAMPLE_RATE_RANGE = (1000, 768_000)  # Hz
_MAX_CHANNELS = 64
_UNKNOWN_LENGTH = 2**63 - 1  # libsndfile's frame count when a header does not state one
_MP3_FRAME_TOLERANCE = 1152  # samples: one MPEG-1 Layer III frame
_MP3_GAPLESS_SLACK = 4 * 1152  # samples: Xing frame + encoder delay + padding, generously


@dataclass(frozen=True)
class AudioLimits:
    """What an upload must satisfy; sizes in bytes, durations in seconds, levels in dBFS.

    Decoding has a budget of :attr:`max_samples` samples (frames × channels):
    ``max_duration_s`` of audio at ``budget_rate_hz`` with ``budget_channels``
    channels, 30 min of 96 kHz stereo by default. A file whose header declares
    more is refused before anything is decoded, and decoding stops once it
    passes the budget, so a few kilobytes of cleverly compressed audio cannot
    cost gigabytes of memory or minutes of CPU.
    """

    max_bytes: int = 200 * 2**20
    max_duration_s: float = 1800.0
    min_duration_s: float = 0.5
    silence_dbfs: float = -60.0
    budget_rate_hz: int = 96_000
    budget_channels: int = 2

    @property
    def max_samples(self) -> int:
        """Samples across all channels that one file may decode to."""
        return int(self.max_duration_s * self.budget_rate_hz * self.budget_channels)


@dataclass(frozen=True)
class AudioInfo:
    """Facts measured by decoding the whole upload.

    ``format`` is one of :data:`ACCEPTED_FORMATS`; ``subtype`` is libsndfile's
    encoding name (e.g. ``PCM_16``); ``sample_rate`` in Hz; ``frames`` counts
    samples per channel actually decoded; ``duration_s`` in seconds; levels in
    dBFS over all channels (floored at -200 for digital silence).
    """

    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int
    duration_s: float
    peak_dbfs: float
    rms_dbfs: float


@dataclass
class _Levels:
    """Running totals while scanning; frames per channel, sums over all samples."""

    frames: int = 0
    peak: float = 0.0
    sum_squares: float = 0.0
    samples: int = 0

    def add(self, block: np.ndarray) -> None:
        self.frames += block.shape[0]
        if block.size:
            self.peak = max(self.peak, float(np.max(np.abs(block))))
            self.sum_squares += float(np.sum(np.square(block, dtype=np.float64)))
            self.samples += block.size


def probe_and_validate(data: bytes, *, limits: AudioLimits = AudioLimits(), filename: str | None = None) -> AudioInfo:
    """Decode the whole upload block-wise to prove it is intact, and measure it.

    Raises :class:`~consentune.errors.AudioRejected` with ``reason`` one of
    ``empty``, ``too_large``, ``not_audio``, ``unsupported_format``,
    ``corrupt``, ``too_long``, ``too_short`` or ``silent``. ``filename`` only
    labels messages. Memory stays bounded (about 1 MB of samples per block)
    and decoding stops once the duration limit is passed.
    """
    return _validate(data, limits, filename, None)[0]


def validate_and_decode(
    data: bytes,
    *,
    mono: bool = False,
    target_sr: int | None = None,
    limits: AudioLimits = AudioLimits(),
    filename: str | None = None,
) -> tuple[AudioInfo, np.ndarray, int]:
    """:func:`probe_and_validate` and :func:`decode` in one pass, so an upload is decoded once, not twice.

    Returns ``(info, samples, sample_rate)``; the samples equal what
    :func:`decode` returns for the same arguments.
    """
    info, collector = _validate(data, limits, filename, (mono, target_sr))
    assert collector is not None
    samples, rate = collector.result()
    return info, samples, rate


def _validate(
    data: bytes, limits: AudioLimits, filename: str | None, keep: tuple[bool, int | None] | None
) -> tuple[AudioInfo, _Collector | None]:
    label = repr(filename) if filename else "upload"
    _check_size(data, limits, label)
    with _open(data, label) as sound:
        fmt = _format_name(sound, label)
        _check_stream(sound, fmt, label)
        _check_declared(sound, limits, label)
        _check_container(data, fmt, label)
        cap = _frame_cap(sound, limits)
        collector = _Collector(sound, cap, mono=keep[0], target_sr=keep[1]) if keep else None
        levels = _scan(sound, cap, label, collector)
        _check_cap(sound, levels.frames, cap, limits, label)
        _check_length(sound, fmt, levels.frames, data, label)
        info = _info(sound, fmt, levels)
    _check_limits(info, limits, label)
    return info, collector


def decode(
    data: bytes, *, mono: bool = False, target_sr: int | None = None, limits: AudioLimits = AudioLimits()
) -> tuple[np.ndarray, int]:
    """Decode validated audio to float32 in [-1, 1] full scale, block by block.

    Returns ``(samples, sample_rate)`` with samples shaped ``(frames, channels)``,
    or ``(frames,)`` when ``mono`` (channel mean). ``target_sr`` (Hz) resamples
    with a polyphase filter. Each block is mixed down and resampled as it is
    decoded, so memory is the returned array plus about one block, never the
    file at its native rate and channel count. Call :func:`probe_and_validate`
    first (or use :func:`validate_and_decode`); this raises ``AudioRejected``
    (``not_audio``, ``corrupt`` or ``too_long`` past ``limits.max_samples``)
    only as a safety net.
    """
    with _open(data, "audio") as sound:
        _check_declared(sound, limits, "audio")
        cap = _frame_cap(sound, limits)
        collector = _Collector(sound, cap, mono=mono, target_sr=target_sr)
        decoded = 0
        for block in _blocks(sound, cap, "audio"):
            decoded += len(block)
            _check_cap(sound, decoded, cap, limits, "audio")
            collector.add(block)
    return collector.result()


class _Collector:
    """Mixes down and resamples decoded blocks as they arrive, into one array reserved up front."""

    def __init__(self, sound: sf.SoundFile, cap: int, *, mono: bool, target_sr: int | None) -> None:
        self._rate, channels, declared = int(sound.samplerate), int(sound.channels), int(sound.frames)
        self._mono = mono
        self._resampler = (
            _Resampler(self._rate, target_sr) if target_sr is not None and target_sr != self._rate else None
        )
        self._out = _Output(_expected_frames(declared, self._resampler, cap), 1 if mono else channels)

    def add(self, block: np.ndarray) -> None:
        part = _mix_down(block) if self._mono else block
        self._out.add(self._resampler.push(part) if self._resampler else part)

    def result(self) -> tuple[np.ndarray, int]:
        if self._resampler:
            self._out.add(self._resampler.flush())
        samples = self._out.result()
        return (samples[:, 0] if self._mono else samples), (
            self._resampler.target_sr if self._resampler else self._rate
        )


def _mix_down(block: np.ndarray) -> np.ndarray:
    """The channel mean as a (frames, 1) block; stereo by hand, 30x faster than a strided ``mean``, same bits."""
    if block.shape[1] == 2:
        mixed = block[:, 0] + block[:, 1]
        mixed *= np.float32(0.5)
        out: np.ndarray = mixed[:, None]
        return out
    mean: np.ndarray = block.mean(axis=1, keepdims=True, dtype=np.float32)
    return mean


def _expected_frames(declared: int, resampler: _Resampler | None, cap: int) -> int:
    """Output frames to reserve: the declared length (within the budget) at the output rate."""
    frames = min(declared, cap) if declared < _UNKNOWN_LENGTH else 0
    return resampler.output_frames(frames) if resampler else frames


class _Output:
    """Decoded frames gathered into one array reserved up front from the declared length.

    Headers of compressed formats may be slightly off; past the reservation
    the array grows by a quarter at a time.
    """

    def __init__(self, frames: int, channels: int) -> None:
        self._array = np.empty((frames, channels), np.float32)
        self._used = 0

    def add(self, block: np.ndarray) -> None:
        end = self._used + len(block)
        if end > len(self._array):
            grown = np.empty((max(end, len(self._array) * 5 // 4 + 4096), self._array.shape[1]), np.float32)
            grown[: self._used] = self._array[: self._used]
            self._array = grown
        self._array[self._used : end] = block
        self._used = end

    def result(self) -> np.ndarray:
        return self._array[: self._used]


class _Resampler:
    """Polyphase resampling fed block by block along axis 0.

    Gives the samples ``scipy.signal.resample_poly`` (Kaiser window, zero
    padding) gives on the whole signal, keeping only the filter's history
    between blocks. A ratio needing more than ``_MAX_RESAMPLE_FACTOR`` phases
    (an odd source rate) is rounded to the nearest one that does not: the
    output rate then differs from ``target_sr`` by parts per million, and the
    filter stays small.
    """

    def __init__(self, source_sr: int, target_sr: int) -> None:
        if target_sr <= 0:
            raise ValueError(f"target_sr must be a positive rate in Hz, got {target_sr}")
        from scipy.signal import firwin

        self.target_sr = target_sr
        self._up, self._down = _ratio(source_sr, target_sr)
        self._buffer: np.ndarray | None = None
        self._channels = 1
        if self._up == self._down:  # the rounded ratio is 1: samples pass through
            return
        half_len = 10 * max(self._up, self._down)
        taps = firwin(2 * half_len + 1, 1.0 / max(self._up, self._down), window=("kaiser", 5.0)) * self._up
        pre_pad = self._down - half_len % self._down
        self._h = np.concatenate([np.zeros(pre_pad), taps]).astype(np.float32)
        self._skip = (half_len + pre_pad) // self._down  # outputs before the first centred sample
        self._start = 0  # input index of the buffer's first frame, a multiple of ``down``
        self._inputs = 0
        self._next = self._skip  # next output to emit, in upfirdn's numbering over the whole signal

    def output_frames(self, input_frames: int) -> int:
        return -(-input_frames * self._up // self._down)

    def push(self, block: np.ndarray) -> np.ndarray:
        """Outputs that ``block`` completes; later ones wait for the next block or :meth:`flush`."""
        self._channels = block.shape[1]
        if self._up == self._down:
            return block
        self._buffer = block.copy() if self._buffer is None else np.concatenate([self._buffer, block])
        self._inputs += len(block)
        return self._emit((self._inputs * self._up - 1) // self._down + 1, tail=0)

    def flush(self) -> np.ndarray:
        """The last outputs, as if the signal were followed by zeros."""
        if self._up == self._down:
            return np.zeros((0, self._channels), np.float32)
        return self._emit(self._skip + self.output_frames(self._inputs), tail=len(self._h) // self._up + 2)

    def _emit(self, stop: int, *, tail: int) -> np.ndarray:
        from scipy.signal import upfirdn

        if self._buffer is None or stop <= self._next:
            return np.zeros((0, self._channels), np.float32)
        signal = self._buffer
        if tail:
            signal = np.concatenate([signal, np.zeros((tail, signal.shape[1]), np.float32)])
        offset = self._start * self._up // self._down
        filtered = upfirdn(self._h, signal, self._up, self._down, axis=0)
        out = np.asarray(filtered[self._next - offset : stop - offset], dtype=np.float32)
        self._next = stop
        self._forget()
        return out

    def _forget(self) -> None:
        """Drop input no later output needs, keeping ``start`` a multiple of ``down``."""
        assert self._buffer is not None
        needed = max(0, -(-(self._next * self._down - len(self._h) + 1) // self._up))
        start = needed // self._down * self._down
        if start > self._start:
            self._buffer = self._buffer[start - self._start :].copy()
            self._start = start


_MAX_RESAMPLE_FACTOR = 2048


def _ratio(source_sr: int, target_sr: int) -> tuple[int, int]:
    """(up, down) in lowest terms, each at most ``_MAX_RESAMPLE_FACTOR``."""
    ratio = Fraction(target_sr, source_sr)
    if max(ratio.numerator, ratio.denominator) > _MAX_RESAMPLE_FACTOR:
        if ratio < 1:
            ratio = ratio.limit_denominator(_MAX_RESAMPLE_FACTOR)
        else:
            ratio = 1 / (1 / ratio).limit_denominator(_MAX_RESAMPLE_FACTOR)
    return ratio.numerator, ratio.denominator


def _reject(reason: str, message: str, hint: str) -> AudioRejected:
    return AudioRejected(message, reason=reason, hint=hint)


def _check_size(data: bytes, limits: AudioLimits, label: str) -> None:
    if not data:
        raise _reject("empty", f"{label} is empty (0 bytes)", "choose a non-empty audio file")
    if len(data) > limits.max_bytes:
        raise _reject(
            "too_large",
            f"{label} is {len(data)} bytes; the limit is {limits.max_bytes} bytes",
            "upload a shorter or more compressed file (e.g. FLAC or Opus)",
        )


def _open(data: bytes, label: str) -> sf.SoundFile:
    try:
        return sf.SoundFile(io.BytesIO(data))
    except (RuntimeError, ValueError, TypeError) as exc:
        raise _reject(
            "not_audio",
            f"{label} is not a recognised audio file ({len(data)} bytes)",
            _ACCEPTED_HINT,
        ) from exc


def _format_name(sound: sf.SoundFile, label: str) -> str:
    major, subtype = str(sound.format), str(sound.subtype)
    name = _FORMAT_NAMES.get((major, None)) or _FORMAT_NAMES.get((major, subtype))
    if name is None:
        raise _reject(
            "unsupported_format",
            f"{label} is {major}/{subtype} audio; accepted: {', '.join(ACCEPTED_FORMATS)}",
            _ACCEPTED_HINT,
        )
    return name


def _check_stream(sound: sf.SoundFile, fmt: str, label: str) -> None:
    """Reject parameters we cannot process sensibly, before decoding anything."""
    low, high = _SAMPLE_RATE_RANGE
    if not low <= sound.samplerate <= high:
        raise _reject(
            "unsupported_format",
            f"{label} has sample rate {sound.samplerate} Hz; accepted: {low}..{high} Hz",
            "resample to 44100 or 48000 Hz",
        )
    if not 1 <= sound.channels <= _MAX_CHANNELS:
        raise _reject(
            "unsupported_format",
            f"{label} has {sound.channels} channels; accepted: 1..{_MAX_CHANNELS}",
            "mix down to stereo",
        )
    if fmt == "flac" and sound.frames == _UNKNOWN_LENGTH:
        raise _reject(
            "unsupported_format",
            f"{label} is FLAC without a total sample count in STREAMINFO",
            "re-encode to a regular file (not a pipe), e.g. `flac -f in.wav`",
        )


def _check_declared(sound: sf.SoundFile, limits: AudioLimits, label: str) -> None:
    """Refuse, before decoding, a header that declares more than the duration limit or the budget."""
    declared = int(sound.frames)
    if declared >= _UNKNOWN_LENGTH:
        return  # no length stated: decoding stops at the budget instead
    if declared > int(limits.max_duration_s * sound.samplerate):
        raise _too_long(sound, limits, label)
    if declared * sound.channels > limits.max_samples:
        raise _budget_exceeded(sound, f"declares {declared} frames", limits, label)


def _budget_exceeded(sound: sf.SoundFile, what: str, limits: AudioLimits, label: str) -> AudioRejected:
    budget_s = limits.max_samples / (sound.samplerate * sound.channels)
    return _reject(
        "too_long",
        f"{label} {what} of {sound.channels}-channel audio at {sound.samplerate} Hz, more than the decoding "
        f"budget of {limits.max_samples} samples ({budget_s:.1f} s at this rate and channel count)",
        f"trim the audio to at most {min(budget_s, limits.max_duration_s):.1f} seconds, "
        "or lower its sample rate or channel count",
    )


def _frame_cap(sound: sf.SoundFile, limits: AudioLimits) -> int:
    """Frames decoding may produce: within the duration limit and the sample budget."""
    return min(int(limits.max_duration_s * sound.samplerate), limits.max_samples // int(sound.channels))


def _check_container(data: bytes, fmt: str, label: str) -> None:
    problem = None
    if fmt == "wav":
        problem = _wav_problem(data)
    elif fmt in ("ogg-vorbis", "opus"):
        problem = _ogg_problem(data)
    elif fmt == "mp3":
        problem = _mp3_problem(data)
    if problem:
        raise _corrupt(label, problem)


def _corrupt(label: str, problem: str) -> AudioRejected:
    return _reject(
        "corrupt",
        f"{label} is damaged or truncated: {problem}",
        "upload the complete original file again",
    )


def _blocks(sound: sf.SoundFile, cap: int | None, label: str) -> Iterator[np.ndarray]:
    """Yield float32 blocks (frames, channels) reusing one buffer; stop past ``cap`` frames."""
    buffer = np.empty((max(1, _BLOCK_SAMPLES // sound.channels), sound.channels), np.float32)
    read = 0
    while cap is None or read <= cap:
        try:
            block = sound.read(out=buffer, dtype="float32")
        except (RuntimeError, ValueError) as exc:
            raise _corrupt(label, f"decoding failed after {read} frames ({exc})") from exc
        if not len(block):
            return
        read += len(block)
        yield block


def _scan(sound: sf.SoundFile, cap: int, label: str, collector: _Collector | None) -> _Levels:
    levels = _Levels()
    for block in _blocks(sound, cap, label):
        if not np.all(np.isfinite(block)):
            raise _corrupt(label, f"non-finite samples after {levels.frames} frames")
        levels.add(block)
        if collector is not None and levels.frames <= cap:  # past the cap the upload is refused anyway
            collector.add(block)
    return levels


def _check_length(sound: sf.SoundFile, fmt: str, decoded: int, data: bytes, label: str) -> None:
    """Compare frames decoded with the length the header promised, where it is exact."""
    declared = int(sound.frames)
    if fmt == "flac":
        truncated = decoded < declared
    elif fmt == "mp3":
        short = decoded < declared - _MP3_FRAME_TOLERANCE
        truncated = short and _mp3_declares_length(data)
    else:
        return
    if truncated:
        raise _corrupt(label, f"header declares {declared} frames, decoded {decoded}")
    if fmt == "mp3":
        _check_mp3_decoded_all(data, decoded, label)


def _check_cap(sound: sf.SoundFile, decoded: int, cap: int, limits: AudioLimits, label: str) -> None:
    """Decoding stopped at the duration limit or the budget: say which."""
    if decoded <= cap:
        return
    if cap < int(limits.max_duration_s * sound.samplerate):
        raise _budget_exceeded(sound, f"decodes to more than {cap} frames", limits, label)
    raise _too_long(sound, limits, label)


def _too_long(sound: sf.SoundFile, limits: AudioLimits, label: str) -> AudioRejected:
    """The declared length if known, otherwise only that the limit was passed."""
    declared = int(sound.frames)
    length = "an unknown length" if declared >= _UNKNOWN_LENGTH else f"{declared / sound.samplerate:.1f} s"
    longest = limits.max_duration_s
    return _reject(
        "too_long",
        f"{label} lasts {length}, more than the limit of {longest:g} s",
        f"trim the audio to at most {longest:g} seconds",
    )


def _info(sound: sf.SoundFile, fmt: str, levels: _Levels) -> AudioInfo:
    mean_square = levels.sum_squares / levels.samples if levels.samples else 0.0
    return AudioInfo(
        format=fmt,
        subtype=str(sound.subtype),
        sample_rate=int(sound.samplerate),
        channels=int(sound.channels),
        frames=levels.frames,
        duration_s=levels.frames / sound.samplerate,
        peak_dbfs=_dbfs(levels.peak),
        rms_dbfs=_dbfs(math.sqrt(mean_square)),
    )


def _dbfs(amplitude: float) -> float:
    """Amplitude (1.0 = full scale) in dBFS, floored for digital silence."""
    return max(_FLOOR_DBFS, 20.0 * math.log10(amplitude)) if amplitude > 0 else _FLOOR_DBFS


def _check_limits(info: AudioInfo, limits: AudioLimits, label: str) -> None:
    if info.duration_s < limits.min_duration_s:
        raise _reject(
            "too_short",
            f"{label} lasts {info.duration_s:.3f} s; the minimum is {limits.min_duration_s:g} s",
            f"upload at least {limits.min_duration_s:g} seconds of audio",
        )
    if info.peak_dbfs < limits.silence_dbfs:
        raise _reject(
            "silent",
            f"{label} peaks at {info.peak_dbfs:.1f} dBFS, below the silence threshold of {limits.silence_dbfs:g} dBFS",
            "check the export: the file contains only silence",
        )


# --- WAV -------------------------------------------------------------------


def _wav_problem(data: bytes) -> str | None:
    """Does the ``data`` chunk declare more bytes than the upload holds?"""
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if chunk == b"data":
            missing = pos + 8 + size - len(data)
            if size in (0, 0xFFFFFFFF) or missing <= 0:  # 0/all-ones: writer left size open
                return None
            return f"data chunk declares {size} bytes but {size - missing} are present"
        pos += 8 + size + (size & 1)
    return None


# --- Ogg -------------------------------------------------------------------

_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
_OGG_BOS, _OGG_EOS = 0x02, 0x04


def _ogg_problem(data: bytes) -> str | None:
    """Walk every page: complete, CRC-valid, nothing after, every stream ended."""
    pos, open_streams = 0, set[int]()
    while pos < len(data):
        end = _ogg_page_end(data, pos)
        if end is None:
            return f"incomplete or missing Ogg page at byte {pos} of {len(data)}"
        if _ogg_crc(data, pos, end) != int.from_bytes(data[pos + 22 : pos + 26], "little"):
            return f"Ogg page at byte {pos} fails its CRC check"
        flags, serial = data[pos + 5], int.from_bytes(data[pos + 14 : pos + 18], "little")
        if flags & _OGG_BOS:
            open_streams.add(serial)
        if flags & _OGG_EOS:
            open_streams.discard(serial)
        pos = end
    return "stream ends without an end-of-stream page" if open_streams else None


def _ogg_page_end(data: bytes, pos: int) -> int | None:
    """Byte offset just past the page at ``pos``, or None if it is not a whole page."""
    if data[pos : pos + 4] != b"OggS" or pos + 27 > len(data):
        return None
    header_end = pos + 27 + data[pos + 26]
    if header_end > len(data):
        return None
    end = header_end + sum(data[pos + 27 : header_end])
    return end if end <= len(data) else None


def _ogg_crc(data: bytes, pos: int, end: int) -> int:
    """Ogg's CRC-32 (poly 0x04C11DB7, MSB-first, no reflection) via zlib's reflected CRC.

    Reversing the bits of every input byte and of the result turns one into the
    other; zlib then does the work in C instead of a Python loop.
    """
    page = data[pos : pos + 22] + bytes(4) + data[pos + 26 : end]
    reflected = zlib.crc32(page.translate(_BIT_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


# --- MP3 -------------------------------------------------------------------

_MP3_KBPS = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


class _Mp3Walk(NamedTuple):
    """Result of walking frame headers: complete frames, their samples, any overrun."""

    frames: int
    samples: int  # per channel, before encoder delay/padding is trimmed
    synced: bool  # every header up to the end parsed; otherwise no verdict
    problem: str | None


def _mp3_walk(data: bytes) -> _Mp3Walk:
    """Walk Layer III frame headers from the first frame to the trailing tags."""
    pos, end, frames, samples = _id3v2_end(data), _audio_end(data), 0, 0
    while pos + 4 <= end:
        frame = _mp3_frame(data[pos : pos + 4])
        if frame is None:
            return _Mp3Walk(frames, samples, False, None)
        if pos + frame[0] > end:
            overrun = f"last MPEG frame at byte {pos} needs {frame[0]} bytes, {end - pos} present"
            return _Mp3Walk(frames, samples, True, overrun)
        pos, frames, samples = pos + frame[0], frames + 1, samples + frame[1]
    return _Mp3Walk(frames, samples, True, None)


def _mp3_problem(data: bytes) -> str | None:
    return _mp3_walk(data).problem


def _check_mp3_decoded_all(data: bytes, decoded: int, label: str) -> None:
    """libsndfile stops early on VBR MP3 without a Xing header: it guesses the length."""
    walk = _mp3_walk(data)
    if walk.synced and decoded < walk.samples - _MP3_GAPLESS_SLACK:
        raise _reject(
            "unsupported_format",
            f"{label} is a VBR MP3 without a Xing/Info header: only {decoded} of about "
            f"{walk.samples} samples per channel can be decoded",
            "re-encode it (e.g. with LAME, which writes the header) or upload FLAC",
        )


def _mp3_frame(header: bytes) -> tuple[int, int] | None:
    """(bytes, samples) of the Layer III frame starting with this 4-byte header, or None."""
    if header[0] != 0xFF or header[1] & 0xE0 != 0xE0 or (header[1] >> 1) & 0x3 != 1:
        return None
    version, bitrate_index = (header[1] >> 3) & 0x3, header[2] >> 4
    rate_index, padding = (header[2] >> 2) & 0x3, (header[2] >> 1) & 0x1
    if version == 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None  # reserved version, free-format or invalid: no length to check
    mpeg1 = version == 3
    kbps = _MP3_KBPS[1 if mpeg1 else 2][bitrate_index]
    size = (144 if mpeg1 else 72) * kbps * 1000 // _MP3_RATES[version][rate_index] + padding
    return size, 1152 if mpeg1 else 576


def _id3v2_end(data: bytes) -> int:
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    size = 0
    for byte in data[6:10]:  # "syncsafe": 7 bits per byte
        size = (size << 7) | (byte & 0x7F)
    return 10 + size + (10 if data[5] & 0x10 else 0)


def _audio_end(data: bytes) -> int:
    """End of MPEG frames, before trailing APEv2 and ID3v1 tags."""
    end = len(data)
    if end >= 128 and data[end - 128 : end - 125] == b"TAG":
        end -= 128
    if end >= 32 and data[end - 32 : end - 24] == b"APETAGEX":
        size = int.from_bytes(data[end - 20 : end - 16], "little")
        has_header = data[end - 9] & 0x80
        end -= size + (32 if has_header else 0)
    return max(end, 0)


def _mp3_declares_length(data: bytes) -> bool:
    """Does the first frame carry a Xing/Info/VBRI header stating the length?"""
    start = _id3v2_end(data)
    frame = data[start : start + 2048]
    return any(tag in frame for tag in (b"Xing", b"Info", b"VBRI"))


__all__ = ["ACCEPTED_FORMATS", "AudioInfo", "AudioLimits", "decode", "probe_and_validate", "validate_and_decode"]
