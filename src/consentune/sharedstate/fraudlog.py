"""The live fraud detector's shared intake: one Redis stream every worker replays in order."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from consentune.errors import StorageError
from consentune.fraud.live import event_from_json, event_to_json
from consentune.types import PlayEvent

if TYPE_CHECKING:
    import redis

PAGE = 500


class RedisLiveEventLog:
    """Batches as stream entries (``XADD``, trimmed to about ``max_batches``); ``epoch`` marks a lost stream.

    The epoch key is created with the stream's first batch; after a Redis
    restart it is gone, a new one is made, and every worker's detector starts
    over (the live windows are lost, as when one worker restarts).
    """

    def __init__(self, client: redis.Redis, *, prefix: str, max_batches: int = 100_000) -> None:
        self._client = client
        self._stream = f"{prefix}fraud:events"
        self._epoch_key = f"{prefix}fraud:epoch"
        self._max = max_batches

    def epoch(self) -> str:
        try:
            return self._epoch()
        except StorageError:
            raise
        except Exception as exc:
            raise _unreachable(exc) from None

    def _epoch(self) -> str:
        current = self._client.get(self._epoch_key)
        if current is None:
            self._client.set(self._epoch_key, secrets.token_hex(8).encode(), nx=True)
            current = self._client.get(self._epoch_key)
        return current.decode() if isinstance(current, bytes) else str(current)

    def append(self, events: Sequence[PlayEvent]) -> str:
        payload = json.dumps([event_to_json(e) for e in events], separators=(",", ":"))
        try:
            position = self._client.xadd(self._stream, {b"e": payload.encode()}, maxlen=self._max, approximate=True)
        except Exception as exc:
            raise _unreachable(exc) from None
        return position.decode() if isinstance(position, bytes) else str(position)

    def read(self, *, after: str | None, upto: str) -> list[tuple[str, list[PlayEvent]]]:
        out: list[tuple[str, list[PlayEvent]]] = []
        start = "-" if after is None else f"({after}"
        while True:
            try:
                page: list[tuple[Any, dict[bytes, bytes]]] = self._client.xrange(  # type: ignore[assignment]
                    self._stream, min=start, max=upto, count=PAGE
                )
            except Exception as exc:
                raise _unreachable(exc) from None
            for raw_id, fields in page:
                position = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                out.append((position, [event_from_json(e) for e in json.loads(fields[b"e"])]))
            if len(page) < PAGE:
                return out
            start = f"({out[-1][0]}"


def _unreachable(exc: Exception) -> StorageError:
    return StorageError(
        f"the shared fraud intake (Redis) failed: {type(exc).__name__}: {exc}",
        hint="check CONSENTUNE_REDIS_URL and the Redis server; /v1/ready names it when it is down",
    )


__all__ = ["RedisLiveEventLog"]
