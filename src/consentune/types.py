"""Identifiers and frozen value types shared by every package; no logic beyond validation."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from typing import NewType

ArtistId = NewType("ArtistId", str)
TrackId = NewType("TrackId", str)
Purpose = NewType("Purpose", str)

IDENTIFY = Purpose("identify")
DETECT_FRAUD = Purpose("detect-fraud")
RECOMMEND = Purpose("recommend")
ORGANIZE = Purpose("organize")
TRAIN_AI = Purpose("train-ai")
TRAIN_GENERATIVE = Purpose("train-generative")
AI_INPUT = Purpose("ai-input")
STREAM = Purpose("stream")

KNOWN_PURPOSES: tuple[Purpose, ...] = (
    IDENTIFY,
    DETECT_FRAUD,
    RECOMMEND,
    ORGANIZE,
    TRAIN_AI,
    TRAIN_GENERATIVE,
    AI_INPUT,
    STREAM,
)

_PURPOSE_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def is_wellformed_purpose(name: str) -> bool:
    """Purpose names are lower-case words joined by hyphens, e.g. ``detect-fraud``."""
    return len(name) <= 64 and bool(_PURPOSE_RE.match(name))


class PurposeKind(enum.StrEnum):
    """How a terms version treats a purpose."""

    REQUIRED = "required"  # platform integrity: always on, artist cannot opt out
    OPT_OUT = "opt-out"  # on unless the artist says no
    OPT_IN = "opt-in"  # off unless the artist says yes


class Decision(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Role(enum.StrEnum):
    ADMIN = "admin"
    ARTIST = "artist"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Artist:
    id: ArtistId
    name: str
    created_at: datetime
    terms_version: int


@dataclass(frozen=True, slots=True)
class Track:
    id: TrackId
    artist_id: ArtistId
    title: str
    content_sha256: str
    format: str
    duration_s: float
    sample_rate: int
    channels: int
    size_bytes: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PlayEvent:
    """One listen: the project's single play-event schema (recommendation and fraud share it).

    ``ms_played`` is how long the track actually played, in milliseconds;
    client facts are optional and may be absent for imported history;
    ``account_created_at`` (when the listener's account was opened) helps
    fraud detection spot freshly created bot accounts.
    """

    user_id: str
    track_id: TrackId
    played_at: datetime
    ms_played: int
    ip: str | None = None
    device_id: str | None = None
    user_agent: str | None = None
    country: str | None = None
    account_created_at: datetime | None = None


__all__ = [
    "AI_INPUT",
    "DETECT_FRAUD",
    "IDENTIFY",
    "KNOWN_PURPOSES",
    "ORGANIZE",
    "RECOMMEND",
    "STREAM",
    "TRAIN_AI",
    "TRAIN_GENERATIVE",
    "Artist",
    "ArtistId",
    "Decision",
    "PlayEvent",
    "Purpose",
    "PurposeKind",
    "Role",
    "Track",
    "TrackId",
    "is_wellformed_purpose",
]
