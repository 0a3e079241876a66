"""Newcomer budget counters in Redis: one Lua script checks and charges every scope at once.

Keys (under the configured prefix): ``budget:<scope>:<window>:seen`` (hash
track -> seconds charged), ``budget:<scope>:<window>:total`` (float seconds),
both expiring when their window (an hour, or a day for ``…|day`` scopes) is over; ``vouch:<scope>`` (sorted set
member -> last seen), expiring a day after the last voucher.  After a Redis
restart without persistence the hour's counters start from zero (newcomers
get at most one extra hour's budget) and vouchers are earned again.  While
Redis is unreachable charges are allowed and logged: serving goes on, as
with the gate's use-log dedup.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from consentune.shield.budget import VOUCHER_MEMORY_S, BudgetCounter, Charge

if TYPE_CHECKING:
    import redis

logger = logging.getLogger("consentune.sharedstate")

# KEYS: seen_1, total_1, seen_2, total_2, ...; ARGV: upto_s, track, cap_1, ttl_1, cap_2, ttl_2, ...
_CHARGE = """
local n = #KEYS / 2
local upto = tonumber(ARGV[1])
local deltas = {}
for i = 1, n do
  local seen = tonumber(redis.call('HGET', KEYS[2 * i - 1], ARGV[2]) or '0')
  local d = upto - seen
  if d < 0 then d = 0 end
  deltas[i] = d
  if d > 0 and tonumber(redis.call('GET', KEYS[2 * i]) or '0') + d > tonumber(ARGV[1 + 2 * i]) then
    return 0
  end
end
for i = 1, n do
  if deltas[i] > 0 then
    redis.call('HSET', KEYS[2 * i - 1], ARGV[2], ARGV[1])
    redis.call('EXPIRE', KEYS[2 * i - 1], ARGV[2 + 2 * i])
    redis.call('INCRBYFLOAT', KEYS[2 * i], tostring(deltas[i]))
    redis.call('EXPIRE', KEYS[2 * i], ARGV[2 + 2 * i])
  end
end
return 1
"""


class RedisBudgetCounter(BudgetCounter):
    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._script: Any = client.register_script(_CHARGE)

    def charge(self, charges: Sequence[Charge], *, track: str, upto_s: float) -> bool:
        keys: list[str] = []
        args = [repr(float(upto_s)), track]
        for c in charges:
            base = f"{self._prefix}budget:{c.key}:{c.window}"
            keys += [f"{base}:seen", f"{base}:total"]
            args += [repr(float(c.cap_s)), str(int(c.ttl_s))]
        try:
            return bool(self._script(keys=keys, args=args))
        except Exception:  # redis errors of any kind: serve rather than refuse every newcomer
            logger.warning("newcomer budget: Redis unreachable; not charging until it is back", exc_info=True)
            return True

    def vouch(self, keys: Sequence[str], *, member: str, now: float) -> None:
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            name = f"{self._prefix}vouch:{key}"
            pipe.zadd(name, {member: now})
            pipe.zremrangebyscore(name, "-inf", now - VOUCHER_MEMORY_S)
            pipe.expire(name, int(VOUCHER_MEMORY_S))
        try:
            pipe.execute()
        except Exception:
            logger.warning("newcomer budget: Redis unreachable; voucher not recorded", exc_info=True)

    def vouchers(self, keys: Sequence[str], *, now: float) -> list[int]:
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.zcount(f"{self._prefix}vouch:{key}", now - VOUCHER_MEMORY_S, "+inf")
        try:
            return [int(n) for n in pipe.execute()]
        except Exception:
            logger.warning("newcomer budget: Redis unreachable; counting no vouchers", exc_info=True)
            return [0] * len(keys)


__all__ = ["RedisBudgetCounter"]
