"""``consentune bench scale`` on tiny sizes: every path measured per size, a table, JSON with ratios and goals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import run


def test_bench_scale_measures_every_path_at_each_size(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    args = ["--sizes", "300,600", "--backend", "sqlite", "--import-rows", "2000", "--out", str(out)]
    code, text, _err = run(capsys, "bench", "scale", *args)
    assert code == 0 and "consentune bench scale (sqlite)" in text
    results = json.loads(out.read_text())
    assert set(results["sizes"]) == {"300", "600"}
    for figures in results["sizes"].values():
        for key in ("first_catalog_page_ms", "catalog_page_p99_ms", "search_p99_ms", "robots_ms",
                    "track_policy_p99_ms", "operator_page_ms", "reach_page_ms", "import_rows_per_s"):  # fmt: skip
            assert figures[key] > 0, key
        assert figures["import_rejected"] == 0 and figures["search_hits_mean"] > 0
    assert "reach_page_ms" in results["growth_vs_smallest"]
    assert any(goal.startswith("search_p99_ms <= 50 ms") for goal in results["goals"])
