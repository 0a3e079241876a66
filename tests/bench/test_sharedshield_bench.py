"""``bench workers --shield``'s catch comparison on a tiny run: the shared peer matches one worker."""

from __future__ import annotations

from consentune.bench.sharedshield import run_shared_shield, scraper_events, strategies


def test_the_shared_peer_is_judged_as_one_worker_and_the_report_is_complete() -> None:
    found = run_shared_shield(workers=2, seeds=1, plays=25, listeners=4)
    assert found["state"] == "file" and found["same_as_one_worker"] is True
    assert set(found["runs"]) == {"one", "shared", "private"}
    one = found["runs"]["one"][0]
    assert one["blocked_after_plays"]["ai-crawler"] == 0  # a named AI crawler never gets a play
    assert one["checks"] > 0 and one["p99_ms"] >= one["p50_ms"] >= 0
    assert set(found["added_ms"]) == {"p50", "p99", "cpu_per_check"}


def test_scrapers_of_one_seed_use_different_networks() -> None:
    import random

    firsts = {scraper_events(s, 3, 2)[0].address.rsplit(".", 2)[0] for s in strategies(random.Random(3))}
    assert len(firsts) == 4
