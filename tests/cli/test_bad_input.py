"""Bad input to the CLI (issue 21): each case is one error line with a hint, never a traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.cli import run

Capture = pytest.CaptureFixture[str]
HEADER = "user_id,track_id,played_at,ms_played\n"
HUGE = "x" * 10_000_000


def _error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "(hint: " in lines[0], err
    assert "internal error" not in lines[0]
    return lines[0]


def _track(home: Path, capsys: Capture, audio: bytes) -> str:
    song = home / "song.wav"
    song.write_bytes(audio)
    assert run(capsys, "artist", "add", "Ada")[0] == 0
    code, out, err = run(capsys, "ingest", str(song), "--artist", "Ada", "--json")
    assert code == 0, err
    track: str = json.loads(out)[0]["track"]
    return track


def test_a_10_mb_field_is_a_rejected_row_and_the_other_rows_count(home: Path, capsys: Capture) -> None:
    plays = home / "plays.csv"
    plays.write_text(f"{HEADER}u1,trk_a,2026-11-01T00:00:00Z,60000\nu2,trk_b,2026-11-01T00:00:00Z,{HUGE}\n")
    code, out, err = run(capsys, "fraud", "scan", "--plays", str(plays), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["intake"]["accepted"] == 1
    assert [r["line"] for r in report["rejected_rows"]] == [3]
    assert "field larger than field limit" in report["rejected_rows"][0]["error"]


@pytest.mark.parametrize("verb", [["plays", "import", "{file}"], ["fraud", "scan", "--plays", "{file}"]])
def test_a_file_whose_only_row_has_a_10_mb_field(home: Path, capsys: Capture, verb: list[str]) -> None:
    plays = home / "plays.csv"
    plays.write_text(f"{HEADER}u1,trk_a,2026-11-01T00:00:00Z,{HUGE}\n")
    code, out, err = run(capsys, *[a.format(file=plays) for a in verb])
    line = _error_line(err)
    assert code == 2 and "no row accepted" in line and "line 2" in line
    assert "line 2: row is not valid CSV" in out  # the rejected row is listed too


@pytest.mark.parametrize(
    "verb",
    [["plays", "import", "{file}"], ["fraud", "scan", "--plays", "{file}"], ["fraud", "watch", "--plays", "{file}"]],
)
def test_a_wrong_header_rejects_the_file_with_the_reason(home: Path, capsys: Capture, verb: list[str]) -> None:
    plays = home / "plays.csv"
    plays.write_text("user,track,when,ms\nu1,trk_a,2026-11-01T00:00:00Z,60000\n")
    code, _out, err = run(capsys, *[a.format(file=plays) for a in verb])
    line = _error_line(err)
    assert code == 2
    assert "header lacks column(s) user_id, track_id, played_at, ms_played" in line and "found 'user'" in line


def test_a_header_the_csv_reader_refuses(home: Path, capsys: Capture) -> None:
    plays = home / "plays.csv"
    plays.write_text(f"user_id,{HUGE}\n")
    code, _out, err = run(capsys, "fraud", "scan", "--plays", str(plays))
    assert code == 2 and "header row is not valid CSV" in _error_line(err)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"kinds": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001, "nested too deeply"),
        ('{"kinds": {"identify": {"kind": "required"}}}', "kinds must map each purpose"),
        (
            '{"kinds": {"identify": "required"}, "summary": {"text": ["a"]}}',
            "summary must be a string, not a JSON object",
        ),
        ("[1, 2]", "a JSON array, not an object"),
        ('{"kinds": {"identify": "required"', "cannot read terms"),
    ],
    ids=["deep array", "deep kinds", "nested kind", "nested summary", "array", "truncated"],
)
def test_terms_publish_refuses_nested_json(home: Path, capsys: Capture, body: str, fragment: str) -> None:
    assert sys.getrecursionlimit() < 100_000
    terms = home / "terms.json"
    terms.write_text(body)
    code, _out, err = run(capsys, "terms", "publish", str(terms))
    assert code == 2 and fragment in _error_line(err)


@pytest.mark.parametrize("inside", [False, True], ids=["file", "below a file"])
def test_a_data_folder_that_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture, inside: bool
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("CONSENTUNE_HOME", str(blocker / "sub" if inside else blocker))
    monkeypatch.delenv("CONSENTUNE_DATABASE_URL", raising=False)
    code, _out, err = run(capsys, "tracks")
    line = _error_line(err)
    assert code == 2 and "is a file" in line and "CONSENTUNE_HOME" in line
    assert blocker.read_text() == "x"


def test_recommend_train_with_no_plays_says_what_to_do(home: Path, capsys: Capture) -> None:
    code, _out, err = run(capsys, "recommend", "train")
    line = _error_line(err)
    assert code == 2 and "no plays to train on" in line and "plays import" in line


def test_recommend_train_on_a_one_track_one_play_catalogue(
    home: Path, capsys: Capture, audio_files: dict[str, bytes]
) -> None:
    track = _track(home, capsys, audio_files["wav"])
    plays = home / "plays.csv"
    plays.write_text(f"{HEADER}listener-1,{track},2026-11-01T00:00:00Z,60000\n")
    assert run(capsys, "plays", "import", str(plays))[0] == 0
    code, out, err = run(capsys, "recommend", "train")
    assert code == 0, err
    assert "1 tracks used" in out and "1 users, 1 plays" in out
    code, out, err = run(capsys, "recommend", "for-user", "listener-1", "--json")
    assert code == 0, err
    assert json.loads(out) == []  # the only track is already heard
