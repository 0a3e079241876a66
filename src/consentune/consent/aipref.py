"""Map Consentune purposes onto the IETF AI-preferences vocabulary.

Pinned revision: draft-ietf-aipref-vocab-05 (December 2025).  Its labels
still move between revisions, so the mapping is data, in one place.
Purposes with no counterpart in that revision map to None.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from consentune.types import AI_INPUT, TRAIN_AI, TRAIN_GENERATIVE, Purpose

AIPREF_REVISION = "draft-ietf-aipref-vocab-05"

AIPREF_LABELS: Mapping[Purpose, str | None] = MappingProxyType(
    {
        TRAIN_AI: "train-ai",  # AI Training
        TRAIN_GENERATIVE: "train-genai",  # Generative AI Training (a subset of AI Training)
        AI_INPUT: None,  # proposed "AI Input" category not in the pinned revision
    }
)


def aipref_label(purpose: Purpose) -> str | None:
    """The vocabulary label for ``purpose``, or None when the vocabulary has none."""
    return AIPREF_LABELS.get(purpose)


__all__ = ["AIPREF_LABELS", "AIPREF_REVISION", "aipref_label"]
