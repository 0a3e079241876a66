"""Mix tracklists: built mixes (tempo changes, crossfades, EQ, talk-over, unindexed tracks) against their truth."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from consentune.bench.identify_mix import per_window_timeline, score_timeline
from consentune.bench.mix_build import MixParams, PlayedTrack, build_mix
from consentune.errors import InvalidInput
from consentune.identify import Match, MmapIndex, track_postings
from consentune.identify.mix import MixSegment, decode_timeline, tracklist, window_candidates
from tests.identify.conftest import SAMPLE_RATE, styled_song

N_SONGS = 7
UNINDEXED = (2, 5)
PARAMS = MixParams(duration_s=(330.0, 420.0), play_s=(45.0, 75.0), talk_per_hour=(30.0, 60.0), unknown_share=0.3)


@pytest.fixture(scope="module")
def library() -> list[npt.NDArray[np.float32]]:
    return [styled_song(100 + n) for n in range(N_SONGS)]


@pytest.fixture(scope="module")
def index(library: list[npt.NDArray[np.float32]], tmp_path_factory: pytest.TempPathFactory) -> MmapIndex:
    built = MmapIndex(tmp_path_factory.mktemp("mix-index"))
    built.add([track_postings(f"t{n}", x) for n, x in enumerate(library) if n not in UNINDEXED])
    return built


def _mix(library: list[npt.NDArray[np.float32]], seed: int) -> tuple[npt.NDArray[np.float32], list[PlayedTrack]]:
    indexed = [n not in UNINDEXED for n in range(N_SONGS)]
    return build_mix(library, indexed, rate=SAMPLE_RATE, rng=np.random.default_rng(seed), params=PARAMS)


def _source(s: MixSegment) -> int | None:
    return int(s.track_id[1:]) if s.track_id else None


@pytest.mark.parametrize("seed", [3, 4])
def test_mix_yields_tracks_in_order_with_boundaries_and_unknowns(
    library: list[npt.NDArray[np.float32]], index: MmapIndex, seed: int
) -> None:
    mix, truth = _mix(library, seed)
    assert any(not p.indexed for p in truth) and any(p.factor > 1.02 or p.factor < 0.98 for p in truth)
    segments = tracklist(mix, index)
    # the segments tile the mix
    assert segments[0].start_s == 0.0 and abs(segments[-1].end_s - mix.shape[0] / SAMPLE_RATE) < 0.01
    assert all(a.end_s == b.start_s for a, b in itertools.pairwise(segments))
    assert [_source(s) for s in segments if s.known] == [p.source for p in truth if p.indexed]
    scored = score_timeline(truth, [(_source(s), s) for s in segments], total_s=mix.shape[0] / SAMPLE_RATE)
    assert scored["precision"] == 1.0 and scored["recall"] == 1.0
    assert max(scored["boundary_errors_known_neighbour_s"], default=0.0) <= 5.0
    assert scored["unknown_reported_unknown"] == scored["unknown_tracks"] > 0
    for s, p in ((s, p) for s in segments if s.known for p in truth if p.source == _source(s)):
        assert s.time_scale is not None and abs(s.time_scale - p.factor) < 0.02
        assert s.confidence >= 8.0 and s.ref_start_s is not None and s.ref_end_s is not None


def test_the_decoder_beats_per_window_top1_on_fragments(
    library: list[npt.NDArray[np.float32]], index: MmapIndex
) -> None:
    """Both read the same windows; joining them along one path never reports more false segments."""
    mix, truth = _mix(library, 5)
    total = mix.shape[0] / SAMPLE_RATE
    candidates = window_candidates(mix, index)
    ours = score_timeline(truth, [(_source(s), s) for s in decode_timeline(candidates, total_s=total)], total_s=total)
    peer = score_timeline(truth, [(_source(s), s) for s in per_window_timeline(candidates, total_s=total)],
                          total_s=total)  # fmt: skip
    assert ours["false"] <= peer["false"] and ours["hits"] >= peer["hits"]


def test_a_mix_of_nothing_indexed_is_one_unknown_segment(
    library: list[npt.NDArray[np.float32]], index: MmapIndex
) -> None:
    mix = np.concatenate([library[2], library[5]])
    [segment] = tracklist(mix, index)
    assert segment.track_id is None and segment.end_s == pytest.approx(mix.shape[0] / SAMPLE_RATE, abs=0.01)


def test_too_short_or_bad_windows_are_refused(library: list[npt.NDArray[np.float32]], tmp_path: Path) -> None:
    empty = MmapIndex(tmp_path / "i")
    with pytest.raises(InvalidInput, match="at least 20 s"):
        tracklist(library[0][: 5 * SAMPLE_RATE], empty)
    with pytest.raises(InvalidInput, match="hop"):
        tracklist(library[0], empty, hop_s=20.0)


def _window(w: int, track: str, score: float, ref_at_zero: float) -> Match:
    """A window match on the line ref = ref_at_zero + mix time (speed 1)."""
    start, end = w * 5.0 + 0.5, w * 5.0 + 9.5
    return Match(track, score, 40, start, end, ref_at_zero + start, ref_at_zero + end, 1.0, 0.0)


def test_the_path_bridges_blips_and_weak_windows_and_leaves_gaps_unknown() -> None:
    windows: list[list[Match]] = [[_window(w, "a", 40.0, 100.0)] for w in range(12)]
    windows[4] = [_window(4, "b", 25.0, 7.0), _window(4, "a", 5.0, 100.0)]  # a lone blip over a weak window
    windows[5] = []  # nothing found (talk-over)
    windows += [[] for _ in range(6)]  # 30 s of something not in the index
    windows += [[_window(w, "c", 30.0, -50.0)] for w in range(18, 26)]
    segments = decode_timeline(windows, total_s=26 * 5.0 + 5.0)
    assert [s.track_id for s in segments] == ["a", None, "c"]
    a, gap, c = segments
    assert a.start_s == 0.0 and a.end_s == pytest.approx(11 * 5.0 + 9.5)
    assert gap.start_s == a.end_s and c.start_s == gap.end_s == pytest.approx(18 * 5.0 + 0.5)
    assert a.ref_start_s == pytest.approx(100.0) and a.time_scale == pytest.approx(1.0)


def test_a_track_needs_one_window_at_the_threshold_and_two_windows() -> None:
    weak = [[_window(w, "a", 7.0, 0.0)] for w in range(10)]  # long, but never at the threshold
    lone = [[], [_window(1, "b", 90.0, 0.0)], [], []]
    assert [s.track_id for s in decode_timeline(weak, total_s=55.0)] == [None]
    assert [s.track_id for s in decode_timeline(lone, total_s=25.0)] == [None]
