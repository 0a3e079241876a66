"""Newcomer budgets: distinct audio per hour, all scopes at once, the lead counts, vouchers, no disclosure."""

from __future__ import annotations

import random
import re

import pytest

from consentune.errors import InvalidInput, NewcomerLimit
from consentune.ports import ListenerSession
from consentune.shield.budget import (
    HOUR_S,
    BudgetCaps,
    MemoryBudgetCounter,
    NewcomerBudget,
    is_newcomer,
    parse_caps,
    scope_keys,
)
from consentune.shield.detect import PROBATION_S

T0 = 1_800_000_000.0 - 1_800_000_000.0 % HOUR_S  # the start of a clock hour
CAPS = BudgetCaps(identity_s=600, address_s=900, prefix_s=1500, global_s=2400, per_voucher_s=300)


def budget(caps: BudgetCaps = CAPS) -> NewcomerBudget:
    return NewcomerBudget(MemoryBudgetCounter(), caps)


def served(b: NewcomerBudget, identity: str, address: str, track: str, upto_s: float, at: float = T0) -> bool:
    try:
        b.serve(identity=identity, address=address, track=track, upto_s=upto_s, now=at)
    except NewcomerLimit:
        return False
    return True


def test_hearing_a_track_again_costs_nothing_only_new_audio_counts() -> None:
    b = budget()
    assert served(b, "a", "198.51.100.1", "t1", 300)
    assert served(b, "a", "198.51.100.1", "t1", 300)  # again: nothing new
    assert served(b, "a", "198.51.100.1", "t1", 100)  # a seek back: nothing new
    assert served(b, "a", "198.51.100.1", "t2", 300)  # 600 s: the identity's cap, reached exactly
    assert not served(b, "a", "198.51.100.1", "t3", 1)
    assert served(b, "a", "198.51.100.1", "t1", 300)  # what it already has stays servable


@pytest.mark.parametrize("seed", range(5))
def test_many_identities_at_one_address_share_its_cap(seed: int) -> None:
    rng = random.Random(seed)
    b = budget()
    total = 0.0
    for i in range(200):
        upto = rng.uniform(10, 240)
        if served(b, f"acc{i}", "198.51.100.1", f"t{i}", upto):
            total += upto
    assert CAPS.address_s - 240 < total <= CAPS.address_s  # accounts do not multiply the address's audio


def test_prefix_and_global_caps_bind_across_addresses() -> None:
    b = budget()
    got_prefix = sum(served(b, f"a{i}", f"203.0.113.{i}", f"t{i}", 100) * 100 for i in range(1, 100))
    assert got_prefix == CAPS.prefix_s  # one /24, each address far under its own cap
    got_global = sum(served(b, f"g{i}", f"192.0.{i}.1", f"u{i}", 100) * 100 for i in range(1, 100))
    assert got_global == CAPS.global_s - CAPS.prefix_s  # other /24s: only the global cap was left


def test_a_refused_charge_changes_nothing_in_any_scope() -> None:
    b = budget(BudgetCaps(identity_s=600, address_s=700, prefix_s=5000))
    assert served(b, "a", "198.51.100.1", "t1", 400)
    assert not served(b, "b", "198.51.100.1", "t2", 400)  # the address would pass 700
    assert served(b, "b", "198.51.100.2", "t2", 600)  # b's identity budget was not touched by the refusal


def test_ipv6_networks_share_their_48() -> None:
    b = budget(BudgetCaps(identity_s=1000, address_s=1000, prefix_s=300))
    assert served(b, "a", "2001:db8:1:1::/64", "t1", 200)
    assert not served(b, "b", "2001:db8:1:2::/64", "t2", 200)
    assert served(b, "c", "2001:db8:2:1::/64", "t3", 200)
    assert scope_keys("2001:db8:1:2::/64")[1] == "net:2001:db8:1::/48"


def test_the_lead_counts_toward_every_budget() -> None:
    b = budget()
    started = 0
    for i in range(100):  # lead skimming: start plays, never stream beyond the lead
        try:
            b.start_play(identity="skim", address="198.51.100.9", track=f"t{i}", duration_s=240, now=T0)
            started += 1
        except NewcomerLimit:
            break
    assert started == CAPS.identity_s // 30  # 20 leads of 30 s fill the 600-s identity cap
    short = budget()
    short.start_play(identity="x", address="198.51.100.9", track="t", duration_s=12, now=T0)
    assert served(short, "x", "198.51.100.9", "u", CAPS.identity_s - 12)  # a 12-s track's lead is 12 s


def test_a_new_hour_starts_a_new_budget() -> None:
    b = budget()
    assert served(b, "a", "198.51.100.1", "t1", 600)
    assert not served(b, "a", "198.51.100.1", "t2", 60, at=T0 + HOUR_S - 1)
    assert served(b, "a", "198.51.100.1", "t2", 600, at=T0 + HOUR_S)


def test_established_listeners_vouch_for_their_network_for_a_day() -> None:
    b = budget()
    for i in range(3):  # a campus NAT: established listeners play there
        b.vouch(account=f"old{i}", address="198.51.100.50", now=T0)
    b.vouch(account="old0", address="198.51.100.50", now=T0 + 10)  # the same listener again counts once
    got = sum(served(b, f"n{i}", "198.51.100.50", f"t{i}", 100) * 100 for i in range(100))
    assert got == CAPS.address_s + 3 * CAPS.per_voucher_s
    later = T0 + 86400 + HOUR_S  # a day later the vouchers are gone
    assert sum(served(b, f"m{i}", "198.51.100.50", f"u{i}", 100, at=later) * 100 for i in range(100)) == CAPS.address_s


def test_the_refusal_names_no_scope_and_no_figure() -> None:
    b = budget()
    with pytest.raises(NewcomerLimit) as caught:
        b.serve(identity="a", address="198.51.100.1", track="t", upto_s=10_000, now=T0)
    text = f"{caught.value.message} {caught.value.hint}"
    assert caught.value.code == "newcomer_limit"
    assert not re.search(r"\d", text) and "198.51" not in text and "/24" not in text


def _session(
    account: str | None, verified: float | None, established: float | None, *, created: float = T0 - 10 * 86400
) -> ListenerSession:
    return ListenerSession("sid_1", account, T0, "198.51.100.1", "ua", None, created, established, verified)


def test_who_is_a_newcomer() -> None:
    assert is_newcomer(_session(None, None, None), now=T0)  # anonymous
    assert is_newcomer(_session("acc", None, T0 - 9 * 86400), now=T0)  # established but never verified
    assert is_newcomer(_session("acc", T0 - 5 * 86400, None), now=T0)  # verified, no listening history yet
    assert not is_newcomer(_session("acc", T0 - 9 * 86400, T0 - 8 * 86400), now=T0)
    # established a day ago at 3 days old (a sleeper's few honest plays): on probation, still charged
    sleeper = _session("acc", T0 - 4 * 86400, T0 - 86400, created=T0 - 4 * 86400)
    assert is_newcomer(sleeper, now=T0)
    assert not is_newcomer(sleeper, now=T0 - 86400 + PROBATION_S)
    # a months-old account whose first honest plays were yesterday (history from before the shield kept it)
    assert not is_newcomer(_session("acc", T0 - 60 * 86400, T0 - 86400, created=T0 - 60 * 86400), now=T0)


def test_a_sleeper_established_yesterday_shares_its_address_cap_with_its_peers() -> None:
    b = budget(BudgetCaps(identity_s=3600, address_s=600, prefix_s=600))
    sleepers = [_session(f"acc_s{i}", T0 - 4 * 86400, T0 - 86400, created=T0 - 4 * 86400) for i in range(10)]
    served_s = 0
    for i, s in enumerate(sleepers):
        try:
            b.on_play(s, address="198.51.100.1", track=f"t{i}", duration_s=240, now=T0)
            b.on_stream(s, address="198.51.100.1", track=f"t{i}", upto_s=240, now=T0)
            served_s += 240
        except NewcomerLimit:
            pass
    assert served_s == 480  # two whole tracks fit under the address's 600 s; ten sleepers do not make it more


def test_established_listeners_are_never_charged() -> None:
    b = budget(BudgetCaps(identity_s=60, address_s=60, prefix_s=60))
    old = _session("acc_old", T0 - 9 * 86400, T0 - 8 * 86400)
    for i in range(50):
        b.on_play(old, address="198.51.100.1", track=f"t{i}", duration_s=240, now=T0)
        b.on_stream(old, address="198.51.100.1", track=f"t{i}", upto_s=240, now=T0)
    new = _session("acc_new", None, None)
    b.on_play(new, address="198.51.100.1", track="t0", duration_s=240, now=T0)
    with pytest.raises(NewcomerLimit):
        b.on_stream(new, address="198.51.100.1", track="t0", upto_s=240, now=T0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("off", None),
        (
            "identity=1,address=2,prefix=4,global=50,voucher=0.5",
            BudgetCaps(identity_s=3600, address_s=7200, prefix_s=14400, global_s=180000, per_voucher_s=1800),
        ),
        (
            "address_day=10,global_day=100,voucher_day=2",
            BudgetCaps(address_day_s=36000, global_day_s=360000, per_voucher_day_s=7200),
        ),
        ("", BudgetCaps()),
        ("address=5", BudgetCaps(address_s=18000)),
    ],
)
def test_caps_parse_from_settings(text: str, expected: BudgetCaps | None) -> None:
    assert parse_caps(text) == expected


@pytest.mark.parametrize("bad", ["address", "adress=3", "address=-1", "prefix=x", "global=0"])
def test_bad_caps_are_refused_with_a_hint(bad: str) -> None:
    with pytest.raises(InvalidInput):
        parse_caps(bad)


def test_the_day_cap_binds_across_hours_and_a_new_day_starts_over() -> None:
    big = 100 * HOUR_S
    b = budget(BudgetCaps(identity_s=1000, identity_day_s=2500, address_s=big, prefix_s=big, address_day_s=big,
                          prefix_day_s=big))  # fmt: skip
    day0 = T0 - T0 % 86400
    got = [sum(served(b, "a", "198.51.100.1", f"h{h}t{i}", 100, at=day0 + h * HOUR_S) * 100 for i in range(20))
           for h in range(4)]  # fmt: skip
    assert got == [1000, 1000, 500, 0]
    assert sum(served(b, "a", "198.51.100.1", f"d{i}", 100, at=day0 + 86400) * 100 for i in range(20)) == 1000
