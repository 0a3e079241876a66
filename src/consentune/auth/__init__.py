"""API keys: random secrets shown once, stored only as SHA-256, each with a role; who may see what."""

from consentune.auth.access import visible_track
from consentune.auth.keys import ApiKeys, Principal

__all__ = ["ApiKeys", "Principal", "visible_track"]
