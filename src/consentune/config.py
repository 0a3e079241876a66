"""One typed, frozen settings object, read once from ``CONSENTUNE_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from consentune.errors import InvalidInput

SHIELD_STATES = ("auto", "memory", "file", "redis")


@dataclass(frozen=True)
class Settings:
    """Where data lives and the limits the service enforces.

    ``trusted_proxies`` (``CONSENTUNE_TRUSTED_PROXIES``, comma-separated CIDRs) are the
    only peers whose forwarded headers are believed; ``redis_url`` shares rate
    limits across workers.

    ``shield_sim_clock`` (``CONSENTUNE_SHIELD_SIM_CLOCK=1``, benchmarks only) lets a client
    set the shield's clock with the ``X-Consentune-Sim-Time`` header.  It is refused unless
    ``bench_mode`` (``CONSENTUNE_BENCH_MODE=1``) is on too, ``consentune serve`` refuses bench
    mode on any but a loopback address, and the header is honoured only from loopback peers.

    ``cookie_secure`` (``CONSENTUNE_COOKIE_SECURE``): ``auto``, the default, marks the listener
    session cookie ``Secure`` except on plain http to a loopback host (the local demo);
    ``1`` always, ``0`` never (local http on another host name only).

    ``identify_at_ingest`` (``CONSENTUNE_IDENTIFY_AT_INGEST``, default on; ``0`` turns it
    off) checks every new upload against the fingerprint index and indexes it; turn it off
    for bulk imports and run ``consentune index build`` afterwards.

    ``anonymous_audio`` (``CONSENTUNE_ANONYMOUS_AUDIO``: ``none``, the default, ``preview`` or
    ``full``) is what listeners without an account may hear: nothing (sign in to listen, as most
    streaming services require), the first ``preview_s`` seconds (``CONSENTUNE_PREVIEW_S``) of each
    track, or everything.

    ``stream_watermark`` (``CONSENTUNE_STREAM_WATERMARK``, default on; ``0`` turns it off) serves
    every stream as a 16-bit WAV carrying a forensic watermark that names the listener and the play
    minute (see docs/shield-detection.md); off serves the original upload.

    ``signal_ttl_s`` is the ``Cache-Control`` max-age of robots.txt and TDMRep
    and bounds how long served audio (with its embedded XMP) may be reused;
    consent changes reach listings, headers and signals at once.

    The ledger queues appends; an integrator (one at a time across workers)
    integrates up to ``ledger_integrate_batch`` entries per transaction
    (``CONSENTUNE_LEDGER_INTEGRATE_BATCH``) every ``ledger_integrate_interval_s``
    (``CONSENTUNE_LEDGER_INTEGRATE_INTERVAL_S``) and publishes the log as
    C2SP tlog-tiles under ``ledger_tiles_dir`` (``CONSENTUNE_LEDGER_TILES_DIR``,
    default ``home/tlog``).  Small gate requests (a play) made at the same
    time in one process share one transaction and one ledger row, up to
    ``gate_group_commit`` requests (``CONSENTUNE_GATE_GROUP_COMMIT``; 1: each
    request commits alone).
    ``ray_address`` (``CONSENTUNE_RAY_ADDRESS``) is the Ray cluster ``consentune jobs run --engine ray``
    joins; unset, that engine starts a local cluster.

    ``signal_ttl_s`` bounds how long the public catalogue and the AI-use
    signals (robots.txt, TDMRep, headers, embedded XMP) may lag a new track;
    a consent change reaches the signals on the next request.

    ``database_url`` defaults to a SQLite file (WAL mode) inside ``home``;
    set ``CONSENTUNE_DATABASE_URL`` (e.g. ``postgresql+psycopg://host/db``)
    to scale out.

    Many workers on many machines (see ``docs/operations.md``):
    ``blob_url`` (``CONSENTUNE_BLOB_URL``) is where original uploads live: unset means
    ``home/blobs``; a folder path, or ``s3://bucket/prefix`` for an S3-compatible object
    store (endpoint ``CONSENTUNE_S3_ENDPOINT_URL``, credentials from the usual ``AWS_*``
    variables).  ``secrets_dir`` (``CONSENTUNE_SECRETS_DIR``) holds the ledger signing key
    and the shield/session secret every machine must share; ``env`` (``CONSENTUNE_ENV``)
    ``production`` refuses to start without them instead of generating per-machine ones.
    ``redis_prefix`` (``CONSENTUNE_REDIS_PREFIX``) namespaces every shared Redis key.
    ``models_url`` (``CONSENTUNE_MODELS_URL``, a folder or ``s3://bucket/prefix``) shares
    trained models between machines.
    ``shield_state`` (``CONSENTUNE_SHIELD_STATE``) is where the shield's detector, active
    streams and rate limits live: ``memory`` (one worker), ``file`` (one SQLite file in
    ``home``: workers of one host), ``redis`` (workers anywhere), or ``auto`` (the default:
    ``redis`` when ``redis_url`` is set, else ``memory``; ``serve --workers N`` picks ``file``).

    Identity cost (``docs/shield-detection.md``): ``signup_verify`` (``CONSENTUNE_SIGNUP_VERIFY``,
    comma list of ``pow`` (the default), ``email``, ``hook``, or ``none``) is what a listener
    account must pass before it can ever be established; ``signup_hook`` / ``signup_outbox``
    (``CONSENTUNE_SIGNUP_HOOK`` / ``_OUTBOX``, ``module:factory``) plug in the platform's identity
    check and mail sender; ``signup_pow_bits`` (``CONSENTUNE_SIGNUP_POW_BITS``) overrides the
    puzzle's size.  ``newcomer_budget`` (``CONSENTUNE_NEWCOMER_BUDGET``, e.g. ``address=5,address_day=30,global=100``:
    hours of distinct audio per hour or per day; unset: ``shield.budget.BudgetCaps``' defaults; ``off``)
    caps what unestablished identities are served together.
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
    bench_mode: bool = False
    cookie_secure: str = "auto"
    signal_ttl_s: float = 30.0
    identify_at_ingest: bool = True
    anonymous_audio: str = "none"
    preview_s: float = 30.0
    stream_watermark: bool = True
    ledger_tiles_dir: Path | None = None
    ledger_integrate_interval_s: float = 1.0
    ledger_integrate_batch: int = 20_000
    gate_group_commit: int = 256
    env: str = "development"
    secrets_dir: Path | None = None
    blob_url: str | None = None
    s3_endpoint_url: str | None = None
    redis_prefix: str = "consentune:"
    models_url: str | None = None
    ray_address: str | None = None
    shield_state: str = "auto"
    # -- identity cost and newcomer budgets (shield.verify, shield.budget; docs/shield-detection.md) --
    signup_verify: tuple[str, ...] = ("pow",)
    signup_hook: str | None = None  # "module:factory" -> an IdentityCheck
    signup_outbox: str | None = None  # "module:factory" -> an Outbox (mail sender)
    signup_link_base: str = "/v1/listen/accounts/verify/email"
    signup_pow_bits: int | None = None
    newcomer_budget: str = ""  # "": BudgetCaps' defaults
    # -- end identity cost --

    def __post_init__(self) -> None:
        if self.shield_sim_clock and not self.bench_mode:
            raise InvalidInput(
                "CONSENTUNE_SHIELD_SIM_CLOCK=1 lets clients set the shield's clock; it is for benchmarks only",
                hint="unset it, or also set CONSENTUNE_BENCH_MODE=1 on a server bound to 127.0.0.1",
            )
        if self.cookie_secure not in ("auto", "1", "0"):
            raise InvalidInput(
                f"CONSENTUNE_COOKIE_SECURE={self.cookie_secure!r} is not a choice",
                hint="use auto (the default: Secure except plain http to a loopback host), 1 or 0",
            )
        if self.shield_state not in SHIELD_STATES:
            raise InvalidInput(
                f"CONSENTUNE_SHIELD_STATE={self.shield_state!r} is not a choice",
                hint=f"use one of {', '.join(SHIELD_STATES)}",
            )
        if self.shield_state == "redis" and not self.redis_url:
            raise InvalidInput("CONSENTUNE_SHIELD_STATE=redis needs CONSENTUNE_REDIS_URL", hint="set both, or use file")
        if self.anonymous_audio not in ("full", "preview", "none"):
            raise InvalidInput(
                f"CONSENTUNE_ANONYMOUS_AUDIO={self.anonymous_audio!r} is not a policy",
                hint="use none (sign in to listen), preview (first 30 s) or full",
            )
        if self.env not in ("development", "production"):
            raise InvalidInput(
                f"CONSENTUNE_ENV={self.env!r} is not a mode",
                hint="use development (the default) or production",
            )

    @property
    def production(self) -> bool:
        """Production mode never generates secrets: every machine must mount the same ones."""
        return self.env == "production"

    @property
    def secrets_home(self) -> Path:
        """Where the signing key and shared secrets live: ``CONSENTUNE_SECRETS_DIR`` or the data folder."""
        return self.secrets_dir if self.secrets_dir is not None else self.home

    @property
    def blob_dir(self) -> Path:
        """The local blob folder (``home/blobs`` unless ``CONSENTUNE_BLOB_URL`` names another folder)."""
        if self.blob_url and "://" not in self.blob_url:
            return Path(self.blob_url).expanduser().absolute()
        return self.home / "blobs"

    @property
    def blob_location(self) -> str:
        """What the gate opens: an ``s3://`` URL, or the blob folder."""
        if self.blob_url and self.blob_url.startswith("s3://"):
            return self.blob_url
        return str(self.blob_dir)

    @property
    def models_location(self) -> str:
        """Trained models: ``CONSENTUNE_MODELS_URL`` (a folder every machine mounts, or ``s3://bucket/prefix``)
        or ``home/models``.  Workers pick up a newer model there without a restart."""
        return self.models_url or str(self.home / "models")

    @property
    def fingerprint_dir(self) -> Path:
        """The content-identification index (memory-mapped segments)."""
        return self.home / "fingerprints"

    @property
    def shield_secret_path(self) -> Path:
        """The shared secret the shield, stream tokens and dashboard sessions derive their keys from."""
        return self.secrets_home / "shield.secret"

    @property
    def tiles_dir(self) -> Path:
        """Where the ledger is published as C2SP tlog-tiles (``CONSENTUNE_LEDGER_TILES_DIR``, default ``home/tlog``)."""
        return self.ledger_tiles_dir or self.home / "tlog"

    @property
    def key_path(self) -> Path:
        return self.secrets_home / "ledger-signing.key"

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
            bench_mode=env.get("CONSENTUNE_BENCH_MODE", "") == "1",
            cookie_secure=env.get("CONSENTUNE_COOKIE_SECURE", "").strip().lower() or cls.cookie_secure,
            signal_ttl_s=_float(env, "CONSENTUNE_SIGNAL_TTL_S", cls.signal_ttl_s),
            identify_at_ingest=env.get("CONSENTUNE_IDENTIFY_AT_INGEST", "1").strip().lower()
            not in ("0", "false", "no"),
            anonymous_audio=env.get("CONSENTUNE_ANONYMOUS_AUDIO", cls.anonymous_audio).strip().lower(),
            preview_s=_float(env, "CONSENTUNE_PREVIEW_S", cls.preview_s),
            stream_watermark=env.get("CONSENTUNE_STREAM_WATERMARK", "1").strip().lower() not in ("0", "false", "no"),
            ledger_tiles_dir=Path(env["CONSENTUNE_LEDGER_TILES_DIR"]).expanduser().absolute()
            if env.get("CONSENTUNE_LEDGER_TILES_DIR")
            else None,
            ledger_integrate_batch=_int(env, "CONSENTUNE_LEDGER_INTEGRATE_BATCH", cls.ledger_integrate_batch),
            ledger_integrate_interval_s=_float(
                env, "CONSENTUNE_LEDGER_INTEGRATE_INTERVAL_S", cls.ledger_integrate_interval_s
            ),
            gate_group_commit=_int(env, "CONSENTUNE_GATE_GROUP_COMMIT", cls.gate_group_commit),
            env=env.get("CONSENTUNE_ENV", cls.env).strip().lower() or cls.env,
            secrets_dir=_path(env, "CONSENTUNE_SECRETS_DIR"),
            blob_url=env.get("CONSENTUNE_BLOB_URL") or None,
            s3_endpoint_url=env.get("CONSENTUNE_S3_ENDPOINT_URL") or None,
            redis_prefix=env.get("CONSENTUNE_REDIS_PREFIX") or cls.redis_prefix,
            models_url=env.get("CONSENTUNE_MODELS_URL") or None,
            ray_address=env.get("CONSENTUNE_RAY_ADDRESS") or None,
            shield_state=env.get("CONSENTUNE_SHIELD_STATE", "").strip().lower() or cls.shield_state,
            signup_verify=_words(env.get("CONSENTUNE_SIGNUP_VERIFY", "")) or cls.signup_verify,
            signup_hook=env.get("CONSENTUNE_SIGNUP_HOOK") or None,
            signup_outbox=env.get("CONSENTUNE_SIGNUP_OUTBOX") or None,
            signup_link_base=env.get("CONSENTUNE_SIGNUP_LINK_BASE") or cls.signup_link_base,
            signup_pow_bits=_int(env, "CONSENTUNE_SIGNUP_POW_BITS", 0) or None,
            newcomer_budget=env.get("CONSENTUNE_NEWCOMER_BUDGET", "").strip().lower() or cls.newcomer_budget,
        )


def _words(raw: str) -> tuple[str, ...]:
    return tuple(w.strip().lower() for w in raw.split(",") if w.strip())


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    return Path(raw).expanduser().absolute() if raw else None


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
