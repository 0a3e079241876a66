"""Shared state in Redis for many workers (when ``CONSENTUNE_REDIS_URL`` is set).

An adapter room beside ``storage/``: capability code defines the ports
(:class:`~consentune.gate.dedup.UseDedup`,
:class:`~consentune.fraud.live.LiveEventLog`) and never imports Redis; the
composition root plugs these in.  What each key holds and what a Redis
restart costs is listed in ``docs/operations.md``.
"""

from consentune.sharedstate.client import connect, ping
from consentune.sharedstate.dedup import RedisUseDedup
from consentune.sharedstate.fraudlog import RedisLiveEventLog
from consentune.sharedstate.notices import RedisRevocationNotices

__all__ = ["RedisLiveEventLog", "RedisRevocationNotices", "RedisUseDedup", "connect", "ping"]
