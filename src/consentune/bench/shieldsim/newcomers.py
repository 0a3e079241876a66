"""What real newcomers need: the listener model's audio per clock hour, per identity, address, /24 and platform.

Measured on the model's own session plans (no server needed), for the users
who sign up during the simulation.  Every second of listening is counted as
new audio, an upper bound on *distinct* audio (favourites and replays are
free under the budget); a skipped track's lead (at most 30 s fetched, about
a fifth of plays) is added on top.  ``docs/shield-detection.md`` states the
rule that turns these figures into the default caps.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from consentune.bench.shieldsim.listeners import DAY_S, HOUR_S, User

SKIP_SHARE, SKIP_LEAD_S, MEAN_PLAY_S = 0.2, 30.0, 210.0


def newcomer_need(users: Sequence[User], *, start: float) -> dict[str, object]:
    """Per scope: the hourly seconds of newcomer audio (p50, p99, max over hours with any) and per identity-day."""
    hourly: dict[str, dict[tuple[str, int], float]] = {k: {} for k in ("identity", "address", "prefix", "global")}
    daily: dict[tuple[int, int], float] = {}
    overhead = 1.0 + SKIP_SHARE * SKIP_LEAD_S / MEAN_PLAY_S
    for u in users:
        if u.signs_up_at is not None or u.anonymous:
            continue  # only listeners who are new during the simulation
        keys = {"identity": str(u.index), "address": u.address, "prefix": u.address.rsplit(".", 1)[0], "global": "*"}
        for at, length in u.sessions:
            for hour, seconds in _by_hour(at, length):
                for scope, key in keys.items():
                    hourly[scope][(key, hour)] = hourly[scope].get((key, hour), 0.0) + seconds * overhead
                day = (u.index, int((hour * HOUR_S - start) // DAY_S))
                daily[day] = daily.get(day, 0.0) + seconds * overhead
    out: dict[str, object] = {scope: _spread(list(c.values())) for scope, c in hourly.items()}
    out["identity_day_h"] = _spread([v / HOUR_S for v in daily.values()])
    out["newcomers"] = len({i for i, _ in daily})
    return out


def _by_hour(at: float, length: float) -> list[tuple[int, float]]:
    pieces, end = [], at + length
    while at < end:
        hour = int(at // HOUR_S)
        upto = min(end, (hour + 1) * HOUR_S)
        pieces.append((hour, upto - at))
        at = upto
    return pieces


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0, "n": 0}
    ordered = sorted(values)
    return {"p50": statistics.median(ordered), "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "max": ordered[-1], "n": len(ordered)}  # fmt: skip


__all__ = ["newcomer_need"]
