"""Pydantic request/response models: the published OpenAPI contract."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field

from consentune.consent.aipref import aipref_label
from consentune.consent.registry import ConsentView
from consentune.consent.rules import ConsentRule
from consentune.consent.terms import Terms
from consentune.gate.handles import ACTIONS
from consentune.ports import ApiKeyRecord, PurgeJob, ShieldRecord
from consentune.types import KNOWN_PURPOSES, TRAIN_GENERATIVE, Artist, PurposeKind, Role, Track

MAX_INT = 2**31 - 1  # the storage's INTEGER columns; offsets and versions beyond it are refused, not wrapped
MAX_GATE_BATCH = 10_000  # tracks per gate request: one ledger entry each


def _unicode(text: str) -> bool:
    """False for text holding a lone surrogate (JSON ``"\\ud800"``): it has no UTF-8 form."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable(text: str) -> str:
    """Refuse what no backend stores: lone surrogates and NUL."""
    if not _unicode(text):
        raise ValueError("is not valid Unicode text (it holds a lone surrogate)")
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    return text


def _unicode_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Refuse a batch holding a lone surrogate anywhere: the request is not valid Unicode.

    Other bad values (NUL, wrong types, out-of-range times) are the parser's to report per row.
    """
    for index, row in enumerate(rows):
        if not all(_unicode(t) for item in row.items() for t in item if isinstance(t, str)):
            raise ValueError(f"row {index} holds a lone surrogate, which is not valid Unicode")
    return rows


def _utc(moment: datetime) -> datetime:
    """An aware time in UTC, refused when UTC cannot represent it (e.g. 9999-12-31T23:59:59-14:00)."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the representable range once converted to UTC") from None


def _distinct(items: list[str]) -> list[str]:
    if len(set(items)) != len(items):
        raise ValueError("lists a track more than once; each track is decided (and logged) once per request")
    return items


# The published schema states what the validators enforce, so a client (or schemathesis) can tell a valid request
# from the contract alone; the validators stay the enforcement, with their own messages.
NO_NUL = "^[^\\u0000]*$"  # storable(): no backend stores NUL
PURPOSE_PATTERN = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"  # consentune.types.is_wellformed_purpose
_NO_NUL = {"pattern": NO_NUL}

# length limits come before the check, so pydantic reports them as characters
Name = Annotated[str, Field(min_length=1, max_length=200, json_schema_extra=_NO_NUL), AfterValidator(storable)]
Label = Annotated[str, Field(max_length=200, json_schema_extra=_NO_NUL), AfterValidator(storable)]
PurposeName = Annotated[
    str,
    Field(min_length=1, max_length=64, examples=["train-generative"], json_schema_extra={"pattern": PURPOSE_PATTERN}),
    AfterValidator(storable),
]
TrackRef = Annotated[str, Field(min_length=1, max_length=32, json_schema_extra=_NO_NUL), AfterValidator(storable)]
Summary = Annotated[str, Field(max_length=10_000, json_schema_extra=_NO_NUL), AfterValidator(storable)]
StorageInt = Annotated[int, Field(ge=0, le=MAX_INT)]
UtcTime = Annotated[AwareDatetime, AfterValidator(_utc)]
PlayRows = Annotated[list[dict[str, Any]], AfterValidator(_unicode_rows), Field(max_length=10_000)]


class ArtistOut(BaseModel):
    id: str
    name: str
    terms_version: int
    created_at: datetime

    @classmethod
    def of(cls, a: Artist) -> ArtistOut:
        return cls(id=a.id, name=a.name, terms_version=a.terms_version, created_at=a.created_at)


class ArtistIn(BaseModel):
    name: Name


class TrackOut(BaseModel):
    id: str
    artist_id: str
    title: str
    content_sha256: str
    format: str
    duration_s: float
    sample_rate: int
    channels: int
    size_bytes: int
    created_at: datetime
    tags: list[str] = []

    @classmethod
    def of(cls, t: Track, tags: list[str] | None = None) -> TrackOut:
        return cls(
            id=t.id,
            artist_id=t.artist_id,
            title=t.title,
            content_sha256=t.content_sha256,
            format=t.format,
            duration_s=t.duration_s,
            sample_rate=t.sample_rate,
            channels=t.channels,
            size_bytes=t.size_bytes,
            created_at=t.created_at,
            tags=tags or [],
        )


class TagsIn(BaseModel):
    tags: list[Label] = Field(max_length=32)


class IngestOut(BaseModel):
    track: TrackOut
    created: bool


class RuleOut(BaseModel):
    id: int
    purpose: str
    allow: bool | None  # null: the track follows the artist's all-tracks choice again
    track_id: str | None
    created_at: datetime
    valid_from: datetime | None
    valid_until: datetime | None
    defect: str | None = Field(
        default=None, description="set when the stored rule cannot be read; it counts as a deny until replaced"
    )

    @classmethod
    def of(cls, r: ConsentRule) -> RuleOut:
        return cls(
            id=r.id,
            purpose=r.purpose,
            allow=r.allow,
            track_id=r.track_id,
            created_at=r.created_at,
            valid_from=r.valid_from,
            valid_until=r.valid_until,
            defect=r.defect or None,
        )


class PurposeOut(BaseModel):
    purpose: str
    kind: str | None
    explanation: str
    aipref: str | None
    artist_rule: RuleOut | None
    track_rules: list[RuleOut]
    allowed_by_default: bool


class ConsentOut(BaseModel):
    artist: ArtistOut
    terms_version: int
    terms_summary: str
    purposes: list[PurposeOut]

    @classmethod
    def of(cls, view: ConsentView) -> ConsentOut:
        return cls(
            artist=ArtistOut.of(view.artist),
            terms_version=view.terms.version,
            terms_summary=view.terms.summary,
            purposes=[
                PurposeOut(
                    purpose=p.purpose,
                    kind=p.kind.value if p.kind else None,
                    explanation=p.explanation,
                    aipref=aipref_label(p.purpose),
                    artist_rule=RuleOut.of(p.artist_rule) if p.artist_rule else None,
                    track_rules=[RuleOut.of(r) for r in p.track_rules],
                    allowed_by_default=p.effective_default,
                )
                for p in view.purposes
            ],
        )


class ConsentIn(BaseModel):
    purpose: PurposeName
    allow: bool
    track_id: TrackRef | None = None
    valid_from: UtcTime | None = None
    valid_until: UtcTime | None = None


class TermsOut(BaseModel):
    version: int
    kinds: dict[str, str]
    summary: str
    published_at: str
    explanations: dict[str, str]

    @classmethod
    def of(cls, t: Terms) -> TermsOut:
        return cls(
            version=t.version,
            kinds={p: k.value for p, k in t.kinds.items()},
            summary=t.summary,
            published_at=t.published_at,
            explanations={str(p): e for p, e in t.explanations.items()},
        )


# terms.validate_kinds: every known purpose gets a kind, and train-generative is only ever opt-in
_TERMS_KINDS: dict[str, Any] = {
    "required": sorted(str(p) for p in KNOWN_PURPOSES),
    "properties": {TRAIN_GENERATIVE: {"type": "string", "enum": [PurposeKind.OPT_IN.value]}},
}


class TermsIn(BaseModel):
    kinds: dict[PurposeName, Annotated[str, Field(json_schema_extra={"enum": [k.value for k in PurposeKind]})]] = Field(
        max_length=256,
        examples=[{"identify": "required", "train-generative": "opt-in"}],
        json_schema_extra=_TERMS_KINDS,
    )
    summary: Summary = ""


class AcceptIn(BaseModel):
    version: Annotated[StorageInt, Field(ge=1)]


class GateIn(BaseModel):
    purpose: PurposeName
    tracks: Annotated[
        list[TrackRef],
        AfterValidator(_distinct),
        Field(max_length=MAX_GATE_BATCH, json_schema_extra={"uniqueItems": True}),
    ]
    action: Annotated[str, Field(json_schema_extra={"enum": sorted(ACTIONS)})] = "read-audio"


class DenialOut(BaseModel):
    track: str
    reason: str


class GateOut(BaseModel):
    purpose: str
    action: str
    allowed: list[str]
    denied: list[DenialOut]
    ledger_first: int | None
    ledger_last: int | None


class CheckpointOut(BaseModel):
    size: int
    root_hash: str
    note: str
    verifier_key: str


class ProofOut(BaseModel):
    proof: list[str]


class AuditOut(BaseModel):
    ok: bool
    size: int
    checkpoints_checked: int
    nodes_checked: int
    problems: list[str]


class KeyIn(BaseModel):
    role: Annotated[str, Field(json_schema_extra={"enum": [r.value for r in Role]})]
    artist_id: Name | None = None
    label: Label = ""


class KeyOut(BaseModel):
    id: str
    role: str
    artist_id: str | None
    label: str
    created_at: datetime
    revoked_at: datetime | None
    secret: str | None = None

    @classmethod
    def of(cls, k: ApiKeyRecord, secret: str | None = None) -> KeyOut:
        return cls(
            id=k.id,
            role=k.role.value,
            artist_id=k.artist_id,
            label=k.label,
            created_at=k.created_at,
            revoked_at=k.revoked_at,
            secret=secret,
        )


class PurgeJobOut(BaseModel):
    id: int
    artist_id: str
    track_id: str | None
    purpose: str
    status: str
    purged: int
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, j: PurgeJob) -> PurgeJobOut:
        return cls(
            id=j.id,
            artist_id=j.artist_id,
            track_id=j.track_id,
            purpose=j.purpose,
            status=j.status,
            purged=j.purged,
            created_at=j.created_at,
            finished_at=j.finished_at,
        )


class MeOut(BaseModel):
    key_id: str
    role: str
    artist: ArtistOut | None


class ShieldDecisionOut(BaseModel):
    id: int
    at: float
    subject: str
    action: str
    score: float
    signals: list[dict[str, object]]
    lifted_at: float | None
    lifted_by: str | None

    @classmethod
    def of(cls, r: ShieldRecord) -> ShieldDecisionOut:
        return cls(
            id=r.id,
            at=r.at,
            subject=r.subject,
            action=r.action,
            score=r.score,
            signals=[dict(s) for s in r.signals],
            lifted_at=r.lifted_at,
            lifted_by=r.lifted_by,
        )


class MatchOut(BaseModel):
    """One identified stretch: seconds on both clocks, time scale (ref s per query s), pitch shift."""

    track_id: str
    score: float = Field(description="-log10 of the false-match bound; matches need score >= threshold")
    matched: int = Field(description="distinct aligned query hashes")
    query_start_s: float
    query_end_s: float
    ref_start_s: float
    ref_end_s: float
    time_scale: float
    pitch_semitones: float


class IdentifyOut(BaseModel):
    threshold: float
    matches: list[MatchOut]


class MixSegmentOut(BaseModel):
    """One stretch of a mix: a track (``track_id``) or unknown material (``track_id`` null)."""

    track_id: str | None = Field(description="identified track; null = not in the index (or consent lapsed)")
    start_s: float = Field(description="start in the mix, seconds")
    end_s: float = Field(description="end in the mix, seconds")
    ref_start_s: float | None = Field(description="matching range in the track, seconds")
    ref_end_s: float | None
    time_scale: float | None = Field(description="track seconds per mix second (1.05 = played 5 % faster)")
    pitch_semitones: float | None = Field(description="pitch of the mix against the track")
    confidence: float = Field(description="best window's -log10 false-match bound; 0 for unknown")
    windows: int = Field(description="query windows the decoder spent on this segment")


class TracklistOut(BaseModel):
    threshold: float
    window_s: float
    hop_s: float
    segments: list[MixSegmentOut]


class StoredMatchOut(MatchOut):
    """A possible re-upload found at ingest: ``upload_track_id`` matched ``track_id``."""

    upload_track_id: str
    created_at: datetime
