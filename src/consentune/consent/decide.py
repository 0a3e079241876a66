"""decide(): the one place that turns terms and agreements into allow/deny.

Most specific rule wins: track rule > artist rule > the artist's accepted
terms.  A *required* purpose is always allowed (and still logged); anything
unknown (track, artist, purpose, terms version) is denied.  Decisions are
vectorised so one call covers a whole batch of tracks.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import repeat

import numpy as np
import numpy.typing as npt

from consentune.consent.rules import ConsentRule
from consentune.consent.terms import Terms
from consentune.types import ArtistId, Purpose, PurposeKind, TrackId

_log = logging.getLogger(__name__)
_NO_RULE = -1
_DEFECT = 2  # a stored rule that could not be read: a deny with its own reason
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
    UNREADABLE_RULE = 9
    UNDECIDABLE = 10
    CLAIM_HELD = 11
    CLAIM_BLOCKED = 12
    CLAIM_ORIGINAL_DENIES = 13


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
    Reason.UNREADABLE_RULE: "stored consent rule is unreadable: denied until the artist sets it again",
    Reason.UNDECIDABLE: "consent could not be read for this track's artist: denied",
    Reason.CLAIM_HELD: "claim: a copy of another artist's track, held until the claim is resolved",
    Reason.CLAIM_BLOCKED: "claim: the original artist does not allow copies of their track",
    Reason.CLAIM_ORIGINAL_DENIES: "claim: the original artist's choice applies to this copy (off)",
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

    Among active rules of the same scope, the latest created wins; an
    unreadable rule (``defect``) answers no; a track rule with no answer
    (``allow is None``) ends the track's own choice.
    """
    artist_codes, track_codes = _effective_codes(rules, purpose=purpose, at=at)
    return (
        {a: code == 1 for a, code in artist_codes.items()},
        {t: code == 1 for t, code in track_codes.items()},
    )


def _effective_codes(
    rules: Iterable[ConsentRule], *, purpose: Purpose, at: datetime
) -> tuple[dict[ArtistId, int], dict[TrackId, int]]:
    """Like :func:`effective_rules` with answers as codes: 0 deny, 1 allow, ``_DEFECT`` unreadable."""
    artist_rules: dict[ArtistId, int] = {}
    track_rules: dict[TrackId, int | None] = {}
    active = [r for r in rules if r.purpose == purpose and r.active_at(at)]
    for rule in sorted(active, key=lambda r: (r.created_at, r.id)):
        code = _DEFECT if rule.defect else (None if rule.allow is None else int(rule.allow))
        if rule.track_id is None:
            if code is not None:
                artist_rules[rule.artist_id] = code
        else:
            track_rules[rule.track_id] = code
    return artist_rules, {t: code for t, code in track_rules.items() if code is not None}


def decide_batch(
    context: ConsentContext, *, tracks: Sequence[TrackId], purpose: Purpose, at: datetime
) -> BatchDecision:
    """Decide ``purpose`` for every track in one vectorised pass."""
    artist_rules, track_rules = _effective_codes(context.rules, purpose=purpose, at=at)
    artist_code, artist_version = _artist_codes(context, purpose, artist_rules)
    artists = list(map(context.track_artist.get, tracks))
    packed = np.fromiter(map(artist_code.get, artists, repeat(_UNKNOWN)), np.int16, len(tracks))
    versions = np.fromiter(map(artist_version.get, artists, repeat(-1)), np.int64, len(tracks))
    track_rule = np.fromiter(map(_rule_code, map(track_rules.get, tracks)), np.int8, len(tracks))
    allowed, reasons = _combine(packed, track_rule)
    return BatchDecision(purpose, tracks, allowed, reasons, versions)


def _artist_codes(
    context: ConsentContext, purpose: Purpose, artist_rules: Mapping[ArtistId, int]
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


def _rule_code(answer: int | None) -> int:
    return _NO_RULE if answer is None else answer


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
    reasons[artist_rule == _DEFECT] = Reason.UNREADABLE_RULE
    reasons[track_rule == 0] = Reason.TRACK_DENY
    reasons[track_rule == 1] = Reason.TRACK_ALLOW
    reasons[track_rule == _DEFECT] = Reason.UNREADABLE_RULE
    reasons[kind == 0] = Reason.REQUIRED
    reasons[kind == 3] = Reason.UNKNOWN_PURPOSE
    reasons[~known] = Reason.UNKNOWN_TRACK
    allowed = np.isin(reasons, [Reason.REQUIRED, Reason.TRACK_ALLOW, Reason.ARTIST_ALLOW, Reason.DEFAULT_ON])
    return allowed, reasons


def decide_isolated(
    context: ConsentContext, *, tracks: Sequence[TrackId], purpose: Purpose, at: datetime
) -> BatchDecision:
    """:func:`decide_batch`, except that one artist's bad data cannot fail the batch for the others.

    If the vectorised pass raises, every artist's tracks are decided on
    their own; an artist whose consent still cannot be decided has their
    tracks denied with :attr:`Reason.UNDECIDABLE` (and the error logged).
    """
    try:
        return decide_batch(context, tracks=tracks, purpose=purpose, at=at)
    except Exception:
        _log.exception("deciding %s for %d tracks failed; deciding artist by artist", purpose, len(tracks))
        return _decide_per_artist(context, tracks=tracks, purpose=purpose, at=at)


def _decide_per_artist(
    context: ConsentContext, *, tracks: Sequence[TrackId], purpose: Purpose, at: datetime
) -> BatchDecision:
    """Decide each artist's tracks on their own; an artist whose consent cannot be decided is denied."""
    allowed = np.zeros(len(tracks), np.bool_)
    reasons = np.full(len(tracks), Reason.UNDECIDABLE, np.int8)
    versions = np.full(len(tracks), -1, np.int64)
    groups: dict[ArtistId | None, list[int]] = {}
    for i, track in enumerate(tracks):
        groups.setdefault(context.track_artist.get(track), []).append(i)
    for artist, indices in groups.items():
        own = [tracks[i] for i in indices]
        try:
            part = decide_batch(_only_artist(context, artist), tracks=own, purpose=purpose, at=at)
        except Exception:
            _log.exception("consent of artist %s cannot be decided; denying their %d tracks", artist, len(own))
            continue
        allowed[indices], reasons[indices], versions[indices] = part.allowed, part.reasons, part.terms_versions
    return BatchDecision(purpose, tracks, allowed, reasons, versions)


def _only_artist(context: ConsentContext, artist: ArtistId | None) -> ConsentContext:
    if artist is None:
        return ConsentContext(terms=context.terms, track_artist={}, artist_terms={}, rules=())
    return ConsentContext(
        terms=context.terms,
        track_artist={t: a for t, a in context.track_artist.items() if a == artist},
        artist_terms={a: v for a, v in context.artist_terms.items() if a == artist},
        rules=[r for r in context.rules if r.artist_id == artist],
    )


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
    "decide_isolated",
    "effective_rules",
    "next_change",
]
