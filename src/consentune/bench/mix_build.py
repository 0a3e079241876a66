"""DJ-mix builder for ``consentune bench mix``: beat-matched, crossfaded, EQ'd, talked over.

Every choice comes from one seeded generator and wide ranges, so each seed
is a different mix: per track a speed or tempo factor in ±``max_change``, a
play length, a source offset; per transition a crossfade of 8-16 s with
equal-power fades and (often) a bass swap (the incoming track's low end
swept in); filter sweeps inside tracks; synthetic talk-over bursts at
-10..+3 dB against the music.  The truth of each played track is the span
between the middles of its crossfades.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import istft, lfilter, stft

Signal = npt.NDArray[np.float32]
Stretch = Callable[[Signal, float, int], Signal]  # (samples, tempo factor, rate) -> samples, pitch kept


@dataclass(frozen=True, slots=True)
class MixParams:
    """Ranges the builder draws from (seconds, factors, dB)."""

    duration_s: tuple[float, float] = (1800.0, 3600.0)
    play_s: tuple[float, float] = (60.0, 200.0)
    crossfade_s: tuple[float, float] = (8.0, 16.0)
    max_change: float = 0.08
    unknown_share: float = 0.25
    min_unknown: int = 1  # so unknown handling is measured in every mix (when unindexed sources exist)
    bass_swap_chance: float = 0.7
    sweep_chance: float = 0.4
    talk_per_hour: tuple[float, float] = (6.0, 20.0)
    talk_s: tuple[float, float] = (4.0, 20.0)
    talk_db: tuple[float, float] = (-10.0, 3.0)  # speech power against the music's


@dataclass(frozen=True, slots=True)
class PlayedTrack:
    """Truth for one track in the mix: span in the mix, where it came from, how it was changed."""

    source: int
    indexed: bool
    start_s: float
    end_s: float
    source_start_s: float
    factor: float  # source seconds per mix second
    mode: str  # "speed" (pitch follows) or "tempo" (pitch kept)

    @property
    def played_s(self) -> float:
        return self.end_s - self.start_s


def build_mix(
    sources: Sequence[Signal],
    indexed: Sequence[bool],
    *,
    rate: int,
    rng: np.random.Generator,
    params: MixParams = MixParams(),
    stretch: Stretch | None = None,
) -> tuple[Signal, list[PlayedTrack]]:
    """A mono mix at ``rate`` Hz and its truth; each source is played at most once.

    Without ``stretch`` every track is sped up or slowed down (pitch follows);
    with it, about half keep their pitch (a DJ's key lock).
    """
    target = float(rng.uniform(*params.duration_s))
    known = [i for i, ok in enumerate(indexed) if ok]
    unknown = [i for i, ok in enumerate(indexed) if not ok]
    rng.shuffle(known)
    rng.shuffle(unknown)
    pieces: list[tuple[Signal, PlayedTrack, float]] = []  # audio, truth, crossfade in
    cursor = 0.0
    forced = set(rng.choice(np.arange(1, 5), size=min(params.min_unknown, 4), replace=False).tolist())
    while cursor < target and (known or unknown):
        draw = rng.random() < params.unknown_share or len(pieces) in forced
        pool = unknown if unknown and (not known or draw) else known
        source = pool.pop()
        piece = _play(sources[source], source, bool(indexed[source]), cursor, rate, rng, params, stretch)
        if piece is None:
            continue
        audio, played, fade = piece
        pieces.append(piece)
        cursor = played.start_s + audio.shape[0] / rate - fade / 2
    mix, truth = _assemble(pieces, rate, rng, params)
    return _talk_over(mix, rate, rng, params), truth


def _play(
    source: Signal,
    number: int,
    indexed: bool,
    at_s: float,
    rate: int,
    rng: np.random.Generator,
    params: MixParams,
    stretch: Stretch | None,
) -> tuple[Signal, PlayedTrack, float] | None:
    factor = float(1.0 + rng.uniform(-params.max_change, params.max_change))
    mode = "tempo" if stretch is not None and rng.random() < 0.5 else "speed"
    fade = float(rng.uniform(*params.crossfade_s))
    play = float(rng.uniform(*params.play_s))
    need_src = (play + fade) * factor
    length_s = source.shape[0] / rate
    if length_s < need_src + 1.0:
        play = length_s / factor - fade - 1.0
        if play < 40.0:
            return None
        need_src = (play + fade) * factor
    src_start = float(rng.uniform(0.0, length_s - need_src))
    chunk = source[int(src_start * rate) : int((src_start + need_src) * rate)]
    audio = _speed(chunk, factor) if mode == "speed" or stretch is None else stretch(chunk, factor, rate)
    audio = _level(audio, float(rng.uniform(-3.0, 3.0)))
    if rng.random() < params.sweep_chance:
        audio = _filter_sweep(audio, rate, rng)
    truth = PlayedTrack(number, indexed, at_s, at_s + play, src_start, factor, mode)  # span fixed in _assemble
    return audio, truth, fade


def _assemble(
    pieces: list[tuple[Signal, PlayedTrack, float]], rate: int, rng: np.random.Generator, params: MixParams
) -> tuple[Signal, list[PlayedTrack]]:
    """Lay the pieces end to end, each crossfading into the next; truth spans meet at crossfade middles."""
    starts: list[float] = []
    t = 0.0
    for n, (audio, _truth, _fade_in) in enumerate(pieces):
        starts.append(t)
        if n + 1 < len(pieces):
            t += audio.shape[0] / rate - pieces[n + 1][2]
    total = int((starts[-1] + pieces[-1][0].shape[0] / rate) * rate) + 1
    mix = np.zeros(total, dtype=np.float32)
    truths: list[PlayedTrack] = []
    for n, (audio, truth, fade) in enumerate(pieces):
        shaped = audio.astype(np.float64)
        if n > 0:
            shaped = _fade(shaped, rate, fade, incoming=True)
            if rng.random() < params.bass_swap_chance:
                shaped = _bass_swap(shaped, rate, fade)
        nxt = pieces[n + 1][2] if n + 1 < len(pieces) else 0.0
        if nxt:
            shaped = _fade(shaped, rate, nxt, incoming=False)
        i = int(starts[n] * rate)
        mix[i : i + shaped.shape[0]] += shaped.astype(np.float32)
        begin = 0.0 if n == 0 else starts[n] + fade / 2
        end = total / rate if nxt == 0.0 else starts[n] + audio.shape[0] / rate - nxt / 2
        truths.append(
            PlayedTrack(truth.source, truth.indexed, round(begin, 2), round(end, 2), truth.source_start_s,
                        truth.factor, truth.mode)
        )  # fmt: skip
    return mix, truths


def _speed(samples: Signal, factor: float) -> Signal:
    """Play ``factor`` times faster (linear interpolation; pitch follows)."""
    n_out = int(samples.shape[0] / factor)
    at = np.arange(n_out) * factor
    return np.asarray(np.interp(at, np.arange(samples.shape[0]), samples), dtype=np.float32)


def _level(samples: Signal, db: float) -> Signal:
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) or 1.0
    return (samples * (0.1 / rms) * 10 ** (db / 20)).astype(np.float32)


def _fade(samples: npt.NDArray[np.float64], rate: int, fade_s: float, *, incoming: bool) -> npt.NDArray[np.float64]:
    n = min(samples.shape[0], int(fade_s * rate))
    ramp = np.sin(np.linspace(0.0, np.pi / 2, n))  # equal power
    out = samples.copy()
    if incoming:
        out[:n] *= ramp
    else:
        out[-n:] *= ramp[::-1]
    return out


def _gain_mask(
    samples: npt.NDArray[np.float64], rate: int, gains: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> npt.NDArray[np.float64]:
    """Apply a time-varying EQ given as gains(freq_hz[:, None], time_s[None, :]) in the STFT domain."""
    f, t, spec = stft(samples, fs=rate, nperseg=1024)
    _, out = istft(spec * gains(f[:, None], t[None, :]), fs=rate, nperseg=1024)
    return np.asarray(out[: samples.shape[0]], dtype=np.float64)


def _bass_swap(samples: npt.NDArray[np.float64], rate: int, fade_s: float) -> npt.NDArray[np.float64]:
    """The incoming track's bass held out for most of the crossfade, then brought in."""
    head = min(samples.shape[0], int((fade_s + 1.0) * rate))

    def gains(f: np.ndarray, t: np.ndarray) -> np.ndarray:
        cutoff = np.interp(t, [0.0, 0.7 * fade_s, fade_s], [300.0, 300.0, 20.0])
        return np.where(f < cutoff, 0.05, 1.0)

    out = samples.copy()
    out[:head] = _gain_mask(samples[:head], rate, gains)
    return out


def _filter_sweep(samples: Signal, rate: int, rng: np.random.Generator) -> Signal:
    """A low- or high-pass sweep somewhere inside the track, 8-30 s long."""
    length = float(rng.uniform(8.0, 30.0))
    total = samples.shape[0] / rate
    if total < length + 2:
        return samples
    at = float(rng.uniform(1.0, total - length - 1.0))
    low_pass = bool(rng.random() < 0.5)
    edge = float(rng.uniform(300.0, 1000.0)) if low_pass else float(rng.uniform(400.0, 1500.0))
    far = rate / 2 if low_pass else 20.0

    def gains(f: np.ndarray, t: np.ndarray) -> np.ndarray:
        cutoff = np.interp(t, [0.0, length / 2, length], [far, edge, far])
        cut = f > cutoff if low_pass else f < cutoff
        return np.where(cut, 0.03, 1.0)

    i, j = int(at * rate), int((at + length) * rate)
    out = samples.astype(np.float64)
    out[i:j] = _gain_mask(out[i:j], rate, gains)
    return out.astype(np.float32)


def _talk_over(mix: Signal, rate: int, rng: np.random.Generator, params: MixParams) -> Signal:
    """Synthetic speech bursts (voiced pulses through moving formants, syllable rhythm) over the music."""
    hours = mix.shape[0] / rate / 3600
    count = round(rng.uniform(*params.talk_per_hour) * hours)
    out = mix.copy()
    for _ in range(count):
        length = float(rng.uniform(*params.talk_s))
        at = int(rng.uniform(0.0, max(1.0, mix.shape[0] / rate - length)) * rate)
        voice = _speech(int(length * rate), rate, rng)
        music = out[at : at + voice.shape[0]]
        power = float(np.mean(music.astype(np.float64) ** 2)) or 1e-4
        voice *= np.sqrt(power / float(np.mean(voice**2)) * 10 ** (float(rng.uniform(*params.talk_db)) / 10))
        out[at : at + voice.shape[0]] += voice[: music.shape[0]].astype(np.float32)
    peak = float(np.max(np.abs(out))) or 1.0
    return out * np.float32(min(1.0, 0.95 / peak))


_VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (530, 1840, 2480), (570, 840, 2410), (440, 1020, 2240))


def _speech(n: int, rate: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    out = np.zeros(n)
    f0 = float(rng.uniform(90.0, 220.0))
    i = 0
    while i < n:
        syl = int(rng.uniform(0.12, 0.3) * rate)
        seg = min(syl, n - i)
        pitch = f0 * (1 + 0.15 * np.sin(np.linspace(0, rng.uniform(0.5, 3.0), seg)))
        phase = np.cumsum(pitch / rate)
        source = (np.diff(np.floor(phase), prepend=0.0) > 0).astype(np.float64)
        source += 0.05 * rng.standard_normal(seg)
        voiced = np.zeros(seg)
        for formant in _VOWELS[int(rng.integers(len(_VOWELS)))]:
            r = np.exp(-np.pi * 90.0 / rate)
            theta = 2 * np.pi * formant / rate
            voiced += lfilter([1.0 - r], [1.0, -2 * r * np.cos(theta), r * r], source)
        out[i : i + seg] = voiced * np.hanning(seg)
        i += seg + (int(rng.uniform(0.1, 0.6) * rate) if rng.random() < 0.25 else 0)
    return out


__all__ = ["MixParams", "PlayedTrack", "Stretch", "build_mix"]
