"""How claims change the gate's answers for copies: pure, vectorised over one decision batch.

For a copy under a governing claim:

* ``identify`` and ``detect-fraud`` are the platform's integrity purposes and
  keep the copy's own answer (a copy must stay findable and checkable);
* ``stream`` and ``recommend`` need the copy's own yes, the original's yes for
  the same purpose, *and* the original artist's claim policy to be ``allow``
  (``hold`` keeps the copy out until the claim is released, ``block`` for good);
* every other purpose (organize, train-ai, train-generative, ai-input, …) needs
  the copy's own yes and the original's yes: the stricter of the two wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from consentune.claims.model import Claim, ClaimPolicy, ClaimStatus
from consentune.consent.decide import BatchDecision, Reason
from consentune.types import DETECT_FRAUD, IDENTIFY, RECOMMEND, STREAM, ArtistId, Purpose, TrackId

EXEMPT: frozenset[Purpose] = frozenset({IDENTIFY, DETECT_FRAUD})
POLICY_BOUND: frozenset[Purpose] = frozenset({STREAM, RECOMMEND})


def apply_claims(
    batch: BatchDecision,
    *,
    claims: Mapping[TrackId, Sequence[Claim]],
    original_allowed: Mapping[TrackId, bool],
    policies: Mapping[ArtistId, ClaimPolicy],
) -> BatchDecision:
    """``batch`` with every governed copy's answer narrowed by its originals (see the module docstring)."""
    if batch.purpose in EXEMPT or not claims:
        return batch
    allowed = batch.allowed.copy()
    reasons = batch.reasons.copy()
    for i, track in enumerate(batch.tracks):
        governing = [c for c in claims.get(track, ()) if c.status.governs]
        if not governing or not allowed[i]:
            continue
        reason = _narrowed(batch.purpose, governing, original_allowed, policies)
        if reason is not None:
            allowed[i] = False
            reasons[i] = reason
    return replace(batch, allowed=np.asarray(allowed, dtype=bool), reasons=reasons)


def _narrowed(
    purpose: Purpose,
    governing: Sequence[Claim],
    original_allowed: Mapping[TrackId, bool],
    policies: Mapping[ArtistId, ClaimPolicy],
) -> Reason | None:
    """Why a copy allowed on its own is denied by one of its claims, or None if none objects."""
    for claim in governing:
        if not original_allowed.get(claim.original_track_id, False):
            return Reason.CLAIM_ORIGINAL_DENIES
        if purpose in POLICY_BOUND:
            policy = policies.get(claim.original_artist_id, ClaimPolicy.HOLD)
            if policy is ClaimPolicy.BLOCK or (policy is ClaimPolicy.HOLD and claim.status is ClaimStatus.UPHELD):
                return Reason.CLAIM_BLOCKED
            if policy is ClaimPolicy.HOLD:
                return Reason.CLAIM_HELD
    return None


__all__ = ["EXEMPT", "POLICY_BOUND", "apply_claims"]
