"""The claims bench's independent audio check: shared ranges score above the null, unrelated music does not."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from consentune.bench.claims_truth import RECORDING_MIN, SharedAudioCheck
from consentune.demo.synth import STYLES, SongSpec, encode, synthesize


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is needed (apt-get install ffmpeg); .ci/run installs it")
    folder = tmp_path_factory.mktemp("songs")
    paths = []
    for seed in range(4):
        path = folder / f"song{seed}.flac"
        path.write_bytes(
            encode(
                synthesize(SongSpec(seed=100 + seed, duration_s=16.0, style=STYLES[seed % len(STYLES)])),
                44_100,
                format="flac",
            )
        )
        paths.append(path)
    return paths


def test_a_sped_up_lossy_copy_of_a_range_is_shared_audio(songs: list[Path], tmp_path: Path) -> None:
    copy = tmp_path / "copy.mp3"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(songs[0]), "-af", "asetrate=44100*1.03,aresample=44100",
         "-c:a", "libmp3lame", "-b:a", "64k", str(copy)],
        check=True,
    )  # fmt: skip
    check = SharedAudioCheck(songs[1:], seed=3, null_pairs=6)
    result = check.check(copy, (3.0 / 1.03, 11.0 / 1.03), songs[0], (3.0, 11.0))
    assert result.shared, result
    assert result.score > result.null_max + 0.2


def test_ranges_of_different_songs_are_not_shared(songs: list[Path]) -> None:
    check = SharedAudioCheck(songs[2:], seed=4, null_pairs=6)
    for a, b in ((0, 1), (1, 2), (3, 0)):
        result = check.check(songs[a], (2.0, 10.0), songs[b], (6.0, 14.0))
        assert not result.shared, (a, b, result)
        assert result.recording < RECORDING_MIN, (a, b, result)


def test_a_recording_mixed_under_new_layers_is_shared_audio(songs: list[Path], tmp_path: Path) -> None:
    """A remix over the original's recording (another song on top, louder): the waveforms still line up."""
    remix = tmp_path / "remix.mp3"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(songs[0]), "-i", str(songs[1]), "-filter_complex",
         "[1:a]volume=1.5[new];[0:a][new]amix=inputs=2:normalize=0", "-c:a", "libmp3lame", "-b:a", "96k", str(remix)],
        check=True,
    )  # fmt: skip
    check = SharedAudioCheck(songs[2:], seed=5, null_pairs=6)
    result = check.check(remix, (2.0, 12.0), songs[0], (2.0, 12.0))
    assert result.shared, result
    assert result.recording >= RECORDING_MIN and result.recording > result.recording_null_max + 0.2, result
