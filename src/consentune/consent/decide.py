"""decide(): the one place that turns terms and agreements into allow/deny.

Most specific rule wins: track rule > artist rule > the artist's accepted
terms.  A *required* purpose is always allowed (and still logged); anything
unknown (track, artist, purpose, terms version) is denied.  Decisions are
vectorised so one call covers a whole batch of tracks.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat

import numpy as np
import numpy.typing as npt

from consentune.consent.rules import ConsentRule
from consentune.consent.terms import Terms
from consentune.types import ArtistId, Purpose, PurposeKind, TrackId

_NO_RULE = -1
_UNKNOWN = -2
_KIND_CODE = {PurposeKind.REQUIRED: 0, PurposeKind.OPT_OUT: 1, PurposeKind.OPT_IN: 2}


class Reason(enum.IntEnum):
    UNKNOWN_TRACK = 0
    UNKNOWN_PURPOSE = 1
    REQUIRED = 2
    TRACK_ALLOW = 3
    TRACK_DENY = 4
    ARTIST_ALLOW = 5
    ARTIST_DENY = 6
    DEFAULT_ON = 7
    DEFAULT_OFF = 8


REASON_TEXT: Mapping[Reason, str] = {
    Reason.UNKNOWN_TRACK: "unknown track",
    Reason.UNKNOWN_PURPOSE: "purpose not in the artist's terms",
    Reason.REQUIRED: "required by terms",
    Reason.TRACK_ALLOW: "track rule: allow",
    Reason.TRACK_DENY: "track rule: deny",
    Reason.ARTIST_ALLOW: "artist rule: allow",
    Reason.ARTIST_DENY: "artist rule: deny",
    Reason.DEFAULT_ON: "terms: opt-out purpose, no rule (on)",
    Reason.DEFAULT_OFF: "terms: opt-in purpose, no rule (off)",
}


@dataclass(frozen=True, slots=True)
class ConsentContext:
    """Everything decide needs about the tracks of one batch, loaded up front."""

    terms: Mapping[int, Terms]
    track_artist: Mapping[TrackId, ArtistId]
    artist_terms: Mapping[ArtistId, int]
    rules: Sequence[ConsentRule]


@dataclass(frozen=True, slots=True)
class BatchDecision:
    """Per-track outcome of one decide call; arrays align with ``tracks``."""

    purpose: Purpose
    tracks: Sequence[TrackId]
    allowed: npt.NDArray[np.bool_]
    reasons: npt.NDArray[np.int8]
    terms_versions: npt.NDArray[np.int64]  # -1 where unknown

    def reason_text(self, i: int) -> str:
        text = REASON_TEXT[Reason(int(self.reasons[i]))]
        version = int(self.terms_versions[i])
        return f"{text} (terms v{version})" if version >= 0 else text


def effective_rules(
    rules: Iterable[ConsentRule], *, purpose: Purpose, at: datetime
) -> tuple[dict[ArtistId, bool], dict[TrackId, bool]]:
    """The winning artist-level and track-level answer for ``purpose`` at time ``at``.

    Among active rules of the same scope, the latest created wins.
    """
    artist_rules: dict[ArtistId, bool] = {}
    track_rules: dict[TrackId, bool] = {}
    active = [r for r in rules if r.purpose == purpose and r.active_at(at)]
    for rule in sorted(active, key=lambda r: (r.created_at, r.id)):
        if rule.track_id is None:
            artist_rules[rule.artist_id] = rule.allow
        else:
            track_rules[rule.track_id] = rule.allow
    return artist_rules, track_rules


def decide_batch(
    context: ConsentContext, *, tracks: Sequence[TrackId], purpose: Purpose, at: datetime
) -> BatchDecision:
    """Decide ``purpose`` for every track in one vectorised pass."""
    artist_rules, track_rules = effective_rules(context.rules, purpose=purpose, at=at)
    artist_code, artist_version = _artist_codes(context, purpose, artist_rules)
    artists = list(map(context.track_artist.get, tracks))
    packed = np.fromiter(map(artist_code.get, artists, repeat(_UNKNOWN)), np.int16, len(tracks))
    versions = np.fromiter(map(artist_version.get, artists, repeat(-1)), np.int64, len(tracks))
    track_rule = np.fromiter(map(_rule_code, map(track_rules.get, tracks)), np.int8, len(tracks))
    allowed, reasons = _combine(packed, track_rule)
    return BatchDecision(purpose, tracks, allowed, reasons, versions)


def _artist_codes(
    context: ConsentContext, purpose: Purpose, artist_rules: Mapping[ArtistId, bool]
) -> tuple[dict[ArtistId | None, int], dict[ArtistId | None, int]]:
    """Pack (kind, artist rule) per artist into one small int: kind*4 + rule+1."""
    codes: dict[ArtistId | None, int] = {}
    versions: dict[ArtistId | None, int] = {}
    for artist, version in context.artist_terms.items():
        terms = context.terms.get(version)
        kind = terms.kind_of(purpose) if terms is not None else None
        kind_code = _KIND_CODE[kind] if kind is not None else 3
        codes[artist] = kind_code * 4 + _rule_code(artist_rules.get(artist)) + 1
        versions[artist] = version
    return codes, versions


def _rule_code(answer: bool | None) -> int:
    return _NO_RULE if answer is None else int(answer)


def _combine(
    packed: npt.NDArray[np.int16], track_rule: npt.NDArray[np.int8]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int8]]:
    known = packed >= 0
    kind = np.where(known, packed // 4, 3)
    artist_rule = np.where(known, packed % 4 - 1, _NO_RULE)
    reasons = np.full(packed.shape, Reason.DEFAULT_OFF, np.int8)
    reasons[(kind == 1)] = Reason.DEFAULT_ON
    reasons[artist_rule == 0] = Reason.ARTIST_DENY
    reasons[artist_rule == 1] = Reason.ARTIST_ALLOW
    reasons[track_rule == 0] = Reason.TRACK_DENY
    reasons[track_rule == 1] = Reason.TRACK_ALLOW
    reasons[kind == 0] = Reason.REQUIRED
    reasons[kind == 3] = Reason.UNKNOWN_PURPOSE
    reasons[~known] = Reason.UNKNOWN_TRACK
    allowed = np.isin(reasons, [Reason.REQUIRED, Reason.TRACK_ALLOW, Reason.ARTIST_ALLOW, Reason.DEFAULT_ON])
    return allowed, reasons


def next_change(rules: Iterable[ConsentRule], *, at: datetime) -> datetime | None:
    """The first moment after ``at`` when a rule starts or ends (a decision may change then), or None."""
    bounds = [b for r in rules for b in (r.valid_from, r.valid_until) if b is not None and b > at]
    return min(bounds, default=None)


def decide(context: ConsentContext, *, track: TrackId, purpose: Purpose, at: datetime) -> tuple[bool, str]:
    """Single-track convenience over :func:`decide_batch`: (allowed, reason)."""
    batch = decide_batch(context, tracks=[track], purpose=purpose, at=at)
    return bool(batch.allowed[0]), batch.reason_text(0)


__all__ = [
    "REASON_TEXT",
    "BatchDecision",
    "ConsentContext",
    "Reason",
    "decide",
    "decide_batch",
    "effective_rules",
    "next_change",
]
