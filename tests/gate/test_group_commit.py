"""Group commit: concurrent small gate requests share one transaction, and each keeps its own answer.

The pure combiner is tested with a slow runner (so later callers must queue
behind the batch in flight); the gate with real SQLite and PostgreSQL
stores, with the ledger append slowed the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from consentune.errors import InvalidInput, NotFound
from consentune.gate.combine import GroupCommit
from consentune.gate.core import Grant
from consentune.ledger.log import UsageRecord
from consentune.service import Consentune
from consentune.types import RECOMMEND, STREAM, TrackId


def _together(count: int, call: Callable[[int], Any]) -> list[Any]:
    """Run ``call(i)`` for i in range(count) on as many threads, released at once; answers or exceptions."""
    barrier = threading.Barrier(count)
    out: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = call(i)
        except Exception as error:
            out[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a caller never got its answer"
    return out


def test_callers_that_arrive_while_a_batch_runs_share_the_next_one() -> None:
    sizes: list[int] = []

    def slow_double(asks: Sequence[int]) -> list[int]:
        sizes.append(len(asks))
        time.sleep(0.1)
        return [2 * a for a in asks]

    combiner: GroupCommit[int, int] = GroupCommit(slow_double, max_batch=64)
    answers = _together(20, combiner.submit)
    assert answers == [2 * i for i in range(20)]
    assert sum(sizes) == 20
    assert len(sizes) <= 10 and max(sizes) > 1  # 20 asks, at most half as many transactions


def test_a_batch_never_exceeds_its_limit() -> None:
    sizes: list[int] = []

    def slow(asks: Sequence[int]) -> list[int]:
        sizes.append(len(asks))
        time.sleep(0.05)
        return list(asks)

    combiner: GroupCommit[int, int] = GroupCommit(slow, max_batch=3)
    assert _together(12, combiner.submit) == list(range(12))
    assert max(sizes) <= 3 and sum(sizes) == 12


def test_a_failed_batch_fails_every_caller_in_it_and_the_next_batch_still_runs() -> None:
    calls = {"n": 0}

    def flaky(asks: Sequence[int]) -> list[int]:
        calls["n"] += 1
        time.sleep(0.05)
        if calls["n"] == 1:
            raise RuntimeError("database went away")
        return list(asks)

    combiner: GroupCommit[int, int] = GroupCommit(flaky)
    answers = _together(8, combiner.submit)
    failed = [a for a in answers if isinstance(a, RuntimeError)]
    assert failed and all(str(a) == "database went away" for a in failed)
    assert sorted(a for a in answers if isinstance(a, int)) == [
        i for i in range(8) if not isinstance(answers[i], Exception)
    ]
    assert combiner.submit(99) == 99


def test_a_runner_can_fail_one_ask_and_answer_the_rest() -> None:
    def picky(asks: Sequence[int]) -> list[int | BaseException]:
        time.sleep(0.05)
        return [InvalidInput(f"ask {a} is odd", hint="ask an even number") if a % 2 else a for a in asks]

    combiner: GroupCommit[int, int] = GroupCommit(picky)
    answers = _together(10, combiner.submit)
    for i, answer in enumerate(answers):
        if i % 2:
            assert isinstance(answer, InvalidInput) and str(i) in str(answer)
        else:
            assert answer == i


# -- the gate on real stores ------------------------------------------------------------------------


@pytest.fixture
def two_tracks(svc: Consentune, audio_files: dict[str, bytes]) -> tuple[TrackId, TrackId]:
    """Ada's track and Bo's (Bo said no to recommendations)."""
    ada = svc.catalog.add_artist("Ada", actor="admin")
    bo = svc.catalog.add_artist("Bo", actor="admin")
    a = svc.catalog.ingest(audio_files["wav"], filename="a.wav", artist=ada, title=None, actor="t").track.id
    b = svc.catalog.ingest(audio_files["flac"], filename="b.flac", artist=bo, title=None, actor="t").track.id
    svc.consent.set(bo, purpose=RECOMMEND, allow=False, actor="artist:bo")
    return a, b


def _slow_appends(svc: Consentune, monkeypatch: pytest.MonkeyPatch, *, refuse_actor: str | None = None) -> list[int]:
    """Make each ledger append take 50 ms (so requests queue behind it); count records per append."""
    appended: list[int] = []
    real = svc.ledger.append

    def slow(records: Sequence[UsageRecord], **kwargs: Any) -> Any:
        if refuse_actor is not None and any(r.actor == refuse_actor for r in records):
            raise InvalidInput(f"refused a record of {refuse_actor}", hint="test")
        time.sleep(0.05)
        appended.append(len(records))
        return real(records, **kwargs)

    monkeypatch.setattr(svc.ledger, "append", slow)
    return appended


def test_concurrent_plays_share_commits_and_each_gets_its_own_decision_and_entry(
    svc: Consentune, two_tracks: tuple[TrackId, TrackId], monkeypatch: pytest.MonkeyPatch
) -> None:
    appended = _slow_appends(svc, monkeypatch)
    allowed, refused = two_tracks
    wanted = [allowed if i % 3 else refused for i in range(12)]  # plays of Ada's, recommendations of Bo's
    purposes = [STREAM if i % 3 else RECOMMEND for i in range(12)]
    grants = _together(
        12, lambda i: svc.gate.request(actor=f"listener:{i:02d}", purpose=purposes[i], tracks=[wanted[i]])
    )
    assert all(isinstance(g, Grant) for g in grants)
    assert sum(appended) == 12 and len(appended) < 12  # fewer transactions than requests
    for i, grant in enumerate(grants):
        assert [h.track for h in grant.allowed] == ([allowed] if wanted[i] == allowed else [])
        assert [d.track for d in grant.denied] == ([] if wanted[i] == allowed else [refused])
        (entry,) = svc.ledger.entries(list(svc.ledger.sequences(grant.ledger_ticket)))
        assert (entry.actor, entry.track, entry.purpose) == (f"listener:{i:02d}", wanted[i], purposes[i])
        assert entry.decision == ("allow" if wanted[i] == allowed else "deny")
    assert len({g.ledger_ticket.batch_id for g in grants}) < 12
    assert svc.ledger.audit().ok


def test_a_request_whose_entries_are_refused_fails_alone(
    svc: Consentune, two_tracks: tuple[TrackId, TrackId], monkeypatch: pytest.MonkeyPatch
) -> None:
    _slow_appends(svc, monkeypatch, refuse_actor="listener:bad")
    allowed, _ = two_tracks
    actors = ["listener:bad" if i == 5 else f"listener:{i:02d}" for i in range(10)]
    size = svc.ledger.size
    answers = _together(10, lambda i: svc.gate.request(actor=actors[i], purpose=STREAM, tracks=[allowed]))
    assert isinstance(answers[5], InvalidInput)
    good = [a for i, a in enumerate(answers) if i != 5]
    assert all(isinstance(g, Grant) and g.allowed for g in good)
    logged = [svc.ledger.entries(list(svc.ledger.sequences(g.ledger_ticket)))[0].actor for g in good]
    assert sorted(logged) == sorted(a for a in actors if a != "listener:bad")
    assert svc.ledger.size == size + 9


def test_a_request_inside_the_callers_transaction_commits_or_rolls_back_with_it(
    svc: Consentune, two_tracks: tuple[TrackId, TrackId]
) -> None:
    allowed, _ = two_tracks
    size = svc.ledger.size
    with pytest.raises(RuntimeError, match="caller gives up"), svc.store.transaction():
        grant = svc.gate.request(actor="listener:x", purpose=STREAM, tracks=[allowed])
        raise RuntimeError("caller gives up")
    with pytest.raises(NotFound):
        svc.ledger.sequences(grant.ledger_ticket)
    assert svc.ledger.size == size


def test_group_commit_of_one_commits_every_request_alone(
    svc: Consentune, two_tracks: tuple[TrackId, TrackId], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(svc.gate, "_grouped", None)  # what CONSENTUNE_GATE_GROUP_COMMIT=1 builds
    appended = _slow_appends(svc, monkeypatch)
    allowed, _ = two_tracks
    grants = _together(6, lambda i: svc.gate.request(actor=f"listener:{i}", purpose=STREAM, tracks=[allowed]))
    assert appended == [1] * 6
    assert len({g.ledger_ticket.batch_id for g in grants}) == 6
