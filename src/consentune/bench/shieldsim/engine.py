"""A discrete-event loop in simulated time.

Every simulated client is a generator: it does its requests for the current
instant, yields the simulated time at which it wants to act next, and is
sent that time back when its turn comes.  The loop runs the earliest agent
first, so requests reach the server in simulated-time order, one at a time.
"""

from __future__ import annotations

import heapq
from collections.abc import Generator
from dataclasses import dataclass, field

from consentune.bench.shieldsim.client import BudgetExhausted

Agent = Generator[float, float, None]


@dataclass
class Loop:
    """Run agents until ``end`` (simulated epoch seconds) or until the budget stops them."""

    end: float
    stopped_by_cap: list[str] = field(default_factory=list)
    reached: float = 0.0  # the latest simulated time an agent ran at (sleeping agents count too)
    capped_at: float | None = None  # the simulated time of the first request refused by a cap
    _queue: list[tuple[float, int, Agent]] = field(default_factory=list)
    _seq: int = 0

    def add(self, agent: Agent) -> None:
        """Prime ``agent`` (its first yield is its start time) and schedule it."""
        try:
            start = next(agent)
        except StopIteration:
            return
        self._push(start, agent)

    def run(self) -> None:
        try:
            while self._queue:
                at, _seq, agent = heapq.heappop(self._queue)
                if at > self.end:
                    agent.close()
                    continue
                self.reached = max(self.reached, at)
                try:
                    self._push(agent.send(at), agent)
                except StopIteration:
                    continue
                except BudgetExhausted as exc:
                    self.stopped_by_cap.append(str(exc))
                    if self.capped_at is None and "per-client" not in str(exc):
                        self.capped_at = at
                    agent.close()
        finally:
            for _at, _seq, agent in self._queue:
                agent.close()
            self._queue.clear()

    def _push(self, at: float, agent: Agent) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, agent))


__all__ = ["Agent", "Loop"]
