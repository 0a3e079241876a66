"""``bench workers`` reads wrk's report correctly (units differ per line)."""

from __future__ import annotations

from consentune.bench.workers import _median_run, _rates, parse_wrk

WRK = """Running 8s test @ http://127.0.0.1:4000/v1/health
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    40.10ms   80.21ms   1.20s    95.00%
  Latency Distribution
     50%  950.00us
     75%   20.43ms
     90%   58.11ms
     99%    1.02s
  7771 requests in 8.00s, 1.21MB read
  Non-2xx or 3xx responses: 12
Requests/sec:    971.31
Transfer/sec:    154.80KB
"""


def test_wrk_report_is_parsed_with_units() -> None:
    assert parse_wrk(WRK) == {
        "requests_per_s": 971.31,
        "p50_ms": 0.95,
        "p90_ms": 58.11,
        "p99_ms": 1020.0,
        "non_2xx": 12,
    }


def test_the_median_run_of_the_repeats_is_reported() -> None:
    runs = [{"requests_per_s": r, "p99_ms": p} for r, p in ((900.0, 5.0), (1500.0, 3.0), (1200.0, 4.0))]
    assert _median_run(runs) == {"requests_per_s": 1200.0, "p99_ms": 4.0}  # one whole run, not mixed figures
    assert _rates({"1": runs}) == {"1": [900.0, 1500.0, 1200.0]}
