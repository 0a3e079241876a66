"""Batch verbs go past bad files and report each; listings show whole ids; shield status reads the database."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from consentune.config import Settings
from consentune.ports import ShieldRecord
from consentune.service import open_service
from tests.cli import run

Capture = pytest.CaptureFixture[str]


@pytest.fixture
def files(home: Path, audio_files: dict[str, bytes]) -> dict[str, Path]:
    paths = {"a": home / "a.wav", "bad": home / "bad.txt", "c": home / "c.flac", "missing": home / "missing.ogg"}
    paths["a"].write_bytes(audio_files["wav"])
    paths["bad"].write_text("not audio at all")
    paths["c"].write_bytes(audio_files["flac"])
    return paths


def test_ingest_stores_the_good_files_and_reports_each_bad_one(files: dict[str, Path], capsys: Capture) -> None:
    run(capsys, "artist", "add", "Ada")
    args = [str(files[k]) for k in ("a", "bad", "c", "missing")]
    code, out, err = run(capsys, "ingest", *args, "--artist", "Ada")
    assert code == 2
    stored = [line.split()[0] for line in out.splitlines()]
    assert len(stored) == 2 and all(t.startswith("trk_") for t in stored)
    errors = err.strip().splitlines()
    assert len(errors) == 3 and all(e.startswith("error: ") and "(hint: " in e for e in errors)
    assert "bad.txt" in errors[0] and "not a recognised audio file" in errors[0]
    assert "missing.ogg" in errors[1] and "cannot read" in errors[1]
    assert "2 of 4 files failed: bad.txt, missing.ogg" in errors[2] and "the other files were stored" in errors[2]
    listed = json.loads(run(capsys, "tracks", "--json")[1])
    assert sorted(t["id"] for t in listed) == sorted(stored)


def test_ingest_json_lists_stored_and_failed_files(files: dict[str, Path], capsys: Capture) -> None:
    run(capsys, "artist", "add", "Ada")
    code, out, _err = run(capsys, "ingest", str(files["a"]), str(files["bad"]), "--artist", "Ada", "--json")
    assert code == 2
    results = json.loads(out)
    assert results[0]["file"] == str(files["a"]) and results[0]["track"].startswith("trk_")
    assert results[1]["file"] == str(files["bad"]) and results[1]["error"]["code"] == "audio_rejected"
    assert results[1]["error"]["hint"]


def test_one_bad_file_keeps_its_own_error_and_exit_code(files: dict[str, Path], capsys: Capture) -> None:
    run(capsys, "artist", "add", "Ada")
    code, out, err = run(capsys, "ingest", str(files["missing"]), "--artist", "Ada")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "cannot read" in err


def test_identify_goes_past_a_bad_file(files: dict[str, Path], capsys: Capture) -> None:
    run(capsys, "artist", "add", "Ada")
    track = json.loads(run(capsys, "ingest", str(files["a"]), "--artist", "Ada", "--json")[1])[0]["track"]
    code, out, err = run(capsys, "identify", str(files["bad"]), str(files["a"]), "--json")
    assert code == 2 and "1 of 2 files failed: bad.txt" in err
    results = json.loads(out)
    assert results[0]["matches"][0]["track_id"] == track
    assert results[1]["error"]["code"] == "audio_rejected"


def test_tracks_shows_whole_ids_and_artist_names(files: dict[str, Path], capsys: Capture) -> None:
    run(capsys, "artist", "add", "An Artist With A Rather Long Name Indeed")
    title = "A title long enough to squeeze every other column of an eighty-character table " * 2
    artist = "An Artist With A Rather Long Name Indeed"
    track = json.loads(run(capsys, "ingest", str(files["a"]), "--artist", artist, "--title", title, "--json")[1])[0]
    code, out, _ = run(capsys, "tracks")
    assert code == 0 and track["track"] in out
    assert "art_" not in out  # names, not ids, in the artist column


def test_shield_status_reads_what_the_server_recorded(home: Path, capsys: Capture) -> None:
    server = open_service(Settings.from_env())  # the deployment: records decisions as its workers do
    now = time.time()
    try:
        for subject, action, at in [
            ("address:203.0.113.9", "block", now - 60),
            ("account:acc_1", "block", now - 3 * 86_400),
            ("session:s1", "challenge", now - 30),
            ("session:s2", "challenge", now - 2 * 86_400),
        ]:
            server.store.record_shield_decision(ShieldRecord(0, at, subject, action, 0.9, ()))
        lifted = next(r for r in server.store.shield_decisions(action="block") if r.subject == "account:acc_1")
        server.store.lift_block(lifted.id, at=now, by="admin:test")
    finally:
        server.close()
    code, out, _ = run(capsys, "shield", "status", "--json")
    info = json.loads(out)
    assert code == 0 and info["source"] == "database"
    assert info["active_blocks"] == 1 and info["active_blocks_by_kind"]["address"] == 1
    assert info["lifted_blocks"] == 1 and info["blocks_last_24h"] == 1
    assert info["challenges_logged"] == 2 and info["challenges_last_24h"] == 1
    assert info["latest_decision"]["subject"] == "session:s1"
    code, out, _ = run(capsys, "shield", "status")
    assert code == 0 and "active blocks: 1 (0 session, 0 account, 1 address, 0 prefix)" in out
    assert "addresss" not in out and "prefixs" not in out
