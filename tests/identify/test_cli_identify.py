"""CLI for identification: identify, index build|add|remove|stats, matches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consentune.cli import main
from tests.identify.conftest import SAMPLE_RATE, crossfaded, song, styled_song
from tests.identify.test_service import wav


def test_cli_identify_and_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONSENTUNE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CONSENTUNE_DATABASE_URL", raising=False)
    x = song(32, duration_s=20.0)
    (tmp_path / "s.wav").write_bytes(wav(x))
    (tmp_path / "q.wav").write_bytes(wav(x[5 * SAMPLE_RATE : 13 * SAMPLE_RATE]))
    assert main(["artist", "add", "Ada"]) == 0
    assert main(["ingest", str(tmp_path / "s.wav"), "--artist", "Ada", "--json"]) == 0
    track = json.loads(capsys.readouterr().out.split("\n", 1)[1])[0]["track"]
    assert main(["index", "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tracks"] == 1
    assert main(["identify", str(tmp_path / "q.wav"), "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["matches"][0]["track_id"] == track
    assert abs(result["matches"][0]["ref_start_s"] - result["matches"][0]["query_start_s"] - 5.0) < 0.1
    assert main(["index", "remove", track]) == 0
    assert main(["identify", str(tmp_path / "q.wav")]) == 0
    assert "no match" in capsys.readouterr().out
    assert main(["index", "build"]) == 0
    assert "indexed 1 tracks" in capsys.readouterr().out
    assert main(["identify", str(tmp_path / "nothing.wav")]) != 0
    assert main(["matches", track, "--json"]) == 0


def test_cli_identify_mix_prints_the_timeline_and_refuses_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONSENTUNE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CONSENTUNE_DATABASE_URL", raising=False)
    songs = [styled_song(300 + n, duration_s=60.0) for n in range(2)]
    assert main(["artist", "add", "Ada"]) == 0
    capsys.readouterr()
    ids = []
    for n, x in enumerate(songs):
        (tmp_path / f"{n}.wav").write_bytes(wav(x))
        assert main(["ingest", str(tmp_path / f"{n}.wav"), "--artist", "Ada", "--json"]) == 0
        ids.append(json.loads(capsys.readouterr().out)[0]["track"])
    (tmp_path / "mix.wav").write_bytes(wav(crossfaded(songs)))
    assert main(["identify", "--mix", str(tmp_path / "mix.wav")]) == 0
    out = capsys.readouterr().out
    assert "2 identified segments" in out and out.index(ids[0]) < out.index(ids[1])
    assert main(["identify", "--mix", "--json", str(tmp_path / "mix.wav")]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert [s["track_id"] for s in result["segments"]] == ids
    assert abs(result["segments"][0]["end_s"] - 55.0) <= 5.0

    (tmp_path / "short.wav").write_bytes(wav(songs[0][: 5 * SAMPLE_RATE]))
    assert main(["identify", "--mix", str(tmp_path / "short.wav")]) != 0
    assert "at least 20 s" in capsys.readouterr().err
    (tmp_path / "junk.mp3").write_bytes(b"not audio at all" * 100)
    assert main(["identify", "--mix", str(tmp_path / "junk.mp3")]) != 0
    assert main(["identify", "--mix", str(tmp_path / "missing.wav")]) != 0
    assert "cannot read" in capsys.readouterr().err
