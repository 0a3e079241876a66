"""``bench jobs-train`` on a tiny catalogue: both peers train on the same generated plays; figures are sane."""

from __future__ import annotations

import numpy as np

from consentune.bench.jobs_train import _play_rows, run_train_bench


def test_generated_plays_have_a_long_tail_and_skips() -> None:
    rows = [r for chunk in _play_rows(plays=20_000, tracks=1_000, users=500, seed=3) for r in chunk]
    per_track = np.bincount([int(r[1][4:], 16) for r in rows], minlength=1_000)
    assert len(rows) == 20_000 and per_track[:10].sum() > 10 * per_track[500:510].sum()
    skipped = sum(r[3] < 30_000 for r in rows) / len(rows)
    assert 0.2 < skipped < 0.3


def test_the_job_and_the_single_process_peer_train_on_the_same_plays() -> None:
    results = run_train_bench(plays=4_000, tracks=300, users=150, partition=100)
    job, single = results["job"], results["single"]
    assert job["status"] == "done" and job["partitions"] == 3
    assert job["ledger_entries"] == 300 + 1  # one decision per track, one train record
    assert 2_800 < single["plays_counted"] < 3_200  # about three quarters of the plays pass 30 s
    assert job["read_peak_rss_mb"] <= job["peak_rss_mb"] and job["plays_read_per_s"] > 0
    assert results["job_vs_single_wall"] > 0
    phases = [line.split(":")[0] for line in job["fit_phases"]]  # the model's phases, each with its time and RSS
    assert phases[0].startswith("merge") and "calibration lists" in phases and phases[-1].startswith("save")
