"""`consentune jobs` end to end: run with a progress bar, list, show, cancel, resume and typed errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli import run
from tests.jobs.conftest import ray_or_skip


def test_jobs_run_list_show_and_errors(
    home: Path, audio_files: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "artist", "add", "Ada")[0] == 0
    tracks = []
    for fmt in ("wav", "flac", "mp3"):
        path = home / f"a.{fmt}"
        path.write_bytes(audio_files[fmt])
        code, out, _ = run(capsys, "ingest", str(path), "--artist", "Ada", "--json")
        assert code == 0
        tracks.append(out.split('"track": "')[1].split('"')[0])
    assert run(capsys, "consent", "revoke", "Ada", "organize", "--track", tracks[2])[0] == 0
    code, out, err = run(capsys, "jobs", "run", "analyze", "--workers", "1", "--batch", "2")
    assert code == 0, err
    assert "job 1: analyze over 3 tracks in 2 tasks" in out and "tracks/s" in out
    assert "job 1 done: 2 processed, 1 refused by consent, 0 failed" in out
    code, out, _ = run(capsys, "jobs", "run", "analyze", "--workers", "1")
    assert code == 0 and "over 1 tracks" in out and "(2 already done)" in out  # only the refused one is pending
    code, out, _ = run(capsys, "jobs", "show", "1", "--json")
    shown = json.loads(out)
    assert code == 0 and (shown["status"], shown["tasks_done"], shown["processed"]) == ("done", 2, 2)
    code, out, _ = run(capsys, "jobs", "list", "--json")
    assert code == 0 and [(j["id"], j["status"], j["processed"]) for j in json.loads(out)] == [
        (2, "done", 0),
        (1, "done", 2),
    ]
    code, out, _ = run(capsys, "jobs", "list")
    assert code == 0 and "analyze" in out and "2/2" in out
    code, _, err = run(capsys, "jobs", "cancel", "1")
    assert code == 4 and "already done" in err
    code, _, err = run(capsys, "jobs", "resume", "1")
    assert code == 4 and "already done" in err
    code, _, err = run(capsys, "jobs", "show", "99")
    assert code == 3 and "not found" in err
    code, _, err = run(capsys, "jobs", "run", "import-plays")
    assert code == 2 and "--file" in err
    plays = home / "plays.csv"
    plays.write_text(
        "user_id,track_id,played_at,ms_played\n"
        + "".join(f"u{i},{tracks[i % 2]},2026-10-01T10:{i:02d}:00Z,95000\n" for i in range(40))
        + "u1,trk_nope,2026-10-01T11:00:00Z,95000\n"
    )
    code, out, err = run(capsys, "jobs", "run", "import-plays", "--file", str(plays), "--chunk-mb", "0.001")
    assert code == 0, err
    chunks = re.search(r"import-plays of plays.csv in (\d+) chunks", out)
    assert chunks and int(chunks.group(1)) >= 2
    assert f"40 plays imported, 1 rows rejected ({chunks.group(1)}/{chunks.group(1)} chunks)" in out
    code, out, err = run(capsys, "jobs", "run", "train-recommend", "--workers", "1")
    assert code == 0, err
    assert "job 4 done: 3 processed, 0 refused by consent" in out
    code, _, err = run(capsys, "jobs", "run", "spread")
    assert code == 2 and "unknown job kind" in err and "fraud-rescan" in err
    code, _, err = run(capsys, "jobs", "run", "analyze", "--engine", "spark")
    assert code == 2 and "unknown engine" in err


def test_jobs_run_on_a_local_ray_cluster(
    home: Path, audio_files: dict[str, bytes], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--engine ray` without an address starts a local cluster for the job and stops it afterwards."""
    ray_or_skip()
    monkeypatch.delenv("CONSENTUNE_RAY_ADDRESS", raising=False)
    monkeypatch.setenv("CONSENTUNE_IDENTIFY_AT_INGEST", "0")
    assert run(capsys, "artist", "add", "Ada")[0] == 0
    path = home / "a.wav"
    path.write_bytes(audio_files["wav"])
    assert run(capsys, "ingest", str(path), "--artist", "Ada")[0] == 0
    code, out, err = run(capsys, "jobs", "run", "fingerprint", "--engine", "ray", "--workers", "1")
    assert code == 0, err
    assert "job 1 done: 1 processed" in out
    code, out, _ = run(capsys, "jobs", "show", "1", "--json")
    assert json.loads(out)["engine"] == "ray"
    import ray

    assert not ray.is_initialized()
