"""Help, usage errors and offline verification load none of the heavy libraries (they cost ~1.5 CPU-s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import run

HEAVY = (
    "numpy",
    "scipy",
    "sqlalchemy",
    "alembic",
    "fastapi",
    "starlette",
    "uvicorn",
    "implicit",
    "soundfile",
    "psycopg",
    "pyarrow",
    "redis",
    "jinja2",
)
PROBE = """
import sys
from consentune.cli import main
code = main(sys.argv[1:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[0].split(",")))
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def _heavy_modules_loaded(args: list[str], home: Path) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTUNE_")}
    env["CONSENTUNE_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-c", PROBE.replace("sys.argv[0]", repr(",".join(HEAVY))), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    marker = next(line for line in done.stderr.splitlines() if line.startswith("HEAVY="))
    return [m for m in marker.removeprefix("HEAVY=").split(",") if m], done


@pytest.mark.parametrize(
    "args",
    [["--help"], ["consent", "set", "--help"], ["ledger"], ["no-such-verb"], ["tracks", "--limit", "x"]],
    ids=["help", "verb help", "group", "unknown", "bad value"],
)
def test_light_paths_import_nothing_heavy(tmp_path: Path, args: list[str]) -> None:
    heavy, done = _heavy_modules_loaded(args, tmp_path / "home")
    assert heavy == [], done.stderr
    assert "Traceback" not in done.stderr


def test_offline_verification_imports_nothing_heavy(
    home: Path, audio_files: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    song = home / "a.wav"
    song.write_bytes(audio_files["wav"])
    run(capsys, "artist", "add", "Bo")
    track = json.loads(run(capsys, "ingest", str(song), "--artist", "Bo", "--json")[1])[0]["track"]
    receipt = home / "r.json"
    run(capsys, "ledger", "receipt", "--track", track, "--out", str(receipt))
    key = run(capsys, "ledger", "public-key")[1].strip()
    heavy, done = _heavy_modules_loaded(["ledger", "verify", str(receipt), "--public-key", key], home / "elsewhere")
    assert "OK:" in done.stdout, done.stderr
    assert heavy == []
