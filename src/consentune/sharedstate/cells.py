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

import hashlib
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgpack

from consentune.errors import StorageError
from consentune.sharedstate.ratelimit import LUA_TAKE_FUNCTION
from consentune.shield.cells import Cell, CellWrite, Take

if TYPE_CHECKING:
    import redis

# Both scripts take one msgpack argument and the load answers one msgpack string: Redis's Lua has cmsgpack,
# and one blob each way costs the client far less than a dozen arguments and a nested reply.

# KEYS: the cells.  Answers msgpack of [[version, data] per cell].
_LUA_LOAD = """
local cells = {}
for i = 1, #KEYS do
  cells[i] = redis.call('HMGET', KEYS[i], 'v', 'd')
end
return cmsgpack.pack(cells)
"""

# KEYS: the cells, then (with counts) the counters hash.  ARGV[1]: msgpack of
# [ttl ms, [[expected version (-1: any), data (false: delete)] per cell], [[counter, increment], ...]].
_LUA_COMMIT = """
local req = cmsgpack.unpack(ARGV[1])
local ttl, cells, counts = req[1], req[2], req[3]
for i, c in ipairs(cells) do
  if c[1] >= 0 and tonumber(redis.call('HGET', KEYS[i], 'v') or '0') ~= c[1] then return 0 end
end
for i, c in ipairs(cells) do
  if c[2] == false then
    redis.call('DEL', KEYS[i])
  else
    redis.call('HINCRBY', KEYS[i], 'v', 1)
    redis.call('HSET', KEYS[i], 'd', c[2])
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
for _, pair in ipairs(counts) do
  redis.call('HINCRBY', KEYS[#cells + 1], pair[1], pair[2])
end
return 1
"""

# KEYS: the cells, then the buckets.  ARGV[1]: msgpack of [how many leading cells are block records, now,
# [[per_second, burst, cost] per bucket]].  Answers msgpack of [[[version, data] per cell], [[admitted,
# retry after] per bucket up to the first refused] or false when a block record is live].  A block record is
# "<record id> <until>" (shield.blockboard).
_LUA_LOAD_AND_TAKE = (
    LUA_TAKE_FUNCTION
    + """
local req = cmsgpack.unpack(ARGV[1])
local nblocks, now, buckets = req[1], req[2], req[3]
local ncells = #KEYS - #buckets
local cells = {}
local blocked = false
for i = 1, ncells do
  local row = redis.call('HMGET', KEYS[i], 'v', 'd')
  cells[i] = row
  if i <= nblocks and row[2] then
    local untl = tonumber(string.match(row[2], '^%S+ (%S+)$'))
    if untl == nil or now < untl then blocked = true end
  end
end
if blocked then return cmsgpack.pack({cells, false}) end
local takes = {}
for j, b in ipairs(buckets) do
  local got = take(KEYS[ncells + j], b[1], b[2], now, b[3])
  takes[j] = got
  if got[1] == 0 then break end
end
return cmsgpack.pack({cells, takes})
"""
)


class RedisCells:
    """:class:`~consentune.shield.cells.SharedCells` in one Redis (not Redis Cluster: a commit spans keys).

    ``buckets``: the key prefix of the deployment's Redis rate limiter
    (:class:`~consentune.sharedstate.ratelimit.RedisRateLimiter`), whose
    buckets :meth:`load_and_take` takes from in the same round trip as the
    cells; counters live in one hash, ``<prefix>shield:counts``, without expiry.
    """

    def __init__(self, client: redis.Redis, *, prefix: str, buckets: str | None = None) -> None:
        self._client = client
        self._prefix = f"{prefix}shield:"
        self._buckets = f"{prefix}rl:" if buckets is None else buckets
        self._counts_key = f"{prefix}shield:counts"
        self._scripts = _Scripts(client)

    def load(self, keys: Sequence[str]) -> list[Cell]:
        rows = msgpack.unpackb(self._scripts.run(_LUA_LOAD, [self._prefix + k for k in keys], []), raw=True)
        return [Cell(int(v) if v else 0, None if d is False else d) for v, d in rows]

    def load_and_take(
        self, keys: Sequence[str], *, blocks: int, takes: Sequence[Take], now: float
    ) -> tuple[list[Cell], list[tuple[bool, float]] | None]:
        """:meth:`~consentune.shield.cells.ReadsAndTakes.load_and_take` as one Lua script."""
        request = _packed([blocks, float(now), [[float(t.per_second), float(t.burst), float(t.cost)] for t in takes]])
        names = [self._prefix + k for k in keys] + [self._buckets + t.key for t in takes]
        rows, taken = msgpack.unpackb(self._scripts.run(_LUA_LOAD_AND_TAKE, names, [request]), raw=True)
        cells = [Cell(int(v) if v else 0, None if d is False else d) for v, d in rows]
        return cells, None if taken is False else [(bool(ok), float(retry)) for ok, retry in taken]

    def commit(self, writes: Sequence[CellWrite], *, ttl_s: float, counts: Mapping[str, int] | None = None) -> bool:
        cells = [[-1 if w.expected is None else w.expected, False if w.data is None else w.data] for w in writes]
        names = [self._prefix + w.key for w in writes]
        counted = [[name, n] for name, n in (counts or {}).items() if n]
        if counted:
            names.append(self._counts_key)
        return bool(self._scripts.run(_LUA_COMMIT, names, [_packed([max(1, round(ttl_s * 1000)), cells, counted])]))

    def counters(self) -> dict[str, int]:
        try:
            found: dict[bytes, bytes] = self._client.hgetall(self._counts_key)  # type: ignore[assignment]
        except Exception as exc:
            raise _unreachable(exc) from None
        return {name.decode(): int(n) for name, n in found.items()}


class _Scripts:
    """Lua scripts sent on a connection of the calling thread's own, straight through redis-py's connection.

    The client's per-command path (pool checkout, retries, instrumentation) costs ~3x the CPU of
    sending a command and reading its reply on a connection, and a listener request sends two; the
    pool still owns every connection (``client.close()`` ends them).  A script Redis does not know
    (a restart, ``SCRIPT FLUSH``) is sent whole once.  Nothing is retried: a failed commit leaves its
    cells unchanged or changed, which the next compare-and-set settles.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._local = threading.local()
        self._sha: dict[str, str] = {}

    def run(self, source: str, keys: Sequence[str], args: Sequence[bytes]) -> Any:
        sha = self._sha.get(source) or self._sha.setdefault(source, hashlib.sha1(source.encode()).hexdigest())
        conn = self._connection()
        try:
            try:
                conn.send_packed_command([_command(b"EVALSHA", sha, keys, args)])
                return conn.read_response()
            except _no_script():
                conn.send_packed_command([_command(b"EVAL", source, keys, args)])
                return conn.read_response()
        except Exception as exc:
            if not isinstance(exc, _response_error()):  # a reply may be half read: start a new connection
                conn.disconnect()
            raise _unreachable(exc) from None

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._client.connection_pool.get_connection()
        return conn


def _command(name: bytes, script: str, keys: Sequence[str], args: Sequence[bytes]) -> bytes:
    """One ``EVAL``/``EVALSHA`` in the Redis protocol (arrays of bulk strings), packed here at a fraction
    of what the client's general packer costs."""
    parts = [name, script.encode(), str(len(keys)).encode(), *(k.encode() for k in keys), *args]
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


def _no_script() -> type[Exception]:
    from redis.exceptions import NoScriptError

    return NoScriptError


def _response_error() -> type[Exception]:
    from redis.exceptions import ResponseError

    return ResponseError


def _packed(value: object) -> bytes:
    """msgpack as Redis's Lua reads it: bytes as (old-style) raw strings, floats as doubles."""
    packed: bytes = msgpack.packb(value, use_bin_type=False)
    return packed


def _unreachable(exc: Exception) -> StorageError:
    return StorageError(
        f"the shield's shared state (Redis) failed: {type(exc).__name__}: {exc}",
        hint="check CONSENTUNE_REDIS_URL and the Redis server; /v1/ready names it when it is down",
    )


__all__ = ["RedisCells"]
