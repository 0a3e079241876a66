"""``scan_chunks`` (time-ordered chunks, bounded memory) finds what ``scan_events`` finds on the whole list,
and a replay loses no event to the clock-skew rule."""

from __future__ import annotations

from pathlib import Path

from consentune.fraud.service import scan_chunks, scan_events
from consentune.fraud.simulate import START, AttackSpec, inject, merge, organic, write_plays
from consentune.plays import read_play_file


def test_chunked_scan_matches_the_whole_list(tmp_path: Path) -> None:
    stream = organic(users=400, tracks=1500, events=15_000, days=2, seed=3)
    attack = inject(stream, AttackSpec(bots=40, targets=8, density=0.5, start=START + 86400), seed=1003)
    plays = tmp_path / "plays.csv"
    write_plays(merge(stream, attack), attack, plays)
    events = sorted(read_play_file(plays).events, key=lambda e: e.played_at)
    whole, whole_stats = scan_events(events)
    chunked, chunk_stats = scan_chunks(events[i : i + 1_000] for i in range(0, len(events), 1_000))
    assert whole and {a.members for a in chunked} == {a.members for a in whole}
    # no event of a replay is mistaken for clock skew, however long the stream
    assert chunk_stats.accepted == whole_stats.accepted == len(events)
    bots = {f"u{b}" for b in attack.bots.tolist()}
    assert len(set(chunked[0].members) & bots) >= 0.9 * len(bots)
