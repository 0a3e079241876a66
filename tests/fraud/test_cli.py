"""``consentune simulate plays`` -> ``fraud scan --plays FILE --json`` / ``fraud watch``: the attack, with evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consentune.cli import main


def test_scan_finds_the_simulated_farm_and_reports_bad_rows(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plays = home / "plays.csv"
    args = ["simulate", "plays", "--out", str(plays), "--users", "400", "--tracks", "1500", "--events", "15000"]
    assert main([*args, "--days", "2", "--bots", "40", "--targets", "8", "--seed", "3"]) == 0
    with plays.open("a") as handle:
        handle.write("u1,t1,not-a-time,1000,,,\n")
    capsys.readouterr()
    assert main(["fraud", "scan", "--plays", str(plays), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    truth = json.loads((home / "plays.csv.truth.json").read_text())
    assert len(set(report["flagged_accounts"]) & set(truth["bots"])) >= 0.9 * len(truth["bots"])
    assert len(set(report["flagged_accounts"]) - set(truth["bots"])) <= 2
    assert set(truth["targets"]) >= set(report["flagged_tracks"]) and report["flagged_tracks"]
    top = report["alerts"][0]
    assert {"members", "tracks", "networks", "devices", "window_start", "window_end", "score"} <= set(top)
    assert top["signals"]["mean_behaviour"] > 0 or top["signals"]["concentration"] > 0
    assert [r["line"] for r in report["rejected_rows"]] == [sum(1 for _ in plays.open())]
    assert main(["fraud", "watch", "--plays", str(plays), "--batch", "2000", "--json"]) == 0
    raised = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert raised and set(truth["bots"]) & set(raised[0]["members"])


def test_scan_of_a_missing_file_is_one_error_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["fraud", "scan", "--plays", str(home / "nope.csv")])
    _, err = capsys.readouterr()
    assert code != 0 and "does not exist" in err


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("user,track,when,ms\nu1,t1,2026-01-01T00:00:00Z,60000\n", "header lacks column(s)"),
        ("user_id,track_id,played_at,ms_played\nu1,t1,yesterday,60000\n", "no row accepted"),
        ("user_id,track_id,played_at,ms_played\n", "no plays to scan"),
    ],
)
def test_scan_with_no_accepted_row_exits_non_zero_with_the_reason(
    home: Path, capsys: pytest.CaptureFixture[str], content: str, reason: str
) -> None:
    plays = home / "plays.csv"
    plays.write_text(content)
    code = main(["fraud", "scan", "--plays", str(plays), "--json"])
    _, err = capsys.readouterr()
    assert code == 2 and reason in err
