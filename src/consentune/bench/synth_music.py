"""Seeded generator of varied music for catalogue-scale benchmarks (numpy only, no soundfont needed).

One seed gives one piece: tempo (60-180 bpm), meter (3/4, 4/4, 6/8 feel)
and swing; a key and one of nine modes; a form of 2-4 sections (AABA,
ABAB, ABAC, ...) each with its own chord progression and melodic motif,
repeated with variations, sometimes modulating; 2-5 layers out of lead,
counter-melody, pad, arpeggio and bass, each with its own instrument; a
drum style (or none) with its own patterns; humanised timing and
velocity; a random master EQ, optional reverb and saturation.

Instruments are drawn per piece: harmonic spectra (tilt, odd/even balance,
a formant bump) played from band-limited wavetables with vibrato, or
inharmonic partials (bells, mallets, plucked strings with stiffness),
each with its own envelope.  Drums are synthesised one-shots.

The same seed renders the same music at any sample rate: note events are
in seconds, tones are computed at the target rate (harmonics below its
Nyquist), noise-based sounds and reverb are generated at 8 kHz and
resampled, so a piece rendered at 22.05 kHz and decoded to 8 kHz matches
its 8 kHz rendering in the fingerprint band (150 Hz - 3.6 kHz).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from scipy.signal import fftconvolve, lfilter, resample_poly

_BASE_SR = 8000  # noise and reverb are generated here, then resampled
_TABLE = 4096  # samples per wavetable cycle (a power of two: indices wrap with a mask)
_BLOCK = 32  # samples per control step of envelopes and vibrato
_MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "pentatonic": (0, 2, 4, 7, 9),
    "blues": (0, 3, 5, 6, 7, 10),
}
_FORMS = ("AABA", "ABAB", "ABAC", "AB", "ABCB", "AAB", "ABBA")
_DRUM_STYLES = ("none", "rock", "halftime", "four", "breakbeat", "shuffle", "sparse")


@dataclass(frozen=True, slots=True)
class Patch:
    """An instrument: harmonic (wavetable) or inharmonic partials, with an envelope, in seconds and dB-free gains."""

    partials: tuple[float, ...]  # frequency ratios (1, 2, 3, ... when harmonic)
    amps: tuple[float, ...]
    decays: tuple[float, ...]  # per-partial decay time constants (s); 0 = sustained
    attack: float
    release: float
    sustain: float
    vibrato_cents: float
    vibrato_hz: float
    harmonic: bool


@dataclass(frozen=True, slots=True)
class Note:
    start: float  # seconds
    length: float  # seconds
    midi: float
    velocity: float  # 0..1
    layer: int


def piece_seconds(seed: int, *, min_s: float = 30.0, max_s: float = 60.0) -> float:
    """Length of piece ``seed`` in seconds (drawn in [min_s, max_s])."""
    return float(np.random.default_rng([seed, 1]).uniform(min_s, max_s))


def render_piece(seed: int, *, sample_rate: int, duration_s: float | None = None) -> npt.NDArray[np.float32]:
    """Mono float32 audio of piece ``seed`` at ``sample_rate`` Hz (peak 0.9); see the module docstring."""
    rng = np.random.default_rng([seed, 2])
    length_s = duration_s if duration_s is not None else piece_seconds(seed)
    n = int(length_s * sample_rate)
    notes, patches, drums, gains = _compose(rng, length_s)
    out = np.zeros(n + sample_rate, dtype=np.float32)
    for note in notes:
        _add_note(out, note, patches[note.layer], gains[note.layer], sample_rate)
    kit = _drum_kit(int(rng.integers(1 << 30)), sample_rate)
    for start, kind, velocity in drums:
        hit = kit[kind]
        i = int(start * sample_rate)
        if i < n:
            stop = min(out.shape[0], i + hit.shape[0])
            out[i:stop] += velocity * hit[: stop - i]
    out = _master(out[:n], rng, sample_rate)
    peak = float(np.max(np.abs(out))) or 1.0
    return np.asarray(out * (0.9 / peak), dtype=np.float32)


# -- composition ---------------------------------------------------------------
def _compose(
    rng: np.random.Generator, length_s: float
) -> tuple[list[Note], list[Patch], list[tuple[float, int, float]], list[float]]:
    bpm = float(np.exp(rng.uniform(np.log(60.0), np.log(180.0))))
    beat = 60.0 / bpm
    beats_per_bar = int(rng.choice([3, 4, 4, 4, 2]))
    sub = int(rng.choice([2, 2, 3, 4]))  # subdivisions per beat
    swing = float(rng.uniform(0.0, 0.3)) if sub == 2 and rng.random() < 0.3 else 0.0
    mode = _MODES[str(rng.choice(list(_MODES)))]
    tonic = int(rng.integers(12))
    form = str(rng.choice(_FORMS))
    bars_per_section = int(rng.choice([2, 4, 4, 8]))
    layers = _pick_layers(rng)
    patches = [_patch(rng, kind) for kind in layers]
    gains = [float(rng.uniform(0.3, 1.0)) for _ in layers]
    sections = {part_name: _section(rng, mode, bars_per_section, beats_per_bar, sub) for part_name in sorted(set(form))}
    modulate = int(rng.choice([0, 0, 0, 2, 5, 7, -3])) if len(sections) > 1 else 0
    bar_s = beats_per_bar * beat
    notes: list[Note] = []
    drums: list[tuple[float, int, float]] = []
    style = str(rng.choice(_DRUM_STYLES))
    pattern = _drum_pattern(rng, style, beats_per_bar, sub)
    t, part = 0.0, 0
    while t < length_s:
        name = form[part % len(form)]
        key = tonic + (modulate if name == "B" else 0)
        section = sections[name]
        variation = np.random.default_rng([int(rng.integers(1 << 30)), part])
        for bar in range(bars_per_section):
            start = t + bar * bar_s
            if start >= length_s:
                break
            chord = section.chords[bar % len(section.chords)]
            for li, kind in enumerate(layers):
                notes.extend(_layer_bar(kind, li, section, bar, chord, key, mode, start, beat,
                                        beats_per_bar, sub, swing, variation))  # fmt: skip
            for step, drum, vel in pattern:
                drums.append((start + _swung(step, sub, swing) * beat / sub, drum, vel * variation.uniform(0.8, 1.0)))
        t += bars_per_section * bar_s
        part += 1
    jitter = rng.normal(0.0, 0.006, size=len(notes))
    notes = [
        Note(max(0.0, x.start + j), x.length, x.midi, x.velocity, x.layer) for x, j in zip(notes, jitter, strict=True)
    ]
    return notes, patches, drums, gains


def _pick_layers(rng: np.random.Generator) -> list[str]:
    optional = ["counter", "pad", "arp", "bass"]
    chosen = [k for k in optional if rng.random() < 0.55]
    lead = ["lead"] if rng.random() < 0.9 or not chosen else []
    layers = lead + chosen
    return layers if len(layers) >= 2 else [*layers, "bass" if "bass" not in layers else "pad"]


@dataclass(frozen=True, slots=True)
class _Section:
    """One section's material: chord roots per bar (scale degrees), melodic rhythm and contour per step."""

    chords: list[int]
    rhythm: list[bool]
    contour: list[int]
    arp: list[int]
    bass: list[int]
    octave: int
    pad_len: int


def _section(rng: np.random.Generator, mode: tuple[int, ...], bars: int, beats: int, sub: int) -> _Section:
    n_chords = int(rng.choice([2, 3, 4, 4]))
    degrees = [0] + [int(rng.integers(len(mode))) for _ in range(n_chords - 1)]
    chords = [degrees[i % n_chords] for i in range(max(bars, n_chords))]
    steps = beats * sub
    density = float(rng.uniform(0.3, 0.9))
    rhythm = [bool(rng.random() < density) or i == 0 for i in range(steps)]
    contour = np.cumsum(rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3], size=steps)).tolist()
    arp = [int(x) for x in rng.permutation(4)[: int(rng.choice([3, 4]))]]
    bass = [int(x) for x in rng.choice([0, 0, 4, 2, 7], size=beats)]
    return _Section(chords, rhythm, [int(c) for c in contour], arp, bass, int(rng.choice([0, 1])),
                    int(rng.choice([1, 2])))  # fmt: skip


def _pitch(key: int, mode: tuple[int, ...], degree: int, octave: int) -> float:
    return float(60 + key + 12 * (octave + degree // len(mode)) + mode[degree % len(mode)])


def _swung(step: float, sub: int, swing: float) -> float:
    return step + (swing if sub == 2 and int(step) % 2 == 1 else 0.0)


def _layer_bar(
    kind: str, layer: int, section: _Section, bar: int, chord: int, key: int, mode: tuple[int, ...],
    start: float, beat: float, beats: int, sub: int, swing: float, rng: np.random.Generator,
) -> list[Note]:  # fmt: skip
    step_s = beat / sub
    steps = beats * sub
    out: list[Note] = []
    rhythm, contour = section.rhythm, section.contour
    if kind in ("lead", "counter"):
        octave = section.octave + (0 if kind == "lead" else -1)
        shift = 0 if kind == "lead" else 2
        for s in range(steps):
            play = rhythm[(s + shift) % steps] if rng.random() > 0.15 else not rhythm[(s + shift) % steps]
            if not play:
                continue
            degree = chord + int(contour[s]) + (int(rng.integers(-1, 2)) if rng.random() < 0.2 else 0)
            run = 1
            while s + run < steps and not rhythm[(s + run + shift) % steps] and run < 4:
                run += 1
            t = start + _swung(s, sub, swing) * step_s
            out.append(Note(t, run * step_s * 0.9, _pitch(key, mode, degree, octave), rng.uniform(0.6, 1.0), layer))
    elif kind == "pad":
        span = section.pad_len
        if bar % span == 0:
            for d in (0, 2, 4):
                out.append(Note(start, beats * beat * span * 0.98, _pitch(key, mode, chord + d, -1), 0.5, layer))
    elif kind == "arp":
        pattern = section.arp
        for s in range(steps):
            d = (0, 2, 4, 7)[pattern[s % len(pattern)]]
            t = start + _swung(s, sub, swing) * step_s
            out.append(Note(t, step_s * 0.8, _pitch(key, mode, chord + d, 0), rng.uniform(0.5, 0.8), layer))
    else:  # bass
        line = section.bass
        for b in range(beats):
            t = start + b * beat
            out.append(Note(t, beat * 0.85, _pitch(key, mode, chord + int(line[b]), -2), rng.uniform(0.7, 1.0), layer))
    return out


def _drum_pattern(rng: np.random.Generator, style: str, beats: int, sub: int) -> list[tuple[float, int, float]]:
    """(step, kind, velocity) per bar; kinds: 0 kick, 1 snare, 2 closed hat, 3 open hat, 4 tom, 5 clap."""
    steps = beats * sub
    hits: list[tuple[float, int, float]] = []
    if style == "none":
        return hits
    for s in range(steps):
        on_beat, b = s % sub == 0, s // sub
        if style == "four" and on_beat:
            hits.append((s, 0, 1.0))
        if style in ("rock", "shuffle") and on_beat and b % 2 == 0:
            hits.append((s, 0, 1.0))
        if style in ("rock", "shuffle", "four") and on_beat and b % 2 == 1:
            hits.append((s, 1 if style != "four" else 5, 0.9))
        if style == "halftime" and on_beat and b == 0:
            hits.append((s, 0, 1.0))
        if style == "halftime" and on_beat and b == beats // 2:
            hits.append((s, 1, 0.9))
        if style in ("breakbeat", "sparse") and rng.random() < (0.35 if style == "breakbeat" else 0.15):
            hits.append((s, int(rng.choice([0, 1, 4])), float(rng.uniform(0.6, 1.0))))
        if style != "sparse" and rng.random() < 0.8:
            hits.append((s, 2 if rng.random() < 0.85 else 3, float(rng.uniform(0.3, 0.6))))
    return hits


# -- sound -----------------------------------------------------------------------
def _patch(rng: np.random.Generator, kind: str) -> Patch:
    harmonic = kind in ("pad", "bass") or rng.random() < 0.7
    if harmonic:
        n = int(rng.integers(4, 17))
        tilt = float(rng.uniform(0.6, 2.0))
        odd = float(rng.uniform(0.2, 1.0))
        formant = float(rng.uniform(2, 10))
        h = np.arange(1, n + 1, dtype=np.float64)
        amps = h**-tilt * np.where(h % 2 == 0, odd, 1.0) * (1 + 2 * np.exp(-((h - formant) ** 2) / 4))
        partials = h
        decays = np.zeros(n)
    else:  # bell / mallet / stiff string: few inharmonic partials that decay, the high ones faster
        n = int(rng.integers(3, 8))
        stiffness = float(rng.choice([0.0005, 0.003, 0.02, 0.08]))
        h = np.arange(1, n + 1, dtype=np.float64)
        partials = h * np.sqrt(1 + stiffness * h**2) if rng.random() < 0.6 else np.sort(rng.uniform(1, 7, n))
        partials[0] = 1.0
        amps = rng.uniform(0.2, 1.0, n) / h
        decays = rng.uniform(0.3, 2.0) / h**0.7
    plucked = kind in ("arp", "counter", "lead") and rng.random() < 0.4
    return Patch(
        partials=tuple(float(x) for x in partials),
        amps=tuple(float(x) for x in amps / amps.sum()),
        decays=tuple(float(x) for x in decays),
        attack=float(rng.uniform(0.003, 0.02) if plucked or not harmonic else rng.uniform(0.005, 0.15)),
        release=float(rng.uniform(0.03, 0.4)),
        sustain=float(rng.uniform(0.1, 0.4) if plucked else rng.uniform(0.5, 1.0)),
        vibrato_cents=float(rng.choice([0.0, 0.0, rng.uniform(5, 25)])),
        vibrato_hz=float(rng.uniform(4.0, 7.0)),
        harmonic=harmonic,
    )


@lru_cache(maxsize=512)
def _wavetable(amps: tuple[float, ...], harmonics: int) -> npt.NDArray[np.float32]:
    phase = np.arange(_TABLE) / _TABLE * 2 * np.pi
    table = np.zeros(_TABLE)
    for h, a in enumerate(amps[:harmonics], start=1):
        table += a * np.sin(h * phase)
    return table.astype(np.float32)


def _add_note(out: npt.NDArray[np.float32], note: Note, patch: Patch, gain: float, sr: int) -> None:
    """Mix one note into ``out``; envelopes and vibrato at a control rate (every ``_BLOCK`` samples)."""
    freq = 440.0 * 2 ** ((note.midi - 69) / 12)
    i0 = int(note.start * sr)
    n = min(int((note.length + patch.release) * sr), out.shape[0] - i0)
    if n <= 0:
        return
    tc = np.arange(n // _BLOCK + 2, dtype=np.float64) * (_BLOCK / sr)
    held = patch.sustain + (1 - patch.sustain) * np.exp(-np.minimum(tc, note.length) / 0.15)
    after = np.exp(-np.maximum(tc - note.length, 0.0) / (patch.release / 3))
    env = np.minimum(1.0, tc / patch.attack) * held * after
    t = np.arange(n, dtype=np.float64) / sr
    phase = freq * t
    if patch.vibrato_cents:  # small-depth vibrato: the integral of the frequency wobble, interpolated
        depth = freq * patch.vibrato_cents / 1200 * np.log(2) / (2 * np.pi * patch.vibrato_hz)
        wobble = depth * (1 - np.cos(2 * np.pi * patch.vibrato_hz * tc)) * np.minimum(1.0, tc / 0.3)
        phase += np.interp(t, tc, wobble)
    if patch.harmonic:
        harmonics = max(1, min(len(patch.amps), int(0.45 * sr / freq)))
        table = _wavetable(patch.amps, harmonics)
        wave = table[(phase * _TABLE).astype(np.int64) & (_TABLE - 1)] * np.repeat(env, _BLOCK)[:n]
    else:
        sine = _wavetable((1.0,), 1)
        wave = np.zeros(n, dtype=np.float32)
        for ratio, amp, decay in zip(patch.partials, patch.amps, patch.decays, strict=True):
            if freq * ratio < 0.45 * sr:
                level = np.repeat(amp * env * np.exp(-tc / max(decay, 0.05)), _BLOCK)[:n]
                wave += sine[(ratio * phase * _TABLE).astype(np.int64) & (_TABLE - 1)] * level
    out[i0 : i0 + n] += (gain * note.velocity) * wave


def _drum_kit(seed: int, sr: int) -> list[npt.NDArray[np.float32]]:
    """Kick, snare, closed hat, open hat, tom, clap; made at 8 kHz (noise) and resampled to ``sr``."""
    rng = np.random.default_rng(seed)
    base = _BASE_SR
    t = np.arange(int(0.5 * base)) / base
    kick_f = rng.uniform(40, 70) + rng.uniform(60, 140) * np.exp(-t / rng.uniform(0.02, 0.06))
    kick = np.sin(2 * np.pi * np.cumsum(kick_f) / base) * np.exp(-t / rng.uniform(0.1, 0.3))
    noise = rng.standard_normal(t.size)
    snare = (0.6 * noise + 0.5 * np.sin(2 * np.pi * rng.uniform(150, 250) * t)) * np.exp(-t / rng.uniform(0.05, 0.15))
    hiss = np.diff(rng.standard_normal(t.size + 1))
    closed = hiss * np.exp(-t / rng.uniform(0.01, 0.04))
    opened = hiss * np.exp(-t / rng.uniform(0.1, 0.25))
    tom = np.sin(2 * np.pi * rng.uniform(90, 200) * (1 - 0.2 * t) * t) * np.exp(-t / 0.2)
    clap = noise * np.exp(-((t - 0.01) % 0.012) / 0.004) * np.exp(-t / 0.08)
    kit = [kick, snare, closed * 0.5, opened * 0.4, tom, clap * 0.6]
    if sr == base:
        return [np.asarray(k, dtype=np.float32) for k in kit]
    g = np.gcd(sr, base)
    return [np.asarray(resample_poly(k, sr // g, base // g), dtype=np.float32) for k in kit]


def _master(x: npt.NDArray[np.float32], rng: np.random.Generator, sr: int) -> npt.NDArray[np.float32]:
    """Random tone colour (one-pole low-pass or high-pass tilt), optional reverb and saturation."""
    cutoff = float(rng.uniform(800.0, 3500.0))
    mix = float(rng.uniform(0.0, 0.6))
    a = np.exp(-2 * np.pi * cutoff / sr)
    low = lfilter([1 - a], [1, -a], x)
    y = (1 - mix) * x + mix * (low if rng.random() < 0.6 else x - low)
    if rng.random() < 0.5:
        ir_rng = np.random.default_rng(int(rng.integers(1 << 30)))
        tail = float(rng.uniform(0.2, 1.2))
        t = np.arange(int(tail * _BASE_SR)) / _BASE_SR
        ir = ir_rng.standard_normal(t.size) * np.exp(-t / (tail / 4))
        if sr != _BASE_SR:
            g = np.gcd(sr, _BASE_SR)
            ir = resample_poly(ir, sr // g, _BASE_SR // g) * (_BASE_SR / sr)
        wet = fftconvolve(y, ir)[: y.shape[0]]
        y = y + float(rng.uniform(0.1, 0.4)) * wet / (np.sqrt(np.sum(ir**2)) + 1e-9)
    drive = float(rng.uniform(0.5, 3.0))
    y = np.tanh(drive * y / (np.max(np.abs(y)) + 1e-9)) if rng.random() < 0.4 else y
    return np.asarray(y, dtype=np.float32)


__all__ = ["piece_seconds", "render_piece"]
