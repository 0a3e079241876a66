"""API keys: random secrets shown once, stored only as SHA-256, each with a role."""

from consentune.auth.keys import ApiKeys, Principal

__all__ = ["ApiKeys", "Principal"]
