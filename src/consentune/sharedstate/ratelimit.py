"""Token-bucket rate limits in Redis, shared by every worker: one Lua script takes tokens atomically.

Same bucket rule as :func:`consentune.shield.ratelimit.take_tokens`; a key
expires once its bucket would be full again, so memory holds only buckets
in use.  After a Redis restart every bucket starts full (a short burst more).
"""

from __future__ import annotations

from consentune.errors import InvalidInput, StorageError
from consentune.shield.ratelimit import Rate, check_cost

# One bucket: refill then take, as take_tokens; the key expires once the bucket would be full again.  Returns
# {admitted, retry_after as a string} (Redis truncates Lua numbers to integers, hence the string).
LUA_TAKE_FUNCTION = """
local function take(key, rate, burst, now, cost)
  local state = redis.call('HMGET', key, 't', 'ts')
  local tokens = tonumber(state[1])
  local last = tonumber(state[2])
  if tokens == nil or last == nil then
    tokens = burst
    last = now
  end
  if now > last then
    tokens = math.min(burst, tokens + (now - last) * rate)
    last = now
  end
  local admitted = 0
  local retry = 0
  if tokens >= cost then
    tokens = tokens - cost
    admitted = 1
  else
    retry = (cost - tokens) / rate
  end
  redis.call('HSET', key, 't', string.format('%.17g', tokens), 'ts', string.format('%.17g', last))
  redis.call('EXPIRE', key, math.ceil((burst - tokens) / rate) + 1)
  return {admitted, string.format('%.17g', retry)}
end
"""

# KEYS[1] bucket; ARGV: per_second, burst, now, cost.
_LUA_TAKE = (
    LUA_TAKE_FUNCTION
    + """
return take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
"""
)


class RedisRateLimiter:
    """Buckets in Redis, updated atomically by one Lua script (EVALSHA, falling back to EVAL).

    A key expires once its bucket would be full again, measured in Redis's
    own seconds; with a simulated clock that runs slower than real time a
    bucket may be forgotten early (and so refill early).
    """

    def __init__(self, url: str, *, prefix: str = "ctn:rl:") -> None:
        try:
            import redis
        except ImportError:
            raise InvalidInput(
                "the Redis rate limiter needs the 'redis' package",
                hint="pip install 'consentune[redis]'",
            ) from None
        self._prefix = prefix
        self._errors: type[Exception] = redis.RedisError
        self._client: redis.Redis = redis.Redis.from_url(url)
        self._take = self._client.register_script(_LUA_TAKE)

    def hit(self, key: str, rate: Rate, *, now: float, cost: float = 1.0) -> tuple[bool, float]:
        check_cost(rate, cost)
        args = [repr(float(v)) for v in (rate.per_second, rate.burst, now, cost)]
        try:
            admitted, retry = self._take(keys=[self._prefix + key], args=args)
        except self._errors as exc:
            raise StorageError(
                f"Redis rate limiter failed: {exc}", hint="check that Redis is running and reachable"
            ) from exc
        return bool(admitted), float(retry)

    def close(self) -> None:
        self._client.close()


__all__ = ["LUA_TAKE_FUNCTION", "RedisRateLimiter"]
