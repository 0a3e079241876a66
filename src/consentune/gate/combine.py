"""Group commit for small gate requests: concurrent callers share one transaction.

A play is one gate request about one track, and each request decides and
logs inside a transaction that holds consent still, so one play cost one
commit: a worker's plays per second were its database's commits per second.
Here the first caller to arrive while no batch is running becomes the
leader: it runs every request queued so far (up to ``max_batch``) as one
batch, then wakes the others and hands the lead on.  Requests that arrive
while a batch commits queue up for the next one, so batches grow with load
and nobody waits longer than the batch in flight plus its own.

No thread of our own runs: the leader is always a caller, so nothing needs
starting or stopping and a forked or pickled gate carries no live thread.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Ask = TypeVar("Ask")
Answer = TypeVar("Answer")

BatchRunner = Callable[[Sequence[Ask]], Sequence["Answer | BaseException"]]


@dataclass(slots=True)
class _Slot(Generic[Ask, Answer]):
    ask: Ask
    done: bool = False
    answer: Answer | None = None
    error: BaseException | None = None


class GroupCommit(Generic[Ask, Answer]):
    """Run concurrent asks in batches through ``run_batch`` (one answer or exception per ask, in order).

    ``run_batch`` must answer every ask it is given; an exception it raises
    as a whole is given to every ask of that batch.
    """

    def __init__(self, run_batch: BatchRunner[Ask, Answer], *, max_batch: int = 256) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run = run_batch
        self._max = max_batch
        self._cond = threading.Condition()
        self._queue: deque[_Slot[Ask, Answer]] = deque()
        self._leading = False
        self.batches = 0  # batches run so far (for tests and the bench)
        self.asks = 0

    def submit(self, ask: Ask) -> Answer:
        """Answer ``ask``, batched with whatever other threads ask meanwhile; raises what its answer raised."""
        slot: _Slot[Ask, Answer] = _Slot(ask)
        with self._cond:
            self._queue.append(slot)
            while True:
                while self._leading and not slot.done:
                    self._cond.wait()
                if slot.done:
                    return _outcome(slot)
                self._leading = True
                batch = [self._queue.popleft() for _ in range(min(self._max, len(self._queue)))]
                self._cond.release()
                try:
                    answers = self._answers(batch)
                finally:
                    self._cond.acquire()
                for waiting, answer in zip(batch, answers, strict=True):
                    if isinstance(answer, BaseException):
                        waiting.error = answer
                    else:
                        waiting.answer = answer
                    waiting.done = True
                self.batches += 1
                self.asks += len(batch)
                self._leading = False
                self._cond.notify_all()
                if slot.done:
                    return _outcome(slot)

    def _answers(self, batch: list[_Slot[Ask, Answer]]) -> Sequence[Answer | BaseException]:
        try:
            answers = self._run([s.ask for s in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"batch runner answered {len(answers)} of {len(batch)} asks")
        except BaseException as error:  # every waiting caller gets the failure, none hangs
            return [error] * len(batch)
        return answers


def _outcome(slot: _Slot[Ask, Answer]) -> Answer:
    if slot.error is not None:
        raise slot.error
    return slot.answer  # type: ignore[return-value]


__all__ = ["GroupCommit"]
