"""CLI tests; ``run`` calls the CLI in-process and returns (exit code, stdout, stderr)."""

from __future__ import annotations

import pytest

from consentune.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err
