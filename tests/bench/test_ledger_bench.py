"""``consentune bench ledger`` at a tiny size reports every measure, and the audits it runs are clean."""

from __future__ import annotations

from consentune.bench.ledger import run_ledger


def test_tiny_ledger_bench_reports_every_measure() -> None:
    results = run_ledger(
        entries=600, batch=50, workers=(1, 2), receipt_entries=300, receipt_page=128, sustained_s=1.0,
        sustained_batches=(3,), play_s=1.0, play_threads=4,
    )  # fmt: skip
    sqlite = results["sqlite"]
    for key in ("appends_1w", "appends_2w", "single_appends_1w", "single_appends_2w", "integrate"):
        assert sqlite[key]["per_s"] > 0, key
    assert sqlite["appends_1w"]["entries"] == 600 and sqlite["appends_2w"]["entries"] == 600
    for workers in (1, 2):
        run = sqlite[f"sustained_b3_{workers}w"]
        assert run["workers"] == workers and run["entries"] == 3 * run["appends"] > 0
        assert run["integrated_entries"] == run["entries"]  # the integrator beside them integrated every append
        assert run["samples"] and run["queue_depth_start"] == 0
    for workers in (1, 2):
        for group in (1, 256):
            run = sqlite[f"plays_g{group}_{workers}w"]
            assert (run["workers"], run["threads"], run["group_commit"]) == (workers, 4, group)
            assert run["plays"] > 0 and run["integrated_entries"] == run["plays"]  # one entry per play, none lost
    assert sqlite["audit_all"]["ok"] and sqlite["audit_new"]["ok"]
    assert sqlite["audit_new"]["entries"] == 600  # only what came after the first audit
    assert sqlite["log_size"] == sqlite["audit_all"]["entries"] + 600
    assert results["receipt"]["entries"] == 300 and results["receipt"]["pages"] == 3
