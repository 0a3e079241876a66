"""Terms validation, the shipped default terms and the AI-preferences mapping."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentune.consent import AIPREF_REVISION, aipref_label, default_terms, validate_kinds
from consentune.consent.aipref import AIPREF_LABELS
from consentune.errors import ConsentError
from consentune.service import Consentune
from consentune.types import (
    AI_INPUT,
    KNOWN_PURPOSES,
    RECOMMEND,
    TRAIN_AI,
    TRAIN_GENERATIVE,
    Purpose,
    PurposeKind,
    is_wellformed_purpose,
)


def _valid() -> dict[str, str]:
    return {p: k.value for p, k in default_terms().kinds.items()}


def test_the_default_terms_validate_to_themselves() -> None:
    assert validate_kinds(_valid()) == dict(default_terms().kinds)


def test_every_kind_can_be_given_to_an_ordinary_purpose() -> None:
    for kind in PurposeKind:
        assert validate_kinds({**_valid(), RECOMMEND: kind.value})[RECOMMEND] is kind


@pytest.mark.parametrize("kind", [k.value for k in PurposeKind if k is not PurposeKind.OPT_IN])
def test_train_generative_must_be_opt_in(kind: str) -> None:
    with pytest.raises(ConsentError) as caught:
        validate_kinds({**_valid(), TRAIN_GENERATIVE: kind})
    assert TRAIN_GENERATIVE in caught.value.message and kind in caught.value.message


@pytest.mark.parametrize("purpose", KNOWN_PURPOSES)
def test_every_known_purpose_is_required(purpose: Purpose) -> None:
    kinds = _valid()
    del kinds[purpose]
    with pytest.raises(ConsentError) as caught:
        validate_kinds(kinds)
    assert purpose in caught.value.message


@pytest.mark.parametrize(
    "name",
    ["", "Recommend", "re commend", "train_ai", "-remix", "remix-", "re--mix", "9lives", "remix!", "rémix", "a" * 65],
)
def test_malformed_purpose_names_are_rejected(name: str) -> None:
    with pytest.raises(ConsentError) as caught:
        validate_kinds({**_valid(), name: "opt-in"})
    assert repr(name) in caught.value.message


@pytest.mark.parametrize("kind", ["", "maybe", "OPT-IN", "opt_in", "optin", "required "])
def test_unknown_kinds_are_rejected(kind: str) -> None:
    with pytest.raises(ConsentError) as caught:
        validate_kinds({**_valid(), "remix": kind})
    assert repr(kind) in caught.value.message
    assert "opt-in" in caught.value.hint


def test_an_unknown_kind_on_a_known_purpose_is_rejected() -> None:
    with pytest.raises(ConsentError):
        validate_kinds({**_valid(), TRAIN_AI: "sometimes"})


@settings(max_examples=50, deadline=None)
@given(
    extras=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9]{0,8}(-[a-z0-9]{1,8}){0,3}", fullmatch=True).filter(
            lambda name: name not in KNOWN_PURPOSES
        ),
        st.sampled_from(list(PurposeKind)),
        max_size=5,
    )
)
def test_extra_wellformed_purposes_are_accepted(extras: dict[str, PurposeKind]) -> None:
    assert all(is_wellformed_purpose(name) for name in extras)
    typed = validate_kinds({**_valid(), **{name: kind.value for name, kind in extras.items()}})
    assert {name: typed[Purpose(name)] for name in extras} == extras
    assert set(typed) == set(KNOWN_PURPOSES) | set(extras)


def test_default_terms_keep_ai_uses_opt_in_and_cover_every_purpose() -> None:
    terms = default_terms()
    assert set(terms.kinds) == set(KNOWN_PURPOSES)
    for purpose in (TRAIN_AI, TRAIN_GENERATIVE, AI_INPUT):
        assert terms.kind_of(purpose) is PurposeKind.OPT_IN, purpose
    assert all(terms.explanations.get(p) for p in KNOWN_PURPOSES)
    assert terms.kind_of(Purpose("remix")) is None


def test_aipref_mapping_covers_the_training_purposes() -> None:
    assert AIPREF_REVISION.startswith("draft-ietf-aipref-vocab-")
    assert aipref_label(TRAIN_AI) == "train-ai"
    assert aipref_label(TRAIN_GENERATIVE) == "train-genai"
    assert aipref_label(TRAIN_AI) != aipref_label(TRAIN_GENERATIVE)
    assert aipref_label(Purpose("remix")) is None
    assert set(AIPREF_LABELS) <= set(KNOWN_PURPOSES)


def test_publishing_invalid_terms_changes_nothing(sqlite_svc: Consentune) -> None:
    before_terms, before_size = sqlite_svc.consent.all_terms(), sqlite_svc.ledger.size
    with pytest.raises(ConsentError):
        sqlite_svc.consent.publish_terms({**_valid(), TRAIN_GENERATIVE: "opt-out"}, summary="x", actor="admin")
    assert sqlite_svc.consent.all_terms() == before_terms
    assert sqlite_svc.ledger.size == before_size
    published = sqlite_svc.consent.publish_terms({**_valid(), "remix": "opt-out"}, summary="v2", actor="admin")
    assert published.version == max(before_terms) + 1
    assert sqlite_svc.consent.terms(published.version).kind_of(Purpose("remix")) is PurposeKind.OPT_OUT
