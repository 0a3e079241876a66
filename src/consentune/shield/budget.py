"""Shared audio budgets for unestablished listeners: farms of new identities stop scaling with identities.

Behaviour rules cannot tell a scraper that listens in real time from a new
listener, so the audio that *all* new or unverified identities together can
take is capped instead: per identity, per address, per network prefix (IPv4
/24, IPv6 /48) and platform-wide, in seconds of **distinct** catalogue audio
per clock hour and per UTC day.  Distinct: each (scope, window, track) is charged the furthest
position served, so hearing a passage again, a second device or a re-fetch
costs nothing, and a skip costs only what was fetched.  The 30-s lead a play
may fetch at once is charged when the play starts, so skimming leads uses the
budget like any other audio.

Caps come from what real newcomers need (``docs/shield-detection.md``:
*Budgets for new identities*).  An address or prefix where established
listeners were seen in the last day (a campus or office NAT) earns more: each
*voucher* adds ``per_voucher_s``, so the crowd behind a busy NAT is not
refused while a farm's fresh address, vouched for by nobody, is.

The counters live behind :class:`BudgetCounter` so every worker and host
shares them: Redis (``consentune.sharedstate.budget``) or the SQL database
(``consentune.storage.budget_sql``); :class:`MemoryBudgetCounter` serves one
process.  A refusal is :class:`~consentune.errors.NewcomerLimit`, which names
no scope, cap or figure.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, fields

from consentune.errors import InvalidInput, NewcomerLimit
from consentune.ports import ListenerSession
from consentune.shield.detect import PROBATION_S, network_prefix, on_probation
from consentune.shield.lru import LruCache

HOUR_S = 3600.0
DAY_HOURS = 24
VOUCHER_MEMORY_S = 86400.0
LEAD_S = 30.0


@dataclass(frozen=True)
class BudgetCaps:
    """Seconds of distinct audio all unestablished identities of one scope may get together, per clock hour
    and per UTC day (``*_day_s``).

    Defaults follow the rule in ``docs/shield-detection.md``: 1.5 × the worst hour (day) the simulator's
    newcomers needed, rounded up to a half hour (``consentune bench shield`` prints those needs).
    ``global_s``/``global_day_s`` of None leave the platform-wide caps off (a platform sets them from its
    own sign-up rate).  Each established listener seen at an address (prefix) in the last day adds
    ``per_voucher_s`` an hour and ``per_voucher_day_s`` a day there, up to ``max_vouched_s`` (``_day_s``).
    """

    identity_s: float = 2.0 * HOUR_S
    address_s: float = 5.0 * HOUR_S
    prefix_s: float = 5.0 * HOUR_S
    global_s: float | None = None
    identity_day_s: float = 12.5 * HOUR_S
    address_day_s: float = 30.0 * HOUR_S
    prefix_day_s: float = 30.0 * HOUR_S
    global_day_s: float | None = None
    per_voucher_s: float = 1.0 * HOUR_S
    per_voucher_day_s: float = 6.0 * HOUR_S
    max_vouched_s: float = 200.0 * HOUR_S
    max_vouched_day_s: float = 2000.0 * HOUR_S

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InvalidInput(f"newcomer budget {name}={value!r}", hint="give a positive number of seconds")


@dataclass(frozen=True)
class Charge:
    """One scope's counter in one window (``window``: the hour it starts, in hours since the epoch)."""

    key: str
    cap_s: float
    window: int
    ttl_s: float = 2 * HOUR_S


class BudgetCounter:
    """Port: shared counters of distinct audio per (scope, hour, track) and voucher sets per scope.

    ``charge`` is all or nothing across ``charges``: for each (scope, window) the track's
    new charge is ``max(0, upto_s - already charged for this track)``; if any
    scope's total would pass its cap nothing changes and it returns False.
    Implementations must make that atomic across workers.
    """

    def charge(self, charges: Sequence[Charge], *, track: str, upto_s: float) -> bool:
        raise NotImplementedError

    def vouch(self, keys: Sequence[str], *, member: str, now: float) -> None:
        """Remember that established ``member`` was seen at each scope (for a day)."""
        raise NotImplementedError

    def vouchers(self, keys: Sequence[str], *, now: float) -> list[int]:
        """Distinct established members seen at each scope in the last day."""
        raise NotImplementedError


class MemoryBudgetCounter(BudgetCounter):
    """One process's counters (tests, single-worker servers); old hours are dropped as time moves on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int], dict[str, float]] = {}
        self._totals: dict[tuple[str, int], float] = {}
        self._vouchers: dict[str, dict[str, float]] = {}

    def charge(self, charges: Sequence[Charge], *, track: str, upto_s: float) -> bool:
        with self._lock:
            self._forget_before(max(c.window for c in charges) - DAY_HOURS - 1)
            deltas = [max(0.0, upto_s - self._seen.get((c.key, c.window), {}).get(track, 0.0)) for c in charges]
            pairs = list(zip(charges, deltas, strict=True))
            if any(d > 0 and self._totals.get((c.key, c.window), 0.0) + d > c.cap_s for c, d in pairs):
                return False
            for c, d in pairs:
                if d > 0:
                    self._seen.setdefault((c.key, c.window), {})[track] = upto_s
                    self._totals[(c.key, c.window)] = self._totals.get((c.key, c.window), 0.0) + d
            return True

    def vouch(self, keys: Sequence[str], *, member: str, now: float) -> None:
        with self._lock:
            for key in keys:
                self._vouchers.setdefault(key, {})[member] = now

    def vouchers(self, keys: Sequence[str], *, now: float) -> list[int]:
        with self._lock:
            return [sum(1 for at in self._vouchers.get(k, {}).values() if now - at < VOUCHER_MEMORY_S) for k in keys]

    def _forget_before(self, hour: int) -> None:
        for key in [k for k in self._totals if k[1] < hour]:
            self._totals.pop(key, None)
            self._seen.pop(key, None)


class NewcomerBudget:
    """Charges audio served to unestablished identities against every scope's shared hourly and daily caps."""

    def __init__(
        self,
        counter: BudgetCounter,
        caps: BudgetCaps | None = None,
        *,
        lead_s: float = LEAD_S,
        probation_s: float = PROBATION_S,
    ) -> None:
        self._counter = counter
        self.caps = caps or BudgetCaps()
        self.lead_s = lead_s
        self.probation_s = probation_s  # an account established this recently is still charged (sleepers)
        self._vouched: LruCache[tuple[str, str], float] = LruCache(100_000)  # written at most hourly per pair

    def on_play(self, session: ListenerSession, *, address: str, track: str, duration_s: float, now: float) -> None:
        """A play starts: a newcomer is charged its lead; an established listener vouches for its network."""
        if is_newcomer(session, now=now, probation_s=self.probation_s):
            self.start_play(identity=identity_of(session), address=address, track=track, duration_s=duration_s,
                            now=now)  # fmt: skip
        elif session.account_id is not None:
            self.vouch(account=session.account_id, address=address, now=now)

    def on_stream(self, session: ListenerSession, *, address: str, track: str, upto_s: float, now: float) -> None:
        """Audio up to ``upto_s`` is about to be served: a newcomer is charged for it."""
        if is_newcomer(session, now=now, probation_s=self.probation_s):
            self.serve(identity=identity_of(session), address=address, track=track, upto_s=upto_s, now=now)

    def start_play(self, *, identity: str, address: str, track: str, duration_s: float, now: float) -> None:
        """Charge the lead a new play may fetch at once; raises :class:`NewcomerLimit` when a cap is used up."""
        self.serve(identity=identity, address=address, track=track, upto_s=min(self.lead_s, duration_s), now=now)

    def serve(self, *, identity: str, address: str, track: str, upto_s: float, now: float) -> None:
        """Charge audio served up to ``upto_s`` seconds into ``track``; raises :class:`NewcomerLimit` if over."""
        if upto_s <= 0:
            return
        if not self._counter.charge(self._charges(identity, address, now), track=track, upto_s=float(upto_s)):
            raise NewcomerLimit(
                "audio for new listeners is busy on this network right now",
                hint="try again later; accounts that are verified and have listened for a few days are not limited",
            )

    def vouch(self, *, account: str, address: str, now: float) -> None:
        """An established listener played here: its address and prefix may give newcomers more (for a day;
        refreshed at most hourly per listener and address, so established plays rarely write)."""
        last = self._vouched.get((account, address))
        if last is not None and 0 <= now - last < HOUR_S:
            return
        self._counter.vouch(scope_keys(address)[:2], member=account, now=now)
        self._vouched.put((account, address), now)

    def vouchers_at(self, address: str, *, now: float) -> tuple[int, int]:
        """Established listeners seen in the last day at ``address`` and at its prefix (for operators)."""
        address_key, prefix_key = scope_keys(address)[:2]
        at_address, at_prefix = self._counter.vouchers([address_key, prefix_key], now=now)
        return at_address, at_prefix

    def _charges(self, identity: str, address: str, now: float) -> list[Charge]:
        caps = self.caps
        address_key, prefix_key = scope_keys(address)[:2]
        at_address, at_prefix = self._counter.vouchers([address_key, prefix_key], now=now)
        hour = hour_of(now)
        day = hour - hour % DAY_HOURS
        charges: list[Charge] = []
        for key, hourly, daily, vouchers in (
            (f"id:{identity}", caps.identity_s, caps.identity_day_s, 0),
            (address_key, caps.address_s, caps.address_day_s, at_address),
            (prefix_key, caps.prefix_s, caps.prefix_day_s, at_prefix),
            ("global", caps.global_s, caps.global_day_s, 0),
        ):
            if hourly is not None:
                cap = min(caps.max_vouched_s, hourly + vouchers * caps.per_voucher_s) if vouchers else hourly
                charges.append(Charge(key, cap, hour))
            if daily is not None:
                cap = min(caps.max_vouched_day_s, daily + vouchers * caps.per_voucher_day_s) if vouchers else daily
                charges.append(Charge(f"{key}|day", cap, day, ttl_s=(DAY_HOURS + 1) * HOUR_S))
        return charges


def is_newcomer(session: ListenerSession, *, now: float, probation_s: float = PROBATION_S) -> bool:
    """Anonymous, unverified, not yet established (days old with honest plays; see the detector), or on
    probation (established less than ``probation_s`` ago while young): a sleeper that earned its standing
    with a few plays is still charged."""
    established = session.account_established_at
    return (
        session.account_id is None
        or session.account_verified_at is None
        or established is None
        or on_probation(
            created_at=session.account_created_at, established_at=established, now=now, probation_s=probation_s
        )
    )


def identity_of(session: ListenerSession) -> str:
    return f"account:{session.account_id}" if session.account_id else f"session:{session.id}"


def parse_caps(text: str) -> BudgetCaps | None:
    """``identity=2,address=5,prefix=5,global=100,voucher=1`` (hours of audio per hour; ``address_day=30``
    and so on per UTC day) or ``off``."""
    if text.strip().lower() in ("off", "0", "none"):
        return None
    names = {f.name.removesuffix("_s").replace("per_voucher", "voucher").replace("max_vouched", "max"): f.name
             for f in fields(BudgetCaps)}  # fmt: skip
    values: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, raw = part.partition("=")
        if name.strip() not in names:
            raise InvalidInput(f"newcomer budget {part!r}", hint=f"use {', '.join(names)} = hours, or off")
        try:
            values[names[name.strip()]] = float(raw) * HOUR_S
        except ValueError:
            raise InvalidInput(f"newcomer budget {part!r} is not a number of hours", hint="e.g. address=5") from None
    return BudgetCaps(**values)


def scope_keys(address: str) -> tuple[str, str, str]:
    """(address, prefix, global) counter keys; an address is its own prefix when it is one already."""
    return f"addr:{address}", f"net:{network_prefix(address)}", "global"


def hour_of(now: float) -> int:
    """The clock hour ``now`` (epoch seconds) falls in: budgets restart at every full hour."""
    return int(now // HOUR_S)


__all__ = [
    "LEAD_S",
    "BudgetCaps",
    "BudgetCounter",
    "Charge",
    "MemoryBudgetCounter",
    "NewcomerBudget",
    "hour_of",
    "identity_of",
    "is_newcomer",
    "parse_caps",
    "scope_keys",
]
