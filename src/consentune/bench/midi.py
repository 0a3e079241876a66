"""A tiny Standard MIDI File writer and seeded pieces with known instrument, tempo and key.

Pieces are for ground truth only: the bench renders them with FluidSynth and
a General MIDI soundfont, then checks what the descriptors recover.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

PPQ = 480
DRUM_CHANNEL = 9
BASS_PROGRAM = 32  # acoustic bass
# lead instruments named as the MagnaTagATune tags that describe them
LEAD_INSTRUMENTS: dict[str, int] = {
    "piano": 0,
    "harpsichord": 6,
    "guitar": 24,
    "violin": 40,
    "cello": 42,
    "harp": 46,
    "strings": 48,
    "flute": 73,
    "sitar": 104,
}
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 11)  # harmonic minor: the V chord has its leading tone
_PROGRESSIONS = ((0, 5, 3, 4), (0, 3, 4, 0), (0, 3, 0, 4), (0, 4, 5, 3))  # scale degrees of chord roots


@dataclass(frozen=True)
class Piece:
    seed: int
    instrument: str
    bpm: float
    tonic: int  # pitch class, C = 0
    mode: str
    drums: bool
    bars: int = 12


def _vlq(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _track(events: list[tuple[int, bytes]]) -> bytes:
    body, now = b"", 0
    for tick, message in sorted(events, key=lambda e: (e[0], e[1][0] & 0xF0 != 0x80)):
        body += _vlq(tick - now) + message
        now = tick
    body += b"\x00\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + body


def _note(events: list[tuple[int, bytes]], channel: int, start: int, length: int, pitch: int, velocity: int) -> None:
    events.append((start, bytes([0x90 | channel, pitch, velocity])))
    events.append((start + length, bytes([0x80 | channel, pitch, 0])))


def random_piece(seed: int, *, instrument: str | None = None) -> Piece:
    rng = np.random.default_rng(seed)
    names = sorted(LEAD_INSTRUMENTS)
    return Piece(
        seed=seed,
        instrument=instrument or names[int(rng.integers(len(names)))],
        bpm=round(float(np.exp(rng.uniform(np.log(70.0), np.log(160.0)))), 1),
        tonic=int(rng.integers(12)),
        mode="major" if rng.random() < 0.5 else "minor",
        drums=bool(rng.random() < 0.6),
    )


def piece_midi(piece: Piece) -> bytes:
    """Format-0 SMF: lead (chords and a melody), bass on every beat, optional drums."""
    rng = np.random.default_rng(piece.seed + 1)
    scale = _MAJOR if piece.mode == "major" else _MINOR
    progression = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    tempo = round(60_000_000 / piece.bpm)
    events: list[tuple[int, bytes]] = [
        (0, b"\xff\x51\x03" + tempo.to_bytes(3, "big")),
        (0, bytes([0xC0, LEAD_INSTRUMENTS[piece.instrument]])),
        (0, bytes([0xC1, BASS_PROGRAM])),
    ]
    base = 60 + piece.tonic - (12 if piece.tonic > 6 else 0)

    def pitch(degree: int, octave: int = 0) -> int:
        return base + 12 * (octave + degree // 7) + scale[degree % 7]

    bar = 4 * PPQ
    for b in range(piece.bars):
        root = progression[b % len(progression)]
        start = b * bar
        for half in (0, 2 * PPQ):  # block chord on beats 1 and 3
            for d in (root, root + 2, root + 4):
                _note(events, 0, start + half, 2 * PPQ - 20, pitch(d, -1), 62)
        for eighth in range(8):  # melody: chord tones on beats, scale steps between
            on_beat = eighth % 2 == 0
            degree = root + int(rng.choice([0, 2, 4])) if on_beat else root + int(rng.integers(0, 7))
            _note(events, 0, start + eighth * PPQ // 2, PPQ // 2 - 10, pitch(degree, 1), 84 if on_beat else 70)
        for beat in range(4):
            _note(events, 1, start + beat * PPQ, PPQ - 30, pitch(root, -2), 90 if beat == 0 else 75)
            if piece.drums:
                drum = 36 if beat % 2 == 0 else 38
                _note(events, DRUM_CHANNEL, start + beat * PPQ, PPQ // 4, drum, 100)
                for off in (0, PPQ // 2):
                    _note(events, DRUM_CHANNEL, start + beat * PPQ + off, PPQ // 8, 42, 60)
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, PPQ)
    return header + _track(events)


def piece_seconds(piece: Piece) -> float:
    return piece.bars * 4 * 60.0 / piece.bpm


__all__ = ["LEAD_INSTRUMENTS", "Piece", "piece_midi", "piece_seconds", "random_piece"]
