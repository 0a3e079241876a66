"""Bounded atheris runs over the decoders and parsers: only typed errors may escape.

Each target runs in its own process (libFuzzer owns the process and exits when
done), seeded with valid inputs so mutations start from real headers. Runs per
target: ``CONSENTUNE_FUZZ_RUNS`` (default 2,000; the whole file stays under a
minute). A crash leaves the input that caused it beside the test's tmp files.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("atheris")

from tests.fuzz.targets import _KEY_FILE, TARGETS  # after the skip: it imports atheris

RUNS = int(os.environ.get("CONSENTUNE_FUZZ_RUNS", "2000"))
HARNESS = Path(__file__).with_name("targets.py")
ROOT = Path(__file__).resolve().parents[2]
_ROW = {"user_id": "u1", "track_id": "trk_1", "played_at": "2026-11-27T10:00:00Z", "ms_played": 183000,
        "ip": "192.0.2.1", "country": "DE"}  # fmt: skip


def _audio_seeds(folder: Path) -> None:
    from consentune.demo import encode

    t = np.arange(16000) / 16000
    tone = (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[:, None]
    for fmt in ("wav", "flac", "ogg-vorbis", "mp3"):
        (folder / f"seed.{fmt}").write_bytes(encode(tone, 16000, format=fmt))


def _plays_seeds(folder: Path, target: str) -> None:
    rows = [_ROW, {**_ROW, "user_id": "u2", "played_at": 1764237600, "ms_played": "31000"}]
    if target == "plays-csv":
        header = ",".join(_ROW)
        lines = [",".join(str(r.get(k, "")) for k in _ROW) for r in rows]
        (folder / "seed.csv").write_text("\n".join([header, *lines]) + "\n")
    elif target == "plays-json":
        (folder / "seed.json").write_text(json.dumps(rows))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist([{k: str(v) for k, v in r.items()} for r in rows]), buffer)
        (folder / "seed.parquet").write_bytes(buffer.getvalue())


def _ledger_seeds(folder: Path, tmp: Path) -> None:
    from consentune.config import Settings
    from consentune.service import open_service
    from consentune.types import Purpose, TrackId

    svc = open_service(Settings(home=tmp / "home", database_url=f"sqlite:///{tmp / 'c.db'}"))
    try:
        svc.gate.request(actor="service:fuzz", purpose=Purpose("identify"), tracks=[TrackId("trk_x")])
        (folder / "seed.receipt").write_bytes(svc.ledger.receipt(track="trk_x"))
        (folder / "seed.note").write_text(svc.ledger.checkpoint().note)
        (folder / _KEY_FILE).write_text(svc.ledger.verifier_key)
    finally:
        svc.close()


def _rss_limit_mb(allowed_mb: int = 2048) -> int:
    """libFuzzer's memory limit: ``allowed_mb`` over what the child already counts at its start.

    Linux keeps a process's peak RSS across fork and exec, so a harness started by a large test process
    begins "using" that process's peak; the margin above it is what a single input may cost.
    """
    import resource

    inherited_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # KiB on Linux
    return inherited_mb + allowed_mb


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target_raises_only_typed_errors(target: str, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    if target == "audio":
        _audio_seeds(seeds)
    elif target.startswith("plays-"):
        _plays_seeds(seeds, target)
    else:
        _ledger_seeds(seeds, tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    max_len = 65536 if target == "audio" else 16384
    limits = [f"-runs={RUNS}", f"-max_len={max_len}", f"-artifact_prefix={tmp_path}/", "-timeout=20"]
    done = subprocess.run(
        [sys.executable, str(HARNESS), target, str(seeds), *limits, f"-rss_limit_mb={_rss_limit_mb()}"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, f"{target} crashed:\n{done.stderr[-4000:]}"
    assert f"Done {RUNS} runs" in done.stderr, done.stderr[-2000:]
