"""Rows the CSV reader itself refuses become numbered row errors; the rows after them still count."""

from __future__ import annotations

from consentune.plays import parse_csv

HEADER = "user_id,track_id,played_at,ms_played\n"


def test_an_oversized_field_costs_its_row_only() -> None:
    text = (
        HEADER
        + "u1,trk_a,2026-11-01T00:00:00Z,60000\n"
        + "u2,trk_b,2026-11-01T00:00:00Z," + "9" * 200_000 + "\n"
        + "u3,trk_c,2026-11-01T00:00:00Z,60000\n"
    )  # fmt: skip
    parsed = parse_csv(text)
    assert [e.user_id for e in parsed.events] == ["u1", "u3"]
    assert parsed.lines == [2, 4]
    assert [(e.line, "field larger than field limit" in e.message) for e in parsed.errors] == [(3, True)]


def test_a_nul_byte_is_a_row_error() -> None:
    parsed = parse_csv(HEADER + "u1,trk_a,2026-11-01T00:00:00Z,6\x0000\nu3,trk_c,2026-11-01T00:00:00Z,60000\n")
    assert [e.user_id for e in parsed.events] == ["u3"]
    assert [e.line for e in parsed.errors] == [2]


def test_a_wrong_header_names_what_it_found() -> None:
    parsed = parse_csv("who,what\nu1,trk_a\n")
    assert not parsed.events
    assert parsed.errors[0].line == 1 and "found 'who', 'what'" in parsed.errors[0].message
