"""Seeded songs made on the fly, for ``consentune demo`` and for tests.

Each song is a chord progression in a random key and mode, played by a
wavetable pad, a bassline on the chord roots, a melody built from repeated
two-bar phrases, and synthesized drums, mixed in stereo and mastered to about
-14 dBFS RMS without clipping. Style and seed pick tempo (80-140 BPM), key,
timbres and patterns, so different seeds sound clearly different.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy.ndimage import maximum_filter1d, uniform_filter1d
from scipy.signal import butter, resample_poly, sosfilt

from consentune.errors import InvalidInput

Signal = npt.NDArray[np.float64]  # internal: mono (frames,) or stereo (frames, 2), full scale 1.0

STYLES: tuple[str, ...] = ("pop", "ambient", "techno", "lofi")
TARGET_RMS_DBFS = -14.0
_CEILING = 10 ** (-1.0 / 20)  # -1 dBFS peak ceiling: headroom for lossy encoders
_TABLE_SIZE = 2048
_GRID = np.linspace(0.0, 1.0, _TABLE_SIZE + 1)
_STEPS_PER_BAR = 16  # sixteenth notes in 4/4
_MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
}


@dataclass(frozen=True)
class SongSpec:
    """What to synthesize: a seed, a length in seconds, a rate in Hz and a style."""

    seed: int
    duration_s: float = 20.0
    sample_rate: int = 44100
    style: str = "pop"

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise InvalidInput(f"unknown style {self.style!r}", hint=f"use one of {STYLES}")
        if not 0 < self.duration_s <= 600:
            raise InvalidInput(f"duration_s={self.duration_s} is outside (0, 600] s", hint="ask for 1-600 s")
        if not 8000 <= self.sample_rate <= 192_000:
            raise InvalidInput(
                f"sample_rate={self.sample_rate} Hz is outside 8000..192000 Hz",
                hint="use 44100 or 48000",
            )


@dataclass(frozen=True)
class _Style:
    """Musical choices per style; patterns are 16 steps, x = hit, o = accent/open."""

    tempo: tuple[float, float]  # BPM range
    modes: tuple[str, ...]
    progressions: tuple[tuple[int, ...], ...]  # scale degrees, 0 = tonic
    bars_per_chord: int
    sevenths: bool
    pad_rolloff: float  # harmonic k has amplitude k**-rolloff
    pad_attack_s: float
    lead: str  # "pluck", "bell", "square" or "epiano"
    lead_steps: tuple[int, ...]  # note lengths in sixteenths
    rest_chance: float
    bass_rolloff: float
    bass_cutoff_hz: float
    bass: tuple[str, ...]
    kick: tuple[str, ...]
    snare: tuple[str, ...]
    hat: tuple[str, ...]
    swing: float  # fraction of a sixteenth that off-beat sixteenths are late
    levels: tuple[float, float, float, float]  # pad, bass, lead, drums
    lowpass_hz: float | None = None
    crackle: float = 0.0


_STYLE_TABLE: dict[str, _Style] = {
    "pop": _Style(
        tempo=(96, 128), modes=("major", "mixolydian"),
        progressions=((0, 4, 5, 3), (0, 5, 3, 4), (3, 0, 4, 5)),
        bars_per_chord=1, sevenths=False, pad_rolloff=1.3, pad_attack_s=0.08,
        lead="pluck", lead_steps=(2, 2, 2, 4, 1, 1, 3), rest_chance=0.15,
        bass_rolloff=1.0, bass_cutoff_hz=900,
        bass=("x.....x.x...x...", "x..x..x...x.x..."),
        kick=("x.......x.x.....", "x.....x...x....."),
        snare=("....x.......x...", "....x.......x..x"),
        hat=("x.x.x.x.x.x.x.x.", "xxx.x.xxx.x.x.xx"),
        swing=0.0, levels=(0.22, 0.45, 0.32, 0.8),
    ),
    "ambient": _Style(
        tempo=(80, 92), modes=("major", "dorian"),
        progressions=((0, 5, 3, 4), (0, 3, 0, 4)),
        bars_per_chord=2, sevenths=True, pad_rolloff=2.0, pad_attack_s=0.9,
        lead="bell", lead_steps=(4, 6, 8, 12), rest_chance=0.35,
        bass_rolloff=3.0, bass_cutoff_hz=300, bass=("x...............",),
        kick=("x.......x.......",), snare=("................",),
        hat=("..x...x...x...x.", "....x.......x.x."),
        swing=0.0, levels=(0.35, 0.35, 0.3, 0.35),
    ),
    "techno": _Style(
        tempo=(124, 140), modes=("minor", "dorian"),
        progressions=((0, 0, 5, 6), (0, 6, 5, 6), (0, 3, 0, 4)),
        bars_per_chord=2, sevenths=False, pad_rolloff=0.9, pad_attack_s=0.02,
        lead="square", lead_steps=(1, 1, 2, 3), rest_chance=0.4,
        bass_rolloff=0.8, bass_cutoff_hz=600,
        bass=("..x...x...x...x.", "..xx..x...xx..x."),
        kick=("x...x...x...x...",), snare=("....x.......x...", "................"),
        hat=("..o...o...o...o.", "x.o.x.o.x.o.x.ox"),
        swing=0.0, levels=(0.12, 0.5, 0.22, 1.0),
    ),
    "lofi": _Style(
        tempo=(80, 92), modes=("minor", "dorian", "major"),
        progressions=((1, 4, 0, 0), (3, 2, 1, 0), (0, 5, 1, 4)),
        bars_per_chord=1, sevenths=True, pad_rolloff=1.8, pad_attack_s=0.03,
        lead="epiano", lead_steps=(2, 3, 3, 4, 2), rest_chance=0.3,
        bass_rolloff=2.0, bass_cutoff_hz=400,
        bass=("x.......x..x....", "x......x..x....."),
        kick=("x......x..x.....", "x.........x..x.."),
        snare=("....x.......x...",), hat=("x.xxx.x.x.xxx.x.", "x.x.x.x.x.x.x.x."),
        swing=0.33, levels=(0.3, 0.4, 0.3, 0.6), lowpass_hz=4500, crackle=0.002,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class _Plan:
    """Everything chosen up front from the seed; times in seconds, pitches in MIDI."""

    sr: int
    frames: int
    step_s: float
    swing: float
    root: int
    scale: tuple[int, ...]
    chords: tuple[tuple[int, ...], ...]  # chord degrees per bar


def synthesize(spec: SongSpec) -> npt.NDArray[np.float32]:
    """Render the song: float32, shape (frames, 2), about -14 dBFS RMS, peaks below -1 dBFS."""
    rng = np.random.default_rng([spec.seed, STYLES.index(spec.style)])
    style = _STYLE_TABLE[spec.style]
    plan = _plan(spec, style, rng)
    mix = np.zeros((plan.frames, 2))
    pad, bass, lead, drums = style.levels
    _add_pad(mix, plan, style, rng, pad)
    _add_bass(mix, plan, style, rng, bass)
    _add_melody(mix, plan, style, rng, lead)
    _add_drums(mix, plan, style, rng, drums)
    return _master(_finish(mix, plan, style, rng), plan.sr)


def encode(samples: npt.ArrayLike, sample_rate: int, *, format: str) -> bytes:
    """Encode float samples (frames,) or (frames, channels) at ``sample_rate`` Hz.

    ``format`` is one of "wav" (PCM 16), "flac", "ogg-vorbis", "opus" or "mp3".
    Opus is written at 48000 Hz, resampling if needed.
    """
    import soundfile as sf  # type: ignore[import-untyped,unused-ignore]

    kinds = {
        "wav": ("WAV", "PCM_16"),
        "flac": ("FLAC", "PCM_16"),
        "ogg-vorbis": ("OGG", "VORBIS"),
        "opus": ("OGG", "OPUS"),
        "mp3": ("MP3", "MPEG_LAYER_III"),
    }
    if format not in kinds:
        raise InvalidInput(f"cannot encode format {format!r}", hint=f"use one of {list(kinds)}")
    audio = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    if format == "opus" and sample_rate != 48000:
        step = math.gcd(sample_rate, 48000)
        audio = resample_poly(audio, 48000 // step, sample_rate // step, axis=0)
        audio, sample_rate = np.clip(audio, -1.0, 1.0).astype(np.float32), 48000
    buffer = io.BytesIO()
    major, subtype = kinds[format]
    sf.write(buffer, audio, sample_rate, format=major, subtype=subtype)
    return buffer.getvalue()


# --- planning --------------------------------------------------------------


def _plan(spec: SongSpec, style: _Style, rng: np.random.Generator) -> _Plan:
    tempo = rng.uniform(*style.tempo)
    step_s = 60.0 / tempo / 4
    bars = math.ceil(spec.duration_s / (step_s * _STEPS_PER_BAR))
    progression = style.progressions[rng.integers(len(style.progressions))]
    extra = (6,) if style.sevenths else ()
    chords = tuple(
        tuple(progression[(bar // style.bars_per_chord) % len(progression)] + d
              for d in (0, 2, 4, *extra))
        for bar in range(bars)
    )  # fmt: skip
    return _Plan(
        sr=spec.sample_rate,
        frames=round(spec.duration_s * spec.sample_rate),
        step_s=step_s,
        swing=style.swing,
        root=int(rng.integers(45, 57)),
        scale=_MODES[style.modes[rng.integers(len(style.modes))]],
        chords=chords,
    )


def _midi(plan: _Plan, degree: int, octave: int) -> float:
    """MIDI pitch of a scale degree (may exceed 7) ``octave`` octaves above the root."""
    return plan.root + 12 * (octave + degree // 7) + plan.scale[degree % 7]


def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _step_frame(plan: _Plan, step: int) -> int:
    """Start frame of a sixteenth step, with swing on the off-beats."""
    late = plan.swing if step % 2 else 0.0
    return round((step + late) * plan.step_s * plan.sr)


def _total_steps(plan: _Plan) -> int:
    return len(plan.chords) * _STEPS_PER_BAR


# --- sound sources ---------------------------------------------------------


def _wavetable(rolloff: float, rng: np.random.Generator, *, odd_only: bool = False) -> Signal:
    """One cycle (closed, TABLE+1 points) of an additive tone with k**-rolloff harmonics."""
    k = np.arange(1, 13)
    amps = k**-rolloff * rng.uniform(0.7, 1.3, k.size)
    if odd_only:
        amps[1::2] = 0.0
    phase = _GRID[:, None] * k[None, :] * 2 * np.pi
    table: Signal = (np.sin(phase) * amps).sum(axis=1)
    return table / float(np.max(np.abs(table)))


def _osc(table: Signal, hz: float, frames: int, sr: int) -> Signal:
    """Read a closed wavetable at ``hz`` with linear interpolation (faster than np.interp)."""
    position = np.arange(frames, dtype=np.float64)
    position *= hz * _TABLE_SIZE / sr
    np.mod(position, _TABLE_SIZE, out=position)
    index = position.astype(np.intp)
    position -= index  # now the fraction between table points
    position *= np.diff(table)[index]
    position += table[index]
    return position


def _fm(hz: float, frames: int, sr: int, ratio: float, index: Signal) -> Signal:
    """Two-operator FM: carrier at ``hz``, modulator at ``ratio * hz``, index per frame."""
    t = np.arange(frames) / sr
    return np.sin(2 * np.pi * hz * t + index * np.sin(2 * np.pi * hz * ratio * t))


def _envelope(frames: int, sr: int, attack_s: float, release_s: float) -> Signal:
    """Linear attack, sustain at 1, linear release; lengths in seconds."""
    env = np.ones(frames)
    attack = min(frames, max(1, int(attack_s * sr)))
    release = min(frames - attack, max(1, int(release_s * sr)))
    env[:attack] = np.linspace(0.0, 1.0, attack)
    if release > 0:
        env[frames - release :] = np.linspace(1.0, 0.0, release)
    return env


def _decay(frames: int, sr: int, tau_s: float) -> Signal:
    """Exponential decay with time constant ``tau_s`` seconds, short fade-in against clicks."""
    env = np.exp(-np.arange(frames) / (tau_s * sr))
    fade = min(frames, max(1, sr // 500))
    env[:fade] *= np.linspace(0.0, 1.0, fade)
    return env


def _filtered(signal: Signal, sr: int, hz: float | tuple[float, float], kind: str) -> Signal:
    """Butterworth filter (order 2); cut-offs in Hz, clamped below Nyquist."""
    nyquist = sr / 2
    cut = np.minimum(np.asarray(hz, dtype=float), 0.45 * sr) / nyquist
    sos = butter(2, cut, btype=kind, output="sos")
    return np.asarray(sosfilt(sos, signal, axis=0))


def _add(mix: Signal, start: int, sound: Signal, *, pan: float | None = None) -> None:
    """Mix a mono sound in at frame ``start``; into stereo with constant-power ``pan``."""
    end = min(mix.shape[0], start + sound.size)
    if end <= start:
        return
    if pan is None:
        mix[start:end] += sound[: end - start]
        return
    angle = (pan + 1) * np.pi / 4
    mix[start:end] += sound[: end - start, None] * np.array([np.cos(angle), np.sin(angle)])


# --- parts -----------------------------------------------------------------


def _add_pad(mix: Signal, plan: _Plan, style: _Style, rng: np.random.Generator, level: float) -> None:
    """Each chord as two detuned wavetable voices per note, spread left and right.

    The pad has nothing near Nyquist, so at 32 kHz and above it is rendered at
    half rate and upsampled: its cost halves.
    """
    factor = 2 if plan.sr % 2 == 0 and plan.sr >= 32000 else 1
    bus = np.zeros((plan.frames // factor + 1, 2))
    half = replace(plan, sr=plan.sr // factor, frames=bus.shape[0])
    table = _wavetable(style.pad_rolloff, rng)
    detune = rng.uniform(4, 12)  # cents
    for start, end, chord in _chord_spans(half):
        frames = end - start + half.sr // 4
        env = _envelope(frames, half.sr, style.pad_attack_s, 0.3) * level / len(chord)
        for cents, pan in ((detune, -0.5), (-detune, 0.5)):
            voices = sum(
                _osc(table, _hz(_midi(half, degree, 1)) * 2 ** (cents / 1200), frames, half.sr) for degree in chord
            )
            _add(bus, start, np.asarray(voices) * env, pan=pan)
    if factor > 1:
        bus = resample_poly(bus, factor, 1, axis=0)
    mix += bus[: plan.frames]


def _chord_spans(plan: _Plan) -> list[tuple[int, int, tuple[int, ...]]]:
    """(start frame, end frame, chord) for each run of bars holding the same chord."""
    spans: list[tuple[int, int, tuple[int, ...]]] = []
    for bar, chord in enumerate(plan.chords):
        start = _step_frame(plan, bar * _STEPS_PER_BAR)
        end = _step_frame(plan, (bar + 1) * _STEPS_PER_BAR)
        if spans and spans[-1][2] == chord:
            start = spans.pop()[0]
        spans.append((start, end, chord))
    return spans


def _add_bass(mix: Signal, plan: _Plan, style: _Style, rng: np.random.Generator, level: float) -> None:
    """Chord roots an octave below the key's root, on the style's rhythm, low-passed."""
    table = _wavetable(style.bass_rolloff, rng)
    pattern = style.bass[rng.integers(len(style.bass))]
    line = np.zeros(plan.frames)
    for step, length in _pattern_notes(pattern, _total_steps(plan)):
        root = plan.chords[step // _STEPS_PER_BAR][0]
        frames = max(1, round(length * plan.step_s * plan.sr))
        note = _osc(table, _hz(_midi(plan, root, -1)), frames, plan.sr)
        _add(line, _step_frame(plan, step), note * _envelope(frames, plan.sr, 0.005, 0.05))
    _add(mix, 0, level * _filtered(line, plan.sr, style.bass_cutoff_hz, "lowpass"), pan=0.0)


def _pattern_notes(pattern: str, total_steps: int) -> list[tuple[int, int]]:
    """(step, length in steps) for each hit of a 16-step pattern repeated over the song."""
    hits = [s for s in range(total_steps) if pattern[s % _STEPS_PER_BAR] != "."]
    ends = [*hits[1:], total_steps]
    return [(start, end - start) for start, end in zip(hits, ends, strict=True)]


def _add_melody(mix: Signal, plan: _Plan, style: _Style, rng: np.random.Generator, level: float) -> None:
    """Two-bar phrases (A, B) repeated as A A B A with small mutations, snapped to chords."""
    phrases = [_phrase(style, rng), _phrase(style, rng)]
    voice = _Voice(style.lead, plan.sr, rng)
    start_bar = 1 if len(plan.chords) > 2 else 0
    pan = rng.uniform(-0.3, 0.3)
    for block, bar in enumerate(range(start_bar, len(plan.chords), 2)):
        phrase = phrases[(0, 0, 1, 0)[block % 4]]
        for offset, length, degree in phrase:
            step = bar * _STEPS_PER_BAR + offset
            if step >= _total_steps(plan):
                break
            chord = plan.chords[step // _STEPS_PER_BAR]
            pitch = _midi(plan, _snap(degree, chord) if offset % 8 == 0 else degree, 2)
            frames = max(1, round(length * plan.step_s * plan.sr))
            _add(mix, _step_frame(plan, step), level * voice(_hz(pitch), frames), pan=pan)


def _phrase(style: _Style, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """(offset step, length in steps, scale degree) notes of a random-walk two-bar phrase."""
    notes, offset, degree = [], 0, int(rng.integers(0, 7))
    while offset < 2 * _STEPS_PER_BAR:
        length = int(rng.choice(style.lead_steps))
        if rng.random() >= style.rest_chance:
            notes.append((offset, length, degree))
        degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), 0, 11))
        offset += length
    return notes


def _snap(degree: int, chord: tuple[int, ...]) -> int:
    """Nearest scale degree that is a chord tone, so strong beats are consonant."""
    tones = {d % 7 for d in chord}
    return min((d for d in range(degree - 3, degree + 4) if d % 7 in tones and d >= 0),
               key=lambda d: abs(d - degree))  # fmt: skip


class _Voice:
    """A lead instrument: call with a frequency in Hz and a length in frames."""

    def __init__(self, kind: str, sr: int, rng: np.random.Generator) -> None:
        self.kind, self.sr = kind, sr
        self.table = _wavetable(rng.uniform(0.6, 1.4), rng, odd_only=kind == "square")
        self.ratio = float(rng.choice([2.0, 3.5, 4.0])) if kind == "bell" else 1.0
        self.tau_s = rng.uniform(0.15, 0.4)

    def __call__(self, hz: float, frames: int) -> Signal:
        sr = self.sr
        if self.kind == "bell":
            tail = frames + sr // 2
            return _fm(hz, tail, sr, self.ratio, 3 * _decay(tail, sr, 0.3)) * _decay(tail, sr, 0.8)
        if self.kind == "epiano":
            tail = frames + sr // 5
            tone = _fm(hz, tail, sr, 1.0, 1.5 * _decay(tail, sr, 0.2))
            return tone * _decay(tail, sr, 0.6) * _envelope(tail, sr, 0.002, 0.15)
        if self.kind == "square":
            return 0.7 * _osc(self.table, hz, frames, sr) * _envelope(frames, sr, 0.004, 0.03)
        return _osc(self.table, hz, frames, sr) * _decay(frames, sr, self.tau_s)


def _add_drums(mix: Signal, plan: _Plan, style: _Style, rng: np.random.Generator, level: float) -> None:
    """Kick, snare and hi-hat hits rendered once per song, placed on the style's patterns."""
    kits = {
        "kick": (_kick(plan.sr, rng), style.kick, 0.0, 1.0),
        "snare": (_snare(plan.sr, rng), style.snare, -0.15, 0.55),
        "hat": (_hat(plan.sr, rng, 0.03), style.hat, 0.35, 0.25),
        "open": (_hat(plan.sr, rng, 0.15), style.hat, 0.35, 0.25),
    }
    for name, (sound, patterns, pan, gain) in kits.items():
        pattern = patterns[rng.integers(len(patterns))]
        mark = "o" if name == "open" else "x"
        for step in range(_total_steps(plan)):
            if pattern[step % _STEPS_PER_BAR] == mark:
                velocity = rng.uniform(0.75, 1.0) * (1.0 if step % 4 == 0 else 0.85)
                _add(mix, _step_frame(plan, step), level * gain * velocity * sound, pan=pan)


def _kick(sr: int, rng: np.random.Generator) -> Signal:
    """A sine whose pitch sweeps down from ~150 Hz to ~45 Hz, with a short click."""
    frames = int(0.4 * sr)
    t = np.arange(frames) / sr
    start, end = rng.uniform(120, 180), rng.uniform(40, 55)
    hz = end + (start - end) * np.exp(-t / 0.035)
    body = np.sin(2 * np.pi * np.cumsum(hz) / sr) * _decay(frames, sr, rng.uniform(0.12, 0.25))
    click = rng.standard_normal(frames) * _decay(frames, sr, 0.002)
    return body + 0.3 * click


def _snare(sr: int, rng: np.random.Generator) -> Signal:
    """Band-passed noise burst plus a ~200 Hz tone."""
    frames = int(0.25 * sr)
    noise = _filtered(rng.standard_normal(frames), sr, (1500.0, 7000.0), "bandpass")
    tone = np.sin(2 * np.pi * rng.uniform(170, 230) * np.arange(frames) / sr)
    return 1.5 * noise * _decay(frames, sr, 0.07) + 0.5 * tone * _decay(frames, sr, 0.04)


def _hat(sr: int, rng: np.random.Generator, tau_s: float) -> Signal:
    """High-passed noise; ``tau_s`` sets closed (short) or open (long) decay."""
    frames = int(5 * tau_s * sr)
    noise = _filtered(rng.standard_normal(frames), sr, 7000.0, "highpass")
    return 1.5 * noise * _decay(frames, sr, tau_s)


# --- mastering -------------------------------------------------------------


def _finish(mix: Signal, plan: _Plan, style: _Style, rng: np.random.Generator) -> Signal:
    """Style colour (vinyl crackle, dull top end) and a fade-out so the end does not click."""
    if style.crackle:
        pops = (rng.random(mix.shape) < style.crackle) * rng.standard_normal(mix.shape)
        mix = mix + 0.05 * _filtered(pops, plan.sr, 2500.0, "highpass")
    if style.lowpass_hz:
        mix = _filtered(mix, plan.sr, style.lowpass_hz, "lowpass")
    fade = min(mix.shape[0], plan.sr)
    mix[mix.shape[0] - fade :] *= np.linspace(1.0, 0.0, fade)[:, None]
    return mix


def _master(mix: Signal, sr: int) -> npt.NDArray[np.float32]:
    """Bring RMS to -14 dBFS, limiting peaks to -1 dBFS; a few rounds converge."""
    target = 10 ** (TARGET_RMS_DBFS / 20)
    for _ in range(2):
        rms = math.sqrt(float(np.vdot(mix, mix)) / mix.size) if mix.size else 0.0
        if rms == 0.0:
            break
        mix = _limit(mix * (target / rms), sr)
    return np.clip(mix, -_CEILING, _CEILING).astype(np.float32)


def _limit(mix: Signal, sr: int) -> Signal:
    """Look-around peak limiter: gain never lets any frame exceed the ceiling.

    The gain is smoothed over at most half the peak-hold window, so every frame
    near a peak still gets a gain no larger than that peak needs.
    """
    hold = max(3, int(0.005 * sr))
    peaks = np.maximum(np.abs(mix[:, 0]), np.abs(mix[:, 1]))  # faster than max(axis=1)
    envelope: Signal = maximum_filter1d(peaks, size=2 * hold + 1)
    gain = np.minimum(1.0, _CEILING / np.maximum(envelope, 1e-12))
    smoothed: Signal = uniform_filter1d(gain, size=hold)
    return mix * smoothed[:, None]


__all__ = ["STYLES", "TARGET_RMS_DBFS", "SongSpec", "encode", "synthesize"]
