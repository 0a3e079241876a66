"""Recommendations: interaction matrices, models with fold-in, a two-stage ranker with a long-tail
slot target, exposure re-ranking, cold start, metrics.

Pure numpy/scipy (and the optional ``implicit`` library for IALS); no web,
database or CLI imports.  Consent is applied by the caller as an
``allowed`` item mask: a disallowed item is never returned.
"""

from consentune.recommend import metrics
from consentune.recommend.coldstart import TagLinear, TagPopularity, TagProfile, TagVocabulary
from consentune.recommend.interactions import Interactions, Weighting, build_interactions, holdout_split
from consentune.recommend.models import EASE, IALS, Blend, ItemKNN, Popularity, Recommender, RP3Beta, top_n
from consentune.recommend.rerank import rerank_long_tail
from consentune.recommend.stacking import LogisticStage, TwoStage

__all__ = [
    "EASE",
    "IALS",
    "Blend",
    "Interactions",
    "ItemKNN",
    "LogisticStage",
    "Popularity",
    "RP3Beta",
    "Recommender",
    "TagLinear",
    "TagPopularity",
    "TagProfile",
    "TagVocabulary",
    "TwoStage",
    "Weighting",
    "build_interactions",
    "holdout_split",
    "metrics",
    "rerank_long_tail",
    "top_n",
]
