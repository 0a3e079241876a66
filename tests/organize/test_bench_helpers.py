"""Bench building blocks: the MIDI writer, ROC-AUC and the instrument probe."""

from __future__ import annotations

import numpy as np

from consentune.bench.midi import LEAD_INSTRUMENTS, piece_midi, random_piece
from consentune.bench.organize import probe_auc, roc_auc


def test_midi_file_declares_tempo_and_program() -> None:
    piece = random_piece(5, instrument="violin")
    data = piece_midi(piece)
    assert data[:4] == b"MThd" and data[14:18] == b"MTrk"
    assert int.from_bytes(data[18:22], "big") == len(data) - 22
    tempo_at = data.index(b"\xff\x51\x03") + 3
    assert round(60_000_000 / piece.bpm) == int.from_bytes(data[tempo_at : tempo_at + 3], "big")
    assert bytes([0xC0, LEAD_INSTRUMENTS["violin"]]) in data
    assert data.endswith(b"\xff\x2f\x00")


def test_roc_auc_known_values() -> None:
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([False, False, True, True])) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([False, False, True, True])) == 0.0
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([False, True, False, True])) == 0.5


def test_probe_separates_separable_classes_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    labels = [c for c in "abc" for _ in range(20)]
    centres = {c: 3.0 * np.eye(8)[i] for i, c in enumerate("abc")}  # one direction per class
    separable = np.stack([rng.normal(size=8) + centres[c] for c in labels])
    assert probe_auc(separable, labels) > 0.95
    noise = rng.normal(size=(60, 8))
    # cross-validation on null data is biased low (each held-out point is missing from its class mean), never high
    assert probe_auc(noise, labels) < 0.6
