"""CLI for identification: identify, index build|add|remove|stats, matches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consentune.cli import main
from tests.identify.conftest import SAMPLE_RATE, song
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
