"""Pydantic request/response models: the published OpenAPI contract."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field

from consentune.consent.aipref import aipref_label
from consentune.consent.registry import ConsentView
from consentune.consent.rules import ConsentRule
from consentune.consent.terms import Terms
from consentune.ports import ApiKeyRecord, PurgeJob, ShieldRecord
from consentune.types import Artist, Track


class ArtistOut(BaseModel):
    id: str
    name: str
    terms_version: int
    created_at: datetime

    @classmethod
    def of(cls, a: Artist) -> ArtistOut:
        return cls(id=a.id, name=a.name, terms_version=a.terms_version, created_at=a.created_at)


class ArtistIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


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
    tags: list[str] = Field(max_length=32)


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
    purpose: str = Field(examples=["train-generative"], max_length=64)
    allow: bool
    track_id: str | None = Field(default=None, max_length=32)
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None


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


class TermsIn(BaseModel):
    kinds: dict[str, str] = Field(examples=[{"identify": "required", "train-generative": "opt-in"}])
    summary: str = ""


class AcceptIn(BaseModel):
    version: int


class GateIn(BaseModel):
    purpose: str
    tracks: list[str] = Field(max_length=100_000)
    action: str = "read-audio"


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
    role: str
    artist_id: str | None = Field(default=None, max_length=200)
    label: str = Field(default="", max_length=200)


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


class StoredMatchOut(MatchOut):
    """A possible re-upload found at ingest: ``upload_track_id`` matched ``track_id``."""

    upload_track_id: str
    created_at: datetime
