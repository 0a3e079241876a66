"""Claims: a copy found by identification is governed by the original artist's consent and claim policy.

The service lives in :mod:`consentune.claims.service` (it needs the ledger);
this package root stays light because the gate imports the pure effect.
"""

from consentune.claims.effect import EXEMPT, POLICY_BOUND, apply_claims
from consentune.claims.model import DEFAULT_POLICY, Claim, ClaimPolicy, ClaimStatus

__all__ = ["DEFAULT_POLICY", "EXEMPT", "POLICY_BOUND", "Claim", "ClaimPolicy", "ClaimStatus", "apply_claims"]
