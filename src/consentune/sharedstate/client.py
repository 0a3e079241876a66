"""One Redis connection pool per process, imported lazily (``pip install 'consentune[redis]'``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from consentune.errors import StorageError

if TYPE_CHECKING:
    import redis


def connect(url: str) -> redis.Redis:
    """A client for ``url`` (``redis://host:port/db``); nothing is sent until first use."""
    try:
        import redis as redis_lib
    except ModuleNotFoundError:
        raise StorageError("CONSENTUNE_REDIS_URL is set but the redis client is missing",
                           hint="pip install 'consentune[redis]'") from None  # fmt: skip
    return redis_lib.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)


def ping(client: redis.Redis) -> None:
    """Return if Redis answers; raise :class:`~consentune.errors.StorageError` if not (readiness)."""
    try:
        client.ping()
    except Exception as exc:
        raise StorageError(f"Redis is unreachable: {exc}", hint="check CONSENTUNE_REDIS_URL and the server") from None


__all__ = ["connect", "ping"]
