"""The architecture holds: only the gate touches raw content; domain code stays framework-free."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "consentune"
GATE_ONLY = {"soundfile", "consentune.gate.decode", "consentune.gate.blobs", "consentune.gate.blobs_s3"}
ALLOWED = {
    "soundfile": {"gate/decode.py", "demo/synth.py"},  # the synthesizer only encodes
    "consentune.gate.decode": {"gate/core.py", "gate/__init__.py", "gate/grants.py"},
    # grants: the worker-side reader checks a grant before it reads a blob
    "consentune.gate.blobs": {"gate/core.py", "gate/blobs_s3.py", "gate/grants.py"},
    "consentune.gate.blobs_s3": {"gate/blobs.py"},
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_import_linter_contracts_hold() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    result = subprocess.run([exe], capture_output=True, text=True, cwd=SRC.parents[1], check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and "0 broken" in result.stdout


def test_only_the_gate_imports_decoder_and_blob_store() -> None:
    """An independent AST scan, so a misconfigured linter cannot hide a bypass."""
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        for name in _imports(path) & GATE_ONLY:
            if rel not in ALLOWED[name]:
                offenders.append(f"{rel} imports {name}")
    assert offenders == []


def test_only_the_engine_adapters_import_ray() -> None:
    offenders = [
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        if any(n == "ray" or n.startswith("ray.") for n in _imports(path))
        and not path.relative_to(SRC).as_posix().startswith("engines/")
    ]
    assert offenders == []
