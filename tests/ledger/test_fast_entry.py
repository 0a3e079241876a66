"""The append hot path's encoder produces exactly the canonical bytes of LedgerEntry."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentune.errors import InvalidInput
from consentune.ledger.entry import MAX_SAFE_INT, LedgerEntry, fast_entry_bytes

texts = st.text(min_size=1, max_size=40).filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s))
optional = st.none() | texts
numbers = st.integers(min_value=0, max_value=MAX_SAFE_INT)


@settings(max_examples=300, deadline=None)
@given(
    seq=numbers,
    actor=texts,
    action=texts,
    purpose=optional,
    track=optional,
    decision=st.sampled_from(["allow", "deny", "record"]),
    reason=st.text(max_size=60).filter(lambda s: not any(0xD800 <= ord(c) <= 0xDFFF for c in s)),
    version=st.none() | numbers,
)
def test_fast_bytes_equal_canonical_bytes(
    seq: int,
    actor: str,
    action: str,
    purpose: str | None,
    track: str | None,
    decision: str,
    reason: str,
    version: int | None,
) -> None:
    time = "2026-11-27T03:31:15.123456Z"
    slow = LedgerEntry(seq, time, actor, action, purpose, track, decision, reason, version).to_bytes()
    fast = fast_entry_bytes(seq, time, actor, action, purpose, track, decision, reason, version)
    assert fast == slow
    assert LedgerEntry.from_bytes(fast).sequence == seq


@pytest.mark.parametrize(
    "bad",
    [
        dict(decision="maybe"),
        dict(actor=""),
        dict(seq=-1),
        dict(seq=MAX_SAFE_INT + 1),
        dict(version=True),
        dict(track=5),
        dict(reason="\ud800"),
    ],
)
def test_fast_bytes_rejects_what_ledger_entry_rejects(bad: dict[str, object]) -> None:
    fields: dict[str, object] = dict(
        seq=1, actor="a", action="read-audio", purpose="p", track="t", decision="allow", reason="r", version=1
    )
    fields.update(bad)
    with pytest.raises(InvalidInput):
        fast_entry_bytes(
            fields["seq"],
            "2026-11-27T03:31:15.123456Z",
            fields["actor"],
            fields["action"],  # type: ignore[arg-type]
            fields["purpose"],
            fields["track"],
            fields["decision"],
            fields["reason"],
            fields["version"],  # type: ignore[arg-type]
        )


@settings(max_examples=200, deadline=None)
@given(seq=numbers, actor=texts, reason=texts, data=st.data())
def test_canonical_sequence_accepts_exactly_what_from_bytes_accepts(
    seq: int, actor: str, reason: str, data: st.DataObject
) -> None:
    from consentune.ledger.entry import canonical_sequence

    good = LedgerEntry(seq, "2026-11-27T03:31:15.123456Z", actor, "read-audio", None, "t", "deny", reason, 3).to_bytes()
    assert canonical_sequence(good) == seq
    position = data.draw(st.integers(min_value=0, max_value=len(good) - 1))
    mutated = good[:position] + bytes([good[position] ^ data.draw(st.integers(1, 255))]) + good[position + 1 :]
    try:
        expected: int | None = LedgerEntry.from_bytes(mutated).sequence
    except InvalidInput:
        expected = None
    try:
        got: int | None = canonical_sequence(mutated)
    except InvalidInput:
        got = None
    assert got == expected
