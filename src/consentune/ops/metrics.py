"""Prometheus metrics (``prometheus-client``), one picture for N workers.

Every metric is ``consentune_<what>_<unit>`` with small label sets.  With
``PROMETHEUS_MULTIPROC_DIR`` set (``consentune serve --workers N`` sets it)
each worker writes its samples to memory-mapped files there and ``/metrics``
answers, from whichever worker serves it, with the sum over all workers
(gauges: the maximum, or the sum over live workers for ``leader``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as _multiprocess

from consentune.observe import Observer

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def multiprocess_dir() -> Path | None:
    raw = os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower())
    return Path(raw) if raw else None


def reset_multiprocess_dir(path: Path) -> None:
    """Start a deployment with an empty sample folder (old workers' files would be summed in)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


class Metrics:
    """The process's metrics; also the :class:`~consentune.observe.Observer` the core reports to.

    Each instance has its own registry so tests can build several apps in one
    process; in multiprocess mode the samples go to the shared folder anyway.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.http_seconds = Histogram(
            "consentune_http_request_duration_seconds",
            "HTTP request latency by route template, method and status class",
            ["route", "method", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.gate_decisions = Counter(
            "consentune_gate_decisions_total", "Decisions the gate logged", ["purpose", "outcome"], registry=reg
        )
        self.ledger_size = Gauge(
            "consentune_ledger_size_entries", "Entries in the usage ledger", registry=reg, multiprocess_mode="max"
        )
        self.ledger_entries = Counter("consentune_ledger_appended_entries_total", "Entries appended", registry=reg)
        self.ledger_append_seconds = Histogram(
            "consentune_ledger_append_duration_seconds",
            "Time to append one batch to the ledger",
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.fraud_alerts_total = Counter(
            "consentune_fraud_alerts_total", "Fraud alerts raised or updated", registry=reg
        )
        self.shield_actions = Counter(
            "consentune_shield_actions_total", "Requests the shield turned away", ["action"], registry=reg
        )
        self.job_runs = Counter("consentune_job_runs_total", "Periodic job runs", ["job", "outcome"], registry=reg)
        self.job_seconds = Histogram(
            "consentune_job_duration_seconds", "Periodic job run time", ["job"], buckets=_LATENCY_BUCKETS, registry=reg
        )
        self.leader = Gauge(
            "consentune_scheduler_leader_workers",
            "Workers holding the scheduler lease (1 when healthy)",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.revocations = Counter(
            "consentune_revocation_notices_total", "Revocation notices applied", ["origin"], registry=reg
        )

    # -- the Observer port ------------------------------------------------------
    def gate_decided(self, purpose: str, *, allowed: int, denied: int) -> None:
        if allowed:
            self.gate_decisions.labels(purpose, "allow").inc(allowed)
        if denied:
            self.gate_decisions.labels(purpose, "deny").inc(denied)

    def ledger_appended(self, *, entries: int, seconds: float) -> None:
        self.ledger_entries.inc(entries)
        self.ledger_append_seconds.observe(seconds)

    def ledger_integrated(self, *, size: int) -> None:
        self.ledger_size.set(size)

    def fraud_alerts(self, count: int) -> None:
        self.fraud_alerts_total.inc(count)

    def shield_action(self, action: str) -> None:
        self.shield_actions.labels(action).inc()

    def job_ran(self, job: str, *, seconds: float, ok: bool) -> None:
        self.job_runs.labels(job, "ok" if ok else "failed").inc()
        self.job_seconds.labels(job).observe(seconds)

    def revocation_notice(self, *, local: bool) -> None:
        self.revocations.labels("local" if local else "remote").inc()

    # -- HTTP ------------------------------------------------------------------------
    def observe_request(self, *, route: str, method: str, status: int, seconds: float) -> None:
        self.http_seconds.labels(route, method, f"{status // 100}xx").observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        """The text format for ``/metrics``: all workers' samples in multiprocess mode."""
        folder = multiprocess_dir()
        if folder is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        merged = CollectorRegistry()
        _multiprocess.MultiProcessCollector(merged, path=str(folder))  # type: ignore[no-untyped-call]
        return generate_latest(merged), CONTENT_TYPE_LATEST

    @staticmethod
    def worker_exited(pid: int) -> None:
        """Drop a finished worker's live gauges (the leader gauge) from the picture."""
        if multiprocess_dir() is not None:
            _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _check_observer(metrics: Metrics) -> Observer:
    return metrics  # mypy proves Metrics satisfies the port


__all__ = ["MULTIPROC_ENV", "Metrics", "multiprocess_dir", "reset_multiprocess_dir"]
