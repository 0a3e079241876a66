"""Platform terms: each version gives every purpose a kind (required, opt-out, opt-in)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from consentune.errors import ConsentError
from consentune.types import (
    AI_INPUT,
    DETECT_FRAUD,
    IDENTIFY,
    KNOWN_PURPOSES,
    ORGANIZE,
    RECOMMEND,
    STREAM,
    TRAIN_AI,
    TRAIN_GENERATIVE,
    Purpose,
    PurposeKind,
    is_wellformed_purpose,
)

# Purposes whose kind is fixed whatever a terms version says.  Generative
# training is never on by default: only the artist's own "yes" enables it.
ALWAYS_OPT_IN: frozenset[Purpose] = frozenset({TRAIN_GENERATIVE})

DEFAULT_KINDS: Mapping[Purpose, PurposeKind] = MappingProxyType(
    {
        IDENTIFY: PurposeKind.REQUIRED,
        DETECT_FRAUD: PurposeKind.REQUIRED,
        RECOMMEND: PurposeKind.OPT_OUT,
        ORGANIZE: PurposeKind.OPT_OUT,
        TRAIN_AI: PurposeKind.OPT_IN,
        TRAIN_GENERATIVE: PurposeKind.OPT_IN,
        AI_INPUT: PurposeKind.OPT_IN,
        STREAM: PurposeKind.REQUIRED,
    }
)


@dataclass(frozen=True, slots=True)
class Terms:
    """One published version of the platform terms."""

    version: int
    kinds: Mapping[Purpose, PurposeKind]
    summary: str = ""
    published_at: str = ""
    explanations: Mapping[Purpose, str] = field(default_factory=dict)

    def kind_of(self, purpose: Purpose) -> PurposeKind | None:
        """The kind for ``purpose``, or None when these terms do not name it (denied)."""
        return self.kinds.get(purpose)


def validate_kinds(kinds: Mapping[str, str]) -> dict[Purpose, PurposeKind]:
    """Check a proposed terms version and return it typed.

    Every known purpose must be covered, new purposes must be well-formed
    names, and ``train-generative`` may only ever be opt-in.
    """
    typed: dict[Purpose, PurposeKind] = {}
    for name, kind in kinds.items():
        if not is_wellformed_purpose(name):
            raise ConsentError(
                f"purpose name {name!r} is not well-formed",
                hint="use lower-case words joined by hyphens, e.g. 'detect-fraud'",
            )
        try:
            typed[Purpose(name)] = PurposeKind(kind)
        except ValueError:
            allowed = ", ".join(k.value for k in PurposeKind)
            raise ConsentError(f"purpose {name!r} has unknown kind {kind!r}", hint=f"use one of: {allowed}") from None
    missing = [p for p in KNOWN_PURPOSES if p not in typed]
    if missing:
        raise ConsentError(
            f"terms do not cover purposes: {', '.join(missing)}",
            hint="give every known purpose a kind (required, opt-out or opt-in)",
        )
    for purpose in ALWAYS_OPT_IN:
        if typed[purpose] is not PurposeKind.OPT_IN:
            raise ConsentError(
                f"{purpose} must be opt-in, terms say {typed[purpose].value}",
                hint="generative training is only ever enabled by the artist's explicit yes",
            )
    return typed


def default_terms() -> Terms:
    """The terms shipped with Consentune (published as version 1 on first run)."""
    return Terms(
        version=1,
        kinds=DEFAULT_KINDS,
        summary=(
            "Streaming to listeners and platform integrity services (identification, fraud detection) always run. "
            "Recommendations and organization run unless you opt out. "
            "No AI training and no AI input without your explicit opt-in."
        ),
        explanations=EXPLANATIONS,
    )


EXPLANATIONS: Mapping[Purpose, str] = MappingProxyType(
    {
        IDENTIFY: "Fingerprint your audio to find re-uploads of your tracks by others.",
        DETECT_FRAUD: "Analyse plays of your tracks to catch bots and artificial streaming.",
        RECOMMEND: "Suggest your tracks to listeners from listening patterns.",
        ORGANIZE: "Analyse audio for tags, tempo, key, similar tracks and duplicates.",
        TRAIN_AI: "Use your content to train AI models outside the platform's own services.",
        TRAIN_GENERATIVE: "Train generative models, including ones imitating a voice, sound or style.",
        AI_INPUT: "Feed your content to an AI system at inference time (e.g. retrieval).",
        STREAM: "Play your tracks to listeners, only through short-lived signed stream URLs.",
    }
)

__all__ = [
    "ALWAYS_OPT_IN",
    "DEFAULT_KINDS",
    "EXPLANATIONS",
    "Terms",
    "default_terms",
    "validate_kinds",
]
