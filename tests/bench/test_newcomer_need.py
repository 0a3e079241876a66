"""The newcomers' need the budget caps are set from: listening per clock hour and day, per scope."""

from __future__ import annotations

import pytest

from consentune.bench.shieldsim.listeners import HOUR_S, User
from consentune.bench.shieldsim.newcomers import MEAN_PLAY_S, SKIP_LEAD_S, SKIP_SHARE, newcomer_need

START = 1_800_000_000.0 - 1_800_000_000.0 % 86400
OVERHEAD = 1.0 + SKIP_SHARE * SKIP_LEAD_S / MEAN_PLAY_S


def user(index: int, address: str, sessions: list[tuple[float, float]], *, new: bool = True) -> User:
    return User(index, "regular", address, False, "ua", None if new else START - 86400, [], sessions)


def test_listening_is_split_at_clock_hours_and_summed_per_scope() -> None:
    users = [
        user(1, "198.51.100.1", [(START + 0.5 * HOUR_S, 1.0 * HOUR_S)]),  # half in hour 0, half in hour 1
        user(2, "198.51.100.1", [(START + 0.5 * HOUR_S, 0.5 * HOUR_S)]),  # the same NAT address
        user(3, "198.51.100.9", [(START + 0.25 * HOUR_S, 0.5 * HOUR_S)]),  # the same /24
        user(4, "203.0.113.5", [(START, 3 * HOUR_S)], new=False),  # signed up before: not a newcomer
    ]
    need = newcomer_need(users, start=START)
    assert need["newcomers"] == 3
    identity, address, prefix, platform = (need[k] for k in ("identity", "address", "prefix", "global"))
    assert isinstance(identity, dict) and isinstance(address, dict) and isinstance(prefix, dict)
    assert isinstance(platform, dict)
    assert identity["max"] == pytest.approx(0.5 * HOUR_S * OVERHEAD)
    assert address["max"] == pytest.approx(1.0 * HOUR_S * OVERHEAD)  # users 1 and 2 in hour 0
    assert prefix["max"] == pytest.approx(1.5 * HOUR_S * OVERHEAD)  # and user 3
    assert platform["max"] == prefix["max"]
    day = need["identity_day_h"]
    assert isinstance(day, dict) and day["max"] == pytest.approx(1.0 * OVERHEAD)
