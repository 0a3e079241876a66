"""Ledger entries encode to exactly one byte string and parse back strictly."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentune.errors import InvalidInput
from consentune.ledger import LedgerEntry, canonical_json, leaf_hash, utc_timestamp

ENTRY = LedgerEntry(
    sequence=7,
    time="2026-11-27T03:31:15.123456Z",
    actor="service:recommender",
    action="read-features",
    purpose="recommend",
    track="trk_01",
    decision="allow",
    reason="opt-out purpose, artist has not opted out",
    terms_version=3,
)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    assert canonical_json({"b": [1, None, True], "a": "é—\n"}) == ('{"a":"é—\\n","b":[1,null,true]}'.encode())


@pytest.mark.parametrize(
    "value",
    [1.0, float("nan"), {1: "x"}, {"a": {"b": [0.5]}}, 2**53, b"bytes", "\ud800", {"k": {1, 2}}],
)
def test_canonical_json_rejects_ambiguous_values(value: object) -> None:
    with pytest.raises(InvalidInput):
        canonical_json(value)


def test_entry_bytes_and_leaf() -> None:
    data = ENTRY.to_bytes()
    assert data.startswith(b'{"action":"read-features","actor":"service:recommender",')
    assert ENTRY.leaf() == leaf_hash(data)
    assert LedgerEntry.from_bytes(data) == ENTRY


def test_none_fields_encode_as_null() -> None:
    entry = replace(ENTRY, purpose=None, track=None, terms_version=None, decision="record")
    assert b'"purpose":null' in entry.to_bytes()
    assert LedgerEntry.from_bytes(entry.to_bytes()) == entry


def _mutated(change: dict[str, Any]) -> bytes:
    obj = ENTRY.to_dict() | change
    return canonical_json({k: v for k, v in obj.items() if v != "DROP"})


@pytest.mark.parametrize(
    "data",
    [
        ENTRY.to_bytes() + b" ",
        ENTRY.to_bytes().replace(b'"sequence":7', b'"sequence":7.0'),
        ENTRY.to_bytes().replace(b'"sequence":7', b'"sequence":NaN'),
        ENTRY.to_bytes().replace(b":", b": ", 1),
        ENTRY.to_bytes().replace(b'"actor"', b'"actor":"x","actor"'),
        b"\xff",
        b"[]",
        _mutated({"extra": 1}),
        _mutated({"reason": "DROP"}),
        _mutated({"sequence": True}),
        _mutated({"sequence": -1}),
        _mutated({"sequence": "7"}),
        _mutated({"terms_version": "3"}),
        _mutated({"decision": "maybe"}),
        _mutated({"time": "2026-11-27T03:31:15Z"}),
        _mutated({"time": "2026-02-30T03:31:15.123456Z"}),
        _mutated({"time": "2026-11-27 03:31:15.123456Z"}),
        _mutated({"action": ""}),
    ],
)
def test_from_bytes_is_strict(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        LedgerEntry.from_bytes(data)


def test_json_escapes_must_be_canonical() -> None:
    entry = replace(ENTRY, reason="é")
    escaped = entry.to_bytes().replace("é".encode(), b"\\u00e9")
    with pytest.raises(InvalidInput):
        LedgerEntry.from_bytes(escaped)


@given(
    reason=st.text(),
    actor=st.text(min_size=1),
    sequence=st.integers(min_value=0, max_value=2**53 - 1),
    terms=st.none() | st.integers(min_value=0, max_value=2**53 - 1),
)
def test_round_trip_any_text(reason: str, actor: str, sequence: int, terms: int | None) -> None:
    try:
        entry = replace(ENTRY, reason=reason, actor=actor, sequence=sequence, terms_version=terms)
        data = entry.to_bytes()
    except InvalidInput:  # lone surrogates cannot be UTF-8
        return
    assert LedgerEntry.from_bytes(data) == entry


def test_utc_timestamp() -> None:
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2026, 11, 27, 5, 31, 15, 123456, tzinfo=plus_two)
    assert utc_timestamp(moment) == "2026-11-27T03:31:15.123456Z"
    assert utc_timestamp(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"
    assert utc_timestamp().endswith("Z")
    with pytest.raises(InvalidInput):
        utc_timestamp(datetime(2026, 1, 1))
