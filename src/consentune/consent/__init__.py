"""Consent registry: terms, artists' agreements and the pure decide() function."""

from consentune.consent.aipref import AIPREF_REVISION, aipref_label
from consentune.consent.decide import BatchDecision, ConsentContext, decide, decide_batch
from consentune.consent.rules import ConsentRule
from consentune.consent.terms import Terms, default_terms, validate_kinds

__all__ = [
    "AIPREF_REVISION",
    "BatchDecision",
    "ConsentContext",
    "ConsentRule",
    "Terms",
    "aipref_label",
    "decide",
    "decide_batch",
    "default_terms",
    "validate_kinds",
]
