"""What the dashboard pages show, read through the same services and rules as the JSON API.

Every function takes the calling principal and refuses what the API would
refuse: an artist sees only their own artist, tracks, ledger entries and
reach.  Nothing here renders HTML.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from consentune.auth import Principal, visible_track
from consentune.claims import ClaimStatus
from consentune.consent.registry import PurposeView
from consentune.identify.service import MIX_UPLOAD_S
from consentune.ledger import LedgerEntry
from consentune.ports import PurgeJob, ShieldRecord, StoredCheckpoint
from consentune.service import Consentune
from consentune.types import Artist, Purpose, PurposeKind, Role, Track, TrackId

STREAM = Purpose("stream")
_EPOCH_DAY = date(1970, 1, 1)
RECOMMEND = Purpose("recommend")

# What turning a purpose on or off changes for the artist, beyond the rule and its ledger entry.
_WHEN_ON: dict[str, str] = {
    "recommend": "Listeners can be offered your tracks; recommendation models learn from their plays.",
    "organize": "Your audio is analysed for tags, tempo, key, similar tracks and duplicates.",
    "train-ai": "Your content may be used to train AI models outside the platform's own services.",
    "train-generative": "Your content may train generative models, including voice, sound or style imitation.",
    "ai-input": "Your content may be fed to AI systems at inference time (for example retrieval).",
}
_WHEN_OFF: dict[str, str] = {
    "recommend": "Your tracks leave recommendations at once and are left out of the next model training.",
    "organize": "Audio analysis stops; tags and similarity data derived from your audio are deleted.",
    "train-ai": "No new training may use your content; data prepared for it is deleted.",
    "train-generative": "No generative training may use your content; data prepared for it is deleted.",
    "ai-input": "AI systems may no longer be given your content at inference time.",
}


@dataclass(frozen=True, slots=True)
class PurposeRow:
    """One purpose on the consent page: the terms beside the artist's choice and its consequences."""

    purpose: str
    kind: str
    explanation: str
    on: bool
    changeable: bool
    source: str  # why it is on or off, in words
    when_on: str
    when_off: str
    track_overrides: dict[str, bool]
    until_day: str = ""  # the end date of the artist's choice (YYYY-MM-DD), "" when it has none
    until_exact: str = ""  # the same end as ISO 8601, so an untouched form keeps it to the microsecond
    lapsed: str = ""  # "your choice (on) for all tracks ended on …" when it reached its end date


@dataclass(frozen=True, slots=True)
class TrackPurpose:
    purpose: str
    kind: str
    allowed: bool
    reason: str
    override: bool | None  # the track's own rule, if any
    changeable: bool


@dataclass(frozen=True, slots=True)
class TrackReach:
    track: Track
    plays: int
    impressions: int


@dataclass(frozen=True, slots=True)
class Reach:
    """Per-day numbers for the artist and one page of per-track numbers (``next_after`` continues it)."""

    days: tuple[date, ...]
    plays: tuple[int, ...]
    listeners: tuple[int, ...]
    impressions: tuple[int, ...]
    total_listeners: int
    tracks: tuple[TrackReach, ...]
    next_after: int | None = None


def dashboard_artist(service: Consentune, caller: Principal, artist_id: str) -> Artist:
    """The artist, if the caller may act for them (403 otherwise, as the API answers)."""
    artist = service.catalog.artist(artist_id)
    caller.require_artist(artist.id)
    return artist


def track_for(service: Consentune, caller: Principal, track_id: str) -> Track:
    """The track, if the caller may see it (404 otherwise, as the API answers)."""
    return visible_track(service.catalog, caller, track_id)


def _consequences(view: PurposeView, version: int) -> tuple[str, str]:
    generic_on = "Each use is decided by the gate and written to the ledger."
    generic_off = (
        f"A deny rule is recorded in the ledger; later requests for {view.purpose} are refused and logged; "
        "a purge job deletes what was derived under it."
    )
    if view.kind is PurposeKind.REQUIRED:
        return (
            f"Required by terms v{version}: always on for platform integrity; every use is still logged.",
            "Cannot be switched off under these terms.",
        )
    return (
        f"{_WHEN_ON.get(view.purpose, 'Services may use your tracks for this purpose.')} {generic_on}",
        f"{_WHEN_OFF.get(view.purpose, 'Services may no longer use your tracks for this purpose.')} {generic_off}",
    )


def consent_rows(service: Consentune, artist: Artist) -> tuple[int, str, list[PurposeRow]]:
    """Terms version, terms summary, and one row per purpose of the artist's accepted terms."""
    view = service.consent.view(artist)
    rows = []
    for p in view.purposes:
        kind = p.kind.value if p.kind else "unknown"
        if p.kind is PurposeKind.REQUIRED:
            source = f"required by terms v{view.terms.version}"
        elif p.artist_rule is not None:
            source = "your choice" + (
                f" until {p.artist_rule.valid_until:%Y-%m-%d %H:%M} UTC" if p.artist_rule.valid_until else ""
            )
        else:
            source = f"terms v{view.terms.version} default ({kind})"
        when_on, when_off = _consequences(p, view.terms.version)
        until = p.artist_rule.valid_until if p.artist_rule is not None else None
        lapsed = ""
        if p.lapsed_rule is not None and p.lapsed_rule.valid_until is not None:
            lapsed = (
                f"Your choice ({'on' if p.lapsed_rule.allow else 'off'}) for all tracks ended on "
                f"{p.lapsed_rule.valid_until:%d %b %Y}; the terms' default applies since."
            )
        rows.append(
            PurposeRow(
                purpose=p.purpose,
                kind=kind,
                explanation=p.explanation,
                on=p.effective_default,
                changeable=p.kind is not PurposeKind.REQUIRED,
                source=source,
                when_on=when_on,
                when_off=when_off,
                track_overrides={r.track_id: bool(r.allow) for r in p.track_rules if r.track_id},
                until_day=until.date().isoformat() if until else "",
                until_exact=until.isoformat() if until else "",
                lapsed=lapsed,
            )
        )
    return view.terms.version, view.terms.summary, rows


def artist_choice_unchanged(
    service: Consentune, artist: Artist, purpose: Purpose, *, allow: bool, until: datetime | None
) -> bool:
    """Would saving this all-tracks choice change nothing the artist has now?

    With an explicit choice: same answer and same end.  Without one: the
    answer equals the terms' default and no end is asked for.
    """
    view = service.consent.view(artist)
    row = next((p for p in view.purposes if p.purpose == purpose), None)
    if row is None:
        return False
    if row.artist_rule is not None:
        return row.artist_rule.allow == allow and row.artist_rule.valid_until == until
    return row.effective_default == allow and until is None


@dataclass(frozen=True, slots=True)
class TermsOffer:
    """Newer platform terms the artist has not accepted yet, and what accepting them changes."""

    version: int
    summary: str
    changes: Sequence[tuple[str, str, str]]  # purpose, kind now, kind under the new terms


def terms_offer(service: Consentune, artist: Artist) -> TermsOffer | None:
    current = service.consent.current_terms()
    if current.version <= artist.terms_version:
        return None
    mine = service.consent.terms(artist.terms_version)
    purposes = sorted(set(mine.kinds) | set(current.kinds))
    changes = [
        (
            p,
            mine.kinds[p].value if p in mine.kinds else "not covered",
            current.kinds[p].value if p in current.kinds else "not covered",
        )
        for p in purposes
        if mine.kinds.get(p) != current.kinds.get(p)
    ]
    return TermsOffer(current.version, current.summary, changes)


def track_purposes(service: Consentune, artist: Artist, track: Track) -> list[TrackPurpose]:
    """Per purpose: is this track allowed right now, why, and does it carry its own rule."""
    _version, _summary, rows = consent_rows(service, artist)
    out = []
    for row in rows:
        decision = service.gate.decide(purpose=Purpose(row.purpose), tracks=[track.id])
        out.append(
            TrackPurpose(
                purpose=row.purpose,
                kind=row.kind,
                allowed=bool(decision.allowed[0]),
                reason=decision.reason_text(0),
                override=row.track_overrides.get(track.id),
                changeable=row.changeable,
            )
        )
    return out


def timeline(service: Consentune, track: Track, *, purpose: str | None, limit: int = 200) -> list[LedgerEntry]:
    """The latest ledger entries about the track, newest first."""
    return list(reversed(service.ledger.track_entries(track=track.id, purpose=purpose, limit=limit)))


def _entry_day(entry: LedgerEntry) -> date:
    return date.fromisoformat(entry.time[:10])


def _day_number(day: date) -> int:
    return (day - _EPOCH_DAY).days


def reach(
    service: Consentune,
    caller: Principal,
    artist: Artist,
    *,
    days: int = 30,
    now: datetime | None = None,
    after: int = -1,
    page_size: int = 50,
) -> Reach:
    """Plays, listeners and recommendation impressions per day over the last ``days`` days, and per track.

    Everything comes from rollup tables kept as plays and impressions arrive: the per-day numbers are one
    range scan of the artist's days, the per-track numbers one page of ``page_size`` tracks (catalogue
    order after index ``after``), whose read is decided and logged by the gate under ``stream``.
    """
    moment = now or datetime.now(UTC)
    first = (moment - timedelta(days=days - 1)).date()
    axis = tuple(first + timedelta(days=i) for i in range(days))
    span = {"first_day": _day_number(first), "last_day": _day_number(moment.date())}
    per_day = service.store.artist_days(artist.id, **span)
    numbers = [per_day.get(_day_number(d), (0, 0, 0)) for d in axis]
    page = service.store.catalog_page(after=after, limit=page_size, artist_id=artist.id)
    tracks = [entry.track for entry in page]
    allowed = set(service.gate.read_track_totals(actor=caller.actor, purpose=STREAM, tracks=[t.id for t in tracks]))
    totals = service.store.track_totals(sorted(allowed), **span)
    return Reach(
        days=axis,
        plays=tuple(n[0] for n in numbers),
        listeners=tuple(n[1] for n in numbers),
        impressions=tuple(n[2] for n in numbers),
        total_listeners=service.store.artist_listeners(artist.id, **span),
        tracks=tuple(TrackReach(t, *totals.get(t.id, (0, 0))) for t in tracks),
        next_after=page[-1].index + 1 if len(page) == page_size else None,
    )


@dataclass(frozen=True, slots=True)
class Refusal:
    time: str
    actor: str
    purpose: str
    track: Track | None
    reason: str


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """What the ledger says happened to the artist's music this month: uses and refusals per purpose."""

    first_day: date
    last_day: date
    per_purpose: tuple[tuple[str, int, int], ...]  # purpose, used (allowed or recorded), refused
    refusals: tuple[Refusal, ...]  # the newest, across all time

    @property
    def used(self) -> int:
        return sum(row[1] for row in self.per_purpose)

    @property
    def refused(self) -> int:
        return sum(row[2] for row in self.per_purpose)


def usage_summary(
    service: Consentune, artist: Artist, *, now: datetime | None = None, refusals: int = 8
) -> UsageSummary:
    """Uses per purpose since the first of this month and the newest refusals, from rollups kept by the
    ledger's integrator: two index range scans, whatever the size of the log or the catalogue."""
    today = (now or datetime.now(UTC)).date()
    first = today.replace(day=1)
    counts = service.store.artist_usage(artist.id, first_day=_day_number(first), last_day=_day_number(today))
    per_kind: Counter[str] = Counter()
    for (purpose, _), n in counts.items():
        per_kind[purpose] += n
    purposes = sorted(per_kind, key=lambda p: (-per_kind[p], p))  # the busiest purpose first
    per_purpose = tuple(
        (p, counts.get((p, "allow"), 0) + counts.get((p, "record"), 0), counts.get((p, "deny"), 0)) for p in purposes
    )
    newest = service.store.artist_refusals(artist.id, limit=refusals)
    titles = {track: service.store.get_track(TrackId(track)) for track in {r[4] for r in newest}}
    return UsageSummary(
        first_day=first,
        last_day=today,
        per_purpose=per_purpose,
        refusals=tuple(
            Refusal(time, actor, purpose, titles.get(track), reason)
            for _, time, actor, purpose, track, reason in newest
        ),
    )


@dataclass(frozen=True, slots=True)
class Revocation:
    artist: Artist
    purpose: str
    track_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class OperatorOverview:
    terms: list[tuple[int, str, str, dict[str, str]]]  # version, published, summary, purpose -> kind
    checkpoints: list[StoredCheckpoint]
    ledger_size: int
    verifier_key: str
    revocations: list[Revocation]
    purge_jobs: list[PurgeJob]
    blocks: list[ShieldRecord]
    shield_status: dict[str, object]
    artists: list[Artist]  # one page, by name
    artist_names: dict[str, str]  # names of every artist the page mentions
    next_artists: str | None = None  # name to continue the artist list after


def operator_overview(
    service: Consentune, caller: Principal, *, limit: int = 50, after: str = "", page_size: int = 100
) -> OperatorOverview:
    """The console: every list is the newest ``limit`` rows or one page, so it costs the same at any size."""
    caller.require(Role.ADMIN)
    terms = [
        (v, t.published_at, t.summary, {str(p): k.value for p, k in sorted(t.kinds.items())})
        for v, t in sorted(service.consent.all_terms().items(), reverse=True)
    ]
    artists = service.store.artists_page(after=after, limit=page_size)
    denials = service.store.recent_denials(limit=limit)
    jobs = service.store.list_purge_jobs(limit=limit, newest_first=True)
    mentioned = {a.id: a for a in artists}
    others = ({r.artist_id for r in denials} | {j.artist_id for j in jobs}) - set(mentioned)
    mentioned.update(service.store.artists_by_id(sorted(others)))  # one query, not one per row shown
    return OperatorOverview(
        terms=terms,
        checkpoints=service.ledger.recent_checkpoints(limit=limit),
        ledger_size=service.ledger.size,
        verifier_key=service.ledger.verifier_key,
        revocations=[
            Revocation(mentioned[r.artist_id], r.purpose, r.track_id, r.created_at)
            for r in denials
            if r.artist_id in mentioned
        ],
        purge_jobs=jobs,
        blocks=service.listen.guard.decisions(action="block", active_only=False)[:limit],
        shield_status=service.listen.guard.status(),
        artists=artists,
        artist_names={a.id: a.name for a in mentioned.values()},
        next_artists=artists[-1].name if len(artists) == page_size else None,
    )


__all__ = [
    "OperatorOverview",
    "PurposeRow",
    "Reach",
    "Revocation",
    "TermsOffer",
    "TrackPurpose",
    "TrackReach",
    "consent_rows",
    "dashboard_artist",
    "operator_overview",
    "reach",
    "terms_offer",
    "timeline",
    "track_for",
    "track_purposes",
]


# -- claims -------------------------------------------------------------------
_CLAIM_STATE = {
    "open": "Open",
    "disputed": "Disputed by the uploader",
    "upheld": "Upheld",
    "released": "Released",
}
_POLICY_EFFECT = {
    "block": "it is never streamed or recommended",
    "hold": "it is not streamed or recommended until the claim is resolved",
    "allow": "it may be streamed, credited to you",
}


@dataclass(frozen=True, slots=True)
class ClaimCard:
    """One claim in words, from the point of view of the artist reading it (or an operator)."""

    id: int
    status: str
    state: str  # the status in words
    mine_is_original: bool  # the reader's track is the one copied
    headline: str
    where: str
    change: str  # speed and pitch in words
    effect: str  # what the claim does to the copy now
    copy_track_id: str
    original_track_id: str
    dispute_reason: str | None
    can_resolve: bool
    can_dispute: bool


@dataclass(frozen=True, slots=True)
class MixRow:
    """One line of a mix upload's tracklist; ``artist_id`` is None for stretches nothing was identified in."""

    start: str
    end: str
    title: str
    artist_id: str | None
    artist_name: str
    track_range: str
    change: str


def mix_tracklist(service: Consentune, track: Track) -> list[MixRow]:
    """The tracklist of a long upload (a DJ mix), from the matches stored when it was ingested; [] otherwise."""
    if track.duration_s < MIX_UPLOAD_S:
        return []
    found = sorted((m for m in service.identify.matches_for(track.id) if m.track_id == track.id),
                   key=lambda m: m.query_start_s)  # fmt: skip
    rows: list[MixRow] = []
    cursor = 0.0
    for m in found:
        if m.query_start_s - cursor >= 10.0:
            rows.append(
                MixRow(_mmss(cursor), _mmss(m.query_start_s), "no other artist's track identified", None, "", "", "")
            )
        original = service.catalog.track(m.matched_track_id)
        artist = service.catalog.artist(original.artist_id)
        change = f"tempo ×{m.time_scale:.3f}, pitch {m.pitch_semitones:+.1f} st"
        rows.append(MixRow(_mmss(m.query_start_s), _mmss(m.query_end_s), original.title, artist.id, artist.name,
                           f"{_mmss(m.ref_start_s)}–{_mmss(m.ref_end_s)}", change))  # fmt: skip
        cursor = max(cursor, m.query_end_s)
    if found and track.duration_s - cursor >= 10.0:
        rows.append(
            MixRow(_mmss(cursor), _mmss(track.duration_s), "no other artist's track identified", None, "", "", "")
        )
    return rows


def _mmss(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 60}:{s % 60:02d}"


def claim_cards(
    service: Consentune, caller: Principal, *, status: str | None = None, track: Track | None = None
) -> list[ClaimCard]:
    """The caller's claims as cards: an artist sees both sides of their own; an operator sees all.

    With ``track``: only the claims where that track is the copy or the original.
    """
    as_artist = None if caller.role is Role.ADMIN else caller.artist_id
    if as_artist is None and caller.role is not Role.ADMIN:
        return []
    claims = service.claims.claims(
        as_artist=as_artist,
        status=ClaimStatus(status) if status else None,
        limit=200,
        track=track.id if track is not None else None,
    )
    names: dict[str, str] = {}
    titles: dict[str, str] = {}
    for c in claims:
        for a in (c.copy_artist_id, c.original_artist_id):
            names.setdefault(a, service.catalog.artist(a).name)
        for t in (c.copy_track_id, c.original_track_id):
            titles.setdefault(t, service.catalog.track(t).title)
    cards = []
    for c in claims:
        mine_is_original = as_artist is None or c.original_artist_id == as_artist
        copy_t, orig_t = titles[c.copy_track_id], titles[c.original_track_id]
        uploader, owner = names[c.copy_artist_id], names[c.original_artist_id]
        if as_artist is None:
            headline = f"“{copy_t}” by {uploader} copies “{orig_t}” by {owner}"
        elif mine_is_original:
            headline = f"“{copy_t}”, uploaded by {uploader}, copies your “{orig_t}”"
        else:
            headline = f"Your upload “{copy_t}” is claimed by {owner} as a copy of “{orig_t}”"
        section = "a section of" if c.partial else "all of"
        where = (
            f"{_mmss(c.copy_start_s)}–{_mmss(c.copy_end_s)} of “{copy_t}” is {section} “{orig_t}” "
            f"({_mmss(c.original_start_s)}–{_mmss(c.original_end_s)})"
        )
        speed = (c.time_scale - 1.0) * 100
        change = (
            "same speed" if abs(speed) < 0.5 else f"played {abs(speed):.0f} % {'faster' if speed > 0 else 'slower'}"
        )
        if abs(c.pitch_semitones) >= 0.25:
            change += f", pitch {c.pitch_semitones:+.1f} semitones"
        if c.status.governs:
            policy = service.claims.policy_of(c.original_artist_id).value
            effect = (
                f"While the claim stands, {owner}'s consent choices apply to the copy, and {_POLICY_EFFECT[policy]}."
            )
        else:
            effect = f"Released: the copy follows {uploader}'s own choices."
        cards.append(
            ClaimCard(
                id=c.id,
                status=c.status.value,
                state=_CLAIM_STATE[c.status.value],
                mine_is_original=mine_is_original,
                headline=headline,
                where=where,
                change=change,
                effect=effect,
                copy_track_id=c.copy_track_id,
                original_track_id=c.original_track_id,
                dispute_reason=c.dispute_reason,
                can_resolve=mine_is_original and c.status.value in ("open", "disputed", "upheld"),
                can_dispute=(not mine_is_original) and c.status.value == "open",
            )
        )
    return cards
