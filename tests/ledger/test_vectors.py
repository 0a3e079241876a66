"""Run every RFC 9162 conformance vector (transparency-dev/merkle testdata) through us."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from consentune.errors import VerificationFailed
from consentune.ledger import verify_consistency, verify_inclusion

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "rfc9162-vectors"
MIN_CASES = 184


def _case_files() -> list[Path]:
    return sorted(VECTORS.glob("**/*.json")) if VECTORS.is_dir() else []


CASES = _case_files()


def _require_vectors() -> None:
    if VECTORS.is_dir():
        return
    message = f"RFC 9162 vectors not found at {VECTORS} (expected ../shared next to the repo)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(case: dict[str, Any]) -> list[bytes]:
    return [_b64(item) for item in case["proof"] or []]


def _run(case: dict[str, Any]) -> None:
    if "leafIdx" in case:
        verify_inclusion(
            leaf_hash=_b64(case["leafHash"]),
            index=case["leafIdx"],
            size=case["treeSize"],
            proof=_proof(case),
            root=_b64(case["root"]),
        )
    else:
        verify_consistency(
            old_size=case["size1"],
            new_size=case["size2"],
            old_root=_b64(case["root1"]),
            new_root=_b64(case["root2"]),
            proof=_proof(case),
        )


def test_vector_folder_is_complete() -> None:
    _require_vectors()
    assert len(CASES) >= MIN_CASES
    assert any("inclusion" in path.parts for path in CASES)
    assert any("consistency" in path.parts for path in CASES)


@pytest.mark.parametrize("path", CASES or [None], ids=lambda p: str(p.relative_to(VECTORS)) if p else "missing")
def test_vector(path: Path | None) -> None:
    _require_vectors()
    assert path is not None
    case = json.loads(path.read_text(encoding="utf-8"))
    if case["wantErr"]:
        with pytest.raises(VerificationFailed):
            _run(case)
    else:
        _run(case)
