"""What the core reports about itself, as a port: capability code calls an :class:`Observer`.

The Prometheus adapter lives in :mod:`consentune.ops.metrics`; domain code
only sees this protocol, so it imports no metrics client.
"""

from __future__ import annotations

from typing import Protocol


class Observer(Protocol):
    def gate_decided(self, purpose: str, *, allowed: int, denied: int) -> None:
        """The gate logged ``allowed`` allow and ``denied`` deny decisions for ``purpose``."""

    def ledger_appended(self, *, entries: int, seconds: float) -> None:
        """``entries`` were queued for the log in ``seconds`` (an acknowledged append)."""

    def ledger_integrated(self, *, size: int) -> None:
        """Queued entries were integrated: the log now holds ``size`` entries."""

    def fraud_alerts(self, count: int) -> None:
        """The fraud detector raised or updated ``count`` alerts."""

    def shield_action(self, action: str) -> None:
        """The shield turned a request away (``challenge``, ``block``, ``throttle``, ...)."""

    def job_ran(self, job: str, *, seconds: float, ok: bool) -> None:
        """A periodic job finished (``ok``) or failed after ``seconds``."""

    def revocation_notice(self, *, local: bool) -> None:
        """A revocation notice was applied (``local``: raised here; otherwise from another worker)."""


class NullObserver:
    """Reports nowhere: the default for embedded use and tests."""

    def gate_decided(self, purpose: str, *, allowed: int, denied: int) -> None:
        pass

    def ledger_appended(self, *, entries: int, seconds: float) -> None:
        pass

    def ledger_integrated(self, *, size: int) -> None:
        pass

    def fraud_alerts(self, count: int) -> None:
        pass

    def shield_action(self, action: str) -> None:
        pass

    def job_ran(self, job: str, *, seconds: float, ok: bool) -> None:
        pass

    def revocation_notice(self, *, local: bool) -> None:
        pass


NULL_OBSERVER: Observer = NullObserver()

__all__ = ["NULL_OBSERVER", "NullObserver", "Observer"]
