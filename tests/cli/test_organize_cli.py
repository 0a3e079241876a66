"""`consentune organize` end to end: analyse with a progress bar, describe, similar, duplicates, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import run


def test_analyze_describe_similar_duplicates(
    home: Path, audio_files: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("Ada", "Bo"):
        assert run(capsys, "artist", "add", name)[0] == 0
    tracks = []
    for artist, fmt in (("Ada", "wav"), ("Ada", "flac"), ("Bo", "wav")):
        path = home / f"{artist}.{fmt}"
        path.write_bytes(audio_files[fmt])
        code, out, _ = run(capsys, "ingest", str(path), "--artist", artist, "--json")
        assert code == 0
        tracks.append(out.split('"track": "')[1].split('"')[0])
    ada_wav, ada_flac, bo_wav = tracks
    code, out, _ = run(capsys, "organize", "describe", ada_wav)
    assert code != 0  # not analysed yet: a typed error with a hint
    assert run(capsys, "consent", "revoke", "Ada", "organize", "--track", ada_flac)[0] == 0
    code, out, _ = run(capsys, "organize", "analyze")
    assert code == 0 and "2 analysed, 1 refused by consent" in out
    code, out, _ = run(capsys, "organize", "analyze")
    assert code == 0 and "0 analysed" in out and "2 already done" in out
    code, out, _ = run(capsys, "organize", "describe", ada_wav, "--json")
    described = json.loads(out)
    assert code == 0 and described["duration_s"] == 3.0 and described["loudness_lufs"] < 0
    code, out, _ = run(capsys, "organize", "similar", ada_wav, "--json")
    assert code == 0 and [n["track"] for n in json.loads(out)] == [bo_wav]
    code, out, _ = run(capsys, "organize", "duplicates", "--json")
    assert code == 0 and json.loads(out) == [{"tracks": sorted([ada_wav, bo_wav]), "kind": "exact", "score": 1.0}]
    code, out, _ = run(capsys, "organize", "duplicates")
    assert code == 0 and "group 1 (exact, 1.00): " in out and ada_wav in out and bo_wav in out
    code, _, err = run(capsys, "organize", "similar", ada_flac)
    assert code != 0 and err.startswith("error: ") and "organize is not allowed" in err
