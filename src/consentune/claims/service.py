"""ClaimService: open claims from identification's matches, let the uploader dispute, the original artist resolve.

Every step is a ledger entry on both tracks, so both artists' receipts show
it.  Opening or upholding a claim re-decides the copy at once and purges
what was derived from it under purposes the original artist denies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from consentune.claims.model import DEFAULT_POLICY, Claim, ClaimPolicy, ClaimStatus
from consentune.errors import AccessDenied, Conflict, InvalidInput, NotFound
from consentune.ledger.log import UsageLedger, UsageRecord
from consentune.organize.near import MIN_COVERAGE, coverage_of_shorter
from consentune.ports import ClaimRepo, StoredMatch, Transactions
from consentune.types import IDENTIFY, STREAM, ArtistId, TrackId

MAX_REASON = 500
DOMINANCE = 4.0  # a match this many times as strong over the same stretch of an upload explains that stretch

Owners = Callable[[Sequence[TrackId]], dict[TrackId, ArtistId]]
Durations = Callable[[TrackId], float | None]
Repurge = Callable[[Sequence[TrackId], str], int]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ClaimService:
    def __init__(
        self,
        *,
        repo: ClaimRepo,
        ledger: UsageLedger,
        owners: Owners,
        duration_s: Durations,
        repurge: Repurge,
        transactions: Transactions,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._tx = transactions
        self._repo = repo
        self._ledger = ledger
        self._owners = owners
        self._duration_s = duration_s
        self._repurge = repurge
        self._clock = clock

    # -- opening ----------------------------------------------------------------
    def open_from_matches(self, copy: TrackId, matches: Sequence[StoredMatch], *, actor: str) -> list[Claim]:
        """A claim per match of ``copy`` with another artist's earlier track (pairs already claimed are kept)."""
        matches = _unexplained(
            _strongest_per_original(self._through_copies([m for m in matches if m.track_id == copy]))
        )
        owners = self._owners([copy, *(m.matched_track_id for m in matches)])
        now = self._clock()
        new = [
            self._from_match(m, owners, now)
            for m in matches
            if owners.get(m.matched_track_id) not in (None, owners.get(copy))
        ]
        with self._tx.transaction():
            stored = self._repo.add_claims(new)
            self._log(stored, "claim-open", actor, lambda c: f"opened: {_describe(c)}")
        if stored:
            self._repurge([copy], actor)
        return stored

    def _through_copies(self, matches: Sequence[StoredMatch]) -> list[StoredMatch]:
        """Matches with a claimed copy, re-aimed at that copy's original where the shared audio is the original's.

        A copy never becomes the original of another claim (its uploader would
        gain a say over a third party's upload of music that is not theirs),
        and an artist's own music reached through someone else's copy of it is
        still their own, not a claim against them.
        """
        governed = self._repo.governing_claims(sorted({m.matched_track_id for m in matches}))
        out = []
        for m in matches:
            claims = governed.get(m.matched_track_id)
            out.append(_via(m, max(claims, key=lambda c: c.score)) if claims else m)
        return out

    def _from_match(self, m: StoredMatch, owners: dict[TrackId, ArtistId], now: datetime) -> Claim:
        upload, original = self._duration_s(m.track_id), self._duration_s(m.matched_track_id)
        whole = bool(upload and original) and (
            coverage_of_shorter(m, upload_s=upload or 0.0, original_s=original or 0.0) >= MIN_COVERAGE
        )
        return Claim(
            id=0,
            copy_track_id=m.track_id,
            original_track_id=m.matched_track_id,
            copy_artist_id=owners[m.track_id],
            original_artist_id=owners[m.matched_track_id],
            status=ClaimStatus.OPEN,
            score=m.score,
            copy_start_s=m.query_start_s,
            copy_end_s=m.query_end_s,
            original_start_s=m.ref_start_s,
            original_end_s=m.ref_end_s,
            time_scale=m.time_scale,
            pitch_semitones=m.pitch_semitones,
            partial=not whole,
            opened_at=now,
            updated_at=now,
        )

    # -- moving -----------------------------------------------------------------
    def dispute(self, claim_id: int, *, reason: str, actor: str, as_artist: ArtistId | None) -> Claim:
        """The copy's uploader (or an operator, ``as_artist=None``) says the claim is wrong, and why."""
        claim = self.claim(claim_id, as_artist=as_artist)
        if as_artist is not None and as_artist != claim.copy_artist_id:
            raise AccessDenied(
                "only the artist who uploaded the copy can dispute this claim",
                hint="the original artist resolves it instead (uphold or release)",
            )
        text = " ".join(reason.split())
        if not text or len(text) > MAX_REASON:
            raise InvalidInput(
                f"a dispute needs a reason of 1 to {MAX_REASON} characters (got {len(text)})",
                hint="say why this upload is not a copy, or why you have the right to use it",
            )
        with self._tx.transaction():
            moved = self._move(claim, expect=(ClaimStatus.OPEN,), to=ClaimStatus.DISPUTED, by=actor, reason=text)
            self._log([moved], "claim-dispute", actor, lambda c: f"disputed by the uploader: {text}")
        return moved

    def resolve(self, claim_id: int, *, outcome: str, actor: str, as_artist: ArtistId | None) -> Claim:
        """The original artist (or an operator) upholds the claim or releases the copy."""
        claim = self.claim(claim_id, as_artist=as_artist)
        if as_artist is not None and as_artist != claim.original_artist_id:
            raise AccessDenied(
                "only the artist whose track was copied (or an operator) can resolve this claim",
                hint="as the uploader, dispute the claim with a reason instead",
            )
        if outcome == "uphold":
            expect: tuple[ClaimStatus, ...] = (ClaimStatus.OPEN, ClaimStatus.DISPUTED)
            to = ClaimStatus.UPHELD
        elif outcome == "release":
            expect, to = (ClaimStatus.OPEN, ClaimStatus.DISPUTED, ClaimStatus.UPHELD), ClaimStatus.RELEASED
        else:
            raise InvalidInput(f"outcome {outcome[:20]!r} is neither uphold nor release", hint="use uphold or release")
        with self._tx.transaction():
            moved = self._move(claim, expect=expect, to=to, by=actor, reason=None)
            self._log([moved], f"claim-{outcome}", actor, lambda c: f"{to.value} by {actor}: {_describe(c)}")
        if to is ClaimStatus.UPHELD:
            self._repurge([moved.copy_track_id], actor)
        return moved

    def _move(
        self, claim: Claim, *, expect: tuple[ClaimStatus, ...], to: ClaimStatus, by: str, reason: str | None
    ) -> Claim:
        moved = self._repo.move_claim(claim.id, expect=expect, to=to, at=self._clock(), by=by, reason=reason)
        if moved is None:
            current = self._repo.claim(claim.id)
            state = current.status.value if current else "gone"
            raise Conflict(
                f"claim {claim.id} is {state}; it cannot become {to.value} from there",
                hint="reload the claim to see its current state",
            )
        return moved

    # -- reading ----------------------------------------------------------------
    def claim(self, claim_id: int, *, as_artist: ArtistId | None) -> Claim:
        """One claim, if the caller is one of its two artists (or an operator, ``as_artist=None``)."""
        found = self._repo.claim(claim_id)
        if found is None or (
            as_artist is not None and as_artist not in (found.copy_artist_id, found.original_artist_id)
        ):
            raise NotFound(f"no claim {claim_id}", hint="list your claims with GET /v1/claims")
        return found

    def claims(
        self,
        *,
        as_artist: ArtistId | None,
        status: ClaimStatus | None = None,
        limit: int = 100,
        offset: int = 0,
        track: TrackId | None = None,
    ) -> list[Claim]:
        """Claims where the artist is either side (all claims for an operator), newest change first.

        ``track`` narrows them to the claims where that track is the copy or the original.
        """
        return self._repo.list_claims(artist_id=as_artist, status=status, limit=limit, offset=offset, track_id=track)

    def governing(self, copies: Sequence[TrackId]) -> dict[TrackId, list[Claim]]:
        return self._repo.governing_claims(copies)

    # -- policy -----------------------------------------------------------------
    def policy_of(self, artist: ArtistId) -> ClaimPolicy:
        return self._repo.claim_policies([artist]).get(artist, DEFAULT_POLICY)

    def set_policy(self, artist: ArtistId, policy: ClaimPolicy, *, actor: str) -> None:
        """What happens to copies of this artist's tracks while a claim governs them (block, hold or allow)."""
        with self._tx.transaction():
            self._repo.set_claim_policy(artist, policy, self._clock())
            self._ledger.append(
                [
                    UsageRecord(
                        actor, "claim-policy", STREAM, None, "record", f"copies of artist {artist}: {policy.value}"
                    )
                ]
            )

    def _log(self, claims: Sequence[Claim], action: str, actor: str, reason: Callable[[Claim], str]) -> None:
        records = [
            UsageRecord(actor, action, IDENTIFY, track, "record", f"claim {c.id}: {reason(c)}")
            for c in claims
            for track in (c.copy_track_id, c.original_track_id)
        ]
        if records:
            self._ledger.append(records)


def _via(match: StoredMatch, claim: Claim) -> StoredMatch:
    """``match`` (an upload against ``claim``'s copy) as a match against the claim's original, over the part of
    the copy that holds the original's audio; unchanged when the upload shares only the rest of the copy."""
    start, end = max(match.ref_start_s, claim.copy_start_s), min(match.ref_end_s, claim.copy_end_s)
    if end <= start or match.time_scale <= 0:
        return match
    into_original = claim.time_scale

    def in_upload(copy_s: float) -> float:
        return match.query_start_s + (copy_s - match.ref_start_s) / match.time_scale

    def in_original(copy_s: float) -> float:
        return claim.original_start_s + (copy_s - claim.copy_start_s) * into_original

    return replace(
        match,
        matched_track_id=claim.original_track_id,
        query_start_s=in_upload(start),
        query_end_s=in_upload(end),
        ref_start_s=in_original(start),
        ref_end_s=in_original(end),
        time_scale=match.time_scale * into_original,
        pitch_semitones=match.pitch_semitones + claim.pitch_semitones,
    )


def _strongest_per_original(matches: Sequence[StoredMatch]) -> list[StoredMatch]:
    best: dict[TrackId, StoredMatch] = {}
    for m in matches:
        if m.matched_track_id not in best or m.score > best[m.matched_track_id].score:
            best[m.matched_track_id] = m
    return list(best.values())


def _unexplained(matches: Sequence[StoredMatch]) -> list[StoredMatch]:
    """The matches no much stronger match with another track explains.

    One stretch of an upload is one recording: when at least half of a match's
    range of the upload lies inside the range of a match with another track
    that is :data:`DOMINANCE` times as strong (scores are -log10 of the
    false-match bound, so that is many orders of magnitude), the audio there is
    the stronger match's, and the weak one is a coincidence of a few hashes,
    not a claim.  Matches in different stretches (the tracks of a DJ mix) and
    matches of comparable strength over one stretch (a mashup's sources) all stay.
    """
    kept = []
    for m in matches:
        span = m.query_end_s - m.query_start_s
        explained = span > 0 and any(
            n.matched_track_id != m.matched_track_id
            and n.score >= DOMINANCE * m.score
            and min(m.query_end_s, n.query_end_s) - max(m.query_start_s, n.query_start_s) >= span / 2
            for n in matches
        )
        if not explained:
            kept.append(m)
    return kept


def _describe(c: Claim) -> str:
    kind = "a section" if c.partial else "the whole"
    return (
        f"{kind} of track {c.original_track_id} ({_clock(c.original_start_s)}–{_clock(c.original_end_s)}) "
        f"is in track {c.copy_track_id} ({_clock(c.copy_start_s)}–{_clock(c.copy_end_s)}), "
        f"speed ×{c.time_scale:.3f}, pitch {c.pitch_semitones:+.1f} st, score {c.score:.1f}"
    )


def _clock(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 60}:{s % 60:02d}"


__all__ = ["MAX_REASON", "ClaimService"]
