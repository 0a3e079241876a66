"""Content organization: descriptors (tempo, key, loudness, embedding), similar tracks, duplicate groups
and tag normalization.  Pure numpy/scipy; audio only through the purpose gate under ``organize``.
"""

from consentune.organize.descriptors import FEATURE_KIND, Descriptors, analyze
from consentune.organize.duplicates import DuplicateGroup, DuplicateMatch, NearDuplicateFinder, group_pairs
from consentune.organize.service import AnalyzeReport, OrganizeService
from consentune.organize.similar import Neighbour, SimilarityIndex

__all__ = [
    "FEATURE_KIND",
    "AnalyzeReport",
    "Descriptors",
    "DuplicateGroup",
    "DuplicateMatch",
    "NearDuplicateFinder",
    "Neighbour",
    "OrganizeService",
    "SimilarityIndex",
    "analyze",
    "group_pairs",
]
