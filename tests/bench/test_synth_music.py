"""The scale bench's music generator: one seed is one piece at any sample rate, and seeds differ."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from consentune.bench.synth_music import piece_seconds, render_piece
from consentune.identify import SAMPLE_RATE, MmapIndex, identify_samples, track_postings


def test_a_piece_rendered_at_22k_is_found_among_others_rendered_at_8k(tmp_path: Path) -> None:
    index = MmapIndex(tmp_path / "ix")
    index.add([track_postings(f"p{seed}", render_piece(seed, sample_rate=SAMPLE_RATE, duration_s=14.0))
               for seed in range(5)])  # fmt: skip
    high = render_piece(3, sample_rate=22_050, duration_s=14.0)
    query = np.asarray(resample_poly(high, 320, 882), dtype=np.float32)[3 * SAMPLE_RATE : 10 * SAMPLE_RATE]
    matches = identify_samples(query, index)
    assert matches and matches[0].track_id == "p3"
    assert all(m.track_id == "p3" for m in matches)  # the other pieces share no aligned stretch with it


def test_seeds_give_different_pieces_and_the_same_seed_the_same_one() -> None:
    a = render_piece(11, sample_rate=SAMPLE_RATE, duration_s=12.0)
    assert np.array_equal(a, render_piece(11, sample_rate=SAMPLE_RATE, duration_s=12.0))
    b = render_piece(12, sample_rate=SAMPLE_RATE, duration_s=12.0)
    assert abs(float(np.corrcoef(a, b)[0, 1])) < 0.2
    lengths = {round(piece_seconds(s), 1) for s in range(20)}
    assert len(lengths) > 15 and min(lengths) >= 30.0 and max(lengths) <= 60.0
