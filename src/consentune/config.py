"""One typed, frozen settings object, read once from ``CONSENTUNE_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from consentune.errors import InvalidInput


@dataclass(frozen=True)
class Settings:
    """Where data lives and the limits the service enforces.

    ``trusted_proxies`` (``CONSENTUNE_TRUSTED_PROXIES``, comma-separated CIDRs) are the
    only peers whose forwarded headers are believed; ``redis_url`` shares rate
    limits across workers; ``shield_sim_clock`` (benchmarks only) lets a client
    set the shield's clock with the ``X-Consentune-Sim-Time`` header.

    ``identify_at_ingest`` (``CONSENTUNE_IDENTIFY_AT_INGEST``, default on; ``0`` turns it
    off) checks every new upload against the fingerprint index and indexes it; turn it off
    for bulk imports and run ``consentune index build`` afterwards.

    ``anonymous_audio`` (``CONSENTUNE_ANONYMOUS_AUDIO``: ``none``, the default, ``preview`` or
    ``full``) is what listeners without an account may hear: nothing (sign in to listen, as most
    streaming services require), the first ``preview_s`` seconds (``CONSENTUNE_PREVIEW_S``) of each
    track, or everything.

    ``signal_ttl_s`` bounds how long the public catalogue and the AI-use
    signals (robots.txt, TDMRep, headers, embedded XMP) may lag a new track;
    a consent change reaches the signals on the next request.

    ``database_url`` defaults to a SQLite file (WAL mode) inside ``home``;
    set ``CONSENTUNE_DATABASE_URL`` (e.g. ``postgresql+psycopg://host/db``)
    to scale out.  Blobs (original uploads) always live under ``home/blobs``.
    """

    home: Path
    database_url: str
    max_upload_bytes: int = 200 * 2**20
    max_duration_s: float = 1800.0
    log_origin: str = "consentune.local/ledger"
    host: str = "127.0.0.1"
    port: int = 8000
    trusted_proxies: tuple[str, ...] = ()
    redis_url: str | None = None
    shield_sim_clock: bool = False
    signal_ttl_s: float = 30.0
    identify_at_ingest: bool = True
    anonymous_audio: str = "none"
    preview_s: float = 30.0

    def __post_init__(self) -> None:
        if self.anonymous_audio not in ("full", "preview", "none"):
            raise InvalidInput(
                f"CONSENTUNE_ANONYMOUS_AUDIO={self.anonymous_audio!r} is not a policy",
                hint="use none (sign in to listen), preview (first 30 s) or full",
            )

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def fingerprint_dir(self) -> Path:
        """The content-identification index (memory-mapped segments)."""
        return self.home / "fingerprints"

    @property
    def shield_secret_path(self) -> Path:
        return self.home / "shield.secret"

    @property
    def key_path(self) -> Path:
        return self.home / "ledger-signing.key"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("CONSENTUNE_HOME", "consentune-data")).expanduser().absolute()
        url = env.get("CONSENTUNE_DATABASE_URL") or f"sqlite:///{home / 'consentune.db'}"
        return cls(
            home=home,
            database_url=url,
            max_upload_bytes=_int(env, "CONSENTUNE_MAX_UPLOAD_BYTES", cls.max_upload_bytes),
            max_duration_s=_float(env, "CONSENTUNE_MAX_DURATION_S", cls.max_duration_s),
            log_origin=env.get("CONSENTUNE_LOG_ORIGIN", cls.log_origin),
            host=env.get("CONSENTUNE_HOST", cls.host),
            port=_int(env, "CONSENTUNE_PORT", cls.port),
            trusted_proxies=tuple(p.strip() for p in env.get("CONSENTUNE_TRUSTED_PROXIES", "").split(",") if p.strip()),
            redis_url=env.get("CONSENTUNE_REDIS_URL") or None,
            shield_sim_clock=env.get("CONSENTUNE_SHIELD_SIM_CLOCK", "") == "1",
            signal_ttl_s=_float(env, "CONSENTUNE_SIGNAL_TTL_S", cls.signal_ttl_s),
            identify_at_ingest=env.get("CONSENTUNE_IDENTIFY_AT_INGEST", "1").strip().lower()
            not in ("0", "false", "no"),
            anonymous_audio=env.get("CONSENTUNE_ANONYMOUS_AUDIO", cls.anonymous_audio).strip().lower(),
            preview_s=_float(env, "CONSENTUNE_PREVIEW_S", cls.preview_s),
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name}={raw!r} is not an integer", hint=f"unset {name} or give a whole number") from None
    if value <= 0:
        raise InvalidInput(f"{name}={value} must be positive", hint=f"unset {name} or give a positive number")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name}={raw!r} is not a number", hint=f"unset {name} or give a number") from None
    if not value > 0:
        raise InvalidInput(f"{name}={value} must be positive", hint=f"unset {name} or give a positive number")
    return value


__all__ = ["Settings"]
