"""CLI end to end on a temp data folder: ingest, consent, receipt, offline verify, error lines."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import run

Capture = pytest.CaptureFixture[str]


def test_ingest_consent_receipt_verify(
    home: Path, audio_files: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    song = home / "song.ogg"
    song.write_bytes(audio_files["ogg-vorbis"])
    assert run(capsys, "artist", "add", "Ada")[0] == 0
    code, out, _ = run(capsys, "ingest", str(song), "--artist", "Ada", "--json")
    assert code == 0
    track = out.split('"track": "')[1].split('"')[0]
    assert run(capsys, "consent", "set", "Ada", "train-generative", "allow", "--track", track)[0] == 0
    code, out, _ = run(capsys, "consent", "revoke", "Ada", "organize")
    assert code == 0 and "purge job" in out
    code, out, _ = run(capsys, "consent", "show", "Ada", "--json")
    assert '"train-generative"' in out and code == 0
    receipt = home / "receipt.json"
    assert run(capsys, "ledger", "receipt", "--track", track, "--out", str(receipt))[0] == 0
    key = run(capsys, "ledger", "public-key")[1].strip()
    (home / "key.txt").write_text(key + "\n")
    code, out, _ = run(capsys, "ledger", "verify", str(receipt), "--public-key", str(home / "key.txt"))
    assert code == 0 and out.startswith("OK:") and "consent-set" in out
    tampered = bytearray(receipt.read_bytes())
    tampered[len(tampered) // 2] ^= 0x04
    receipt.write_bytes(bytes(tampered))
    code, out, err = run(capsys, "ledger", "verify", str(receipt), "--public-key", key)
    assert code == 6 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    code, out, _ = run(capsys, "ledger", "audit")
    assert code == 0
    key_file = Path(os.environ["CONSENTUNE_HOME"]) / "ledger-signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_verify_needs_no_database(
    home: Path, audio_files: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    song = home / "a.wav"
    song.write_bytes(audio_files["wav"])
    run(capsys, "artist", "add", "Bo")
    out = run(capsys, "ingest", str(song), "--artist", "Bo", "--json")[1]
    track = out.split('"track": "')[1].split('"')[0]
    receipt = home / "r.json"
    run(capsys, "ledger", "receipt", "--track", track, "--out", str(receipt))
    key = run(capsys, "ledger", "public-key")[1].strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTUNE_")}
    env["CONSENTUNE_HOME"] = str(home / "does-not-exist")
    env["CONSENTUNE_DATABASE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    result = subprocess.run(
        [sys.executable, "-m", "consentune", "ledger", "verify", str(receipt), "--public-key", key],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert not (home / "does-not-exist").exists()


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["ingest", "{missing}", "--artist", "Ada"], 2, "cannot read"),
        (["ingest", "{text}", "--artist", "Ada"], 2, "not a recognised audio file"),
        (["ingest", "{text}", "--artist", "Nobody"], 3, "unknown artist"),
        (["consent", "set", "Ada", "identify", "deny"], 4, "required"),
        (["consent", "set", "Ada", "recommend", "perhaps"], 2, "allow or deny"),
        (["artist", "add", "Ada"], 4, "taken"),
    ],
)
def test_errors_are_one_line_with_exit_code(
    home: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, fragment: str
) -> None:
    run(capsys, "artist", "add", "Ada")
    text = home / "notes.txt"
    text.write_text("hello, not a song")
    filled = [a.format(missing=home / "missing.wav", text=text) for a in args]
    got, _out, err = run(capsys, *filled)
    assert got == code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "hint:" in lines[0]
    assert fragment in lines[0]
