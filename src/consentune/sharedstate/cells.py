"""The shield's shared cells in Redis: workers on any host judge one picture of each listener.

Each cell is a hash ``{v: version, d: data}`` under ``<prefix>shield:<key>``,
expiring ``ttl_s`` after its last write (memory holds only what was active
lately; with ``maxmemory``, use ``volatile-lru``).  Loads are one pipelined
round trip; a commit is one Lua script that checks every expected version and
then writes all cells, so two workers never both win a race.  A Redis restart
without persistence forgets detector evidence, active streams and buckets:
listeners start clean, blocks already decided stay (they are in the database).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from consentune.errors import StorageError
from consentune.shield.cells import Cell, CellWrite

if TYPE_CHECKING:
    import redis

# KEYS: the cells; ARGV[1]: ttl in ms, then per cell: expected version ('' = any), 's' set | 'd' delete, data.
_LUA_COMMIT = """
for i = 1, #KEYS do
  local expected = ARGV[3 * i - 1]
  if expected ~= '' then
    local v = tonumber(redis.call('HGET', KEYS[i], 'v') or '0')
    if v ~= tonumber(expected) then return 0 end
  end
end
for i = 1, #KEYS do
  if ARGV[3 * i] == 'd' then
    redis.call('DEL', KEYS[i])
  else
    redis.call('HINCRBY', KEYS[i], 'v', 1)
    redis.call('HSET', KEYS[i], 'd', ARGV[3 * i + 1])
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
end
return 1
"""


class RedisCells:
    """:class:`~consentune.shield.cells.SharedCells` in one Redis (not Redis Cluster: a commit spans keys)."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}shield:"
        self._commit = client.register_script(_LUA_COMMIT)

    def load(self, keys: Sequence[str]) -> list[Cell]:
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(self._prefix + key, "v", "d")
        try:
            rows = pipe.execute()
        except Exception as exc:
            raise _unreachable(exc) from None
        return [Cell(int(v or 0), d) for v, d in rows]

    def commit(self, writes: Sequence[CellWrite], *, ttl_s: float) -> bool:
        args: list[str | bytes] = [str(max(1, round(ttl_s * 1000)))]
        for w in writes:
            args += ["" if w.expected is None else str(w.expected), "d" if w.data is None else "s", w.data or b""]
        try:
            return bool(self._commit(keys=[self._prefix + w.key for w in writes], args=args))
        except Exception as exc:
            raise _unreachable(exc) from None


def _unreachable(exc: Exception) -> StorageError:
    return StorageError(
        f"the shield's shared state (Redis) failed: {type(exc).__name__}: {exc}",
        hint="check CONSENTUNE_REDIS_URL and the Redis server; /v1/ready names it when it is down",
    )


__all__ = ["RedisCells"]
