"""Content identification: invariant fingerprints, a memory-mapped index and calibrated matching.

Public API::

    IdentifyService      consent-gated indexing, matching, re-upload checks at ingest
    MmapIndex            on-disk index (implements FingerprintIndex); recovers from a killed writer at open
    ReplicatedIndex      one index for many machines: a shared feed of changes, a local MmapIndex copy each
    IndexFeed            the port the shared feed is reached through (identify.replica)
    Match                one match: track, score, time ranges, time scale, pitch shift
    MixSegment, tracklist  timelines of DJ mixes (identify.mix)
    THRESHOLD            the fixed decision threshold on Match.score

See ``docs/identify.md`` for the design and the benchmark.
"""

from consentune.identify.index import FingerprintIndex, IndexStats, MmapIndex, Postings, Recovery, TrackPostings
from consentune.identify.match import THRESHOLD, Match, match_hashes
from consentune.identify.mix import MixSegment, tracklist
from consentune.identify.replica import FeedChange, IndexFeed, ReplicatedIndex
from consentune.identify.service import (
    IdentifyService,
    IndexReport,
    ReconcileReport,
    identify_samples,
    track_postings,
)
from consentune.identify.triplets import SAMPLE_RATE, fingerprint

__all__ = [
    "SAMPLE_RATE",
    "THRESHOLD",
    "FeedChange",
    "FingerprintIndex",
    "IdentifyService",
    "IndexFeed",
    "IndexReport",
    "IndexStats",
    "Match",
    "MixSegment",
    "MmapIndex",
    "Postings",
    "ReconcileReport",
    "Recovery",
    "ReplicatedIndex",
    "TrackPostings",
    "fingerprint",
    "identify_samples",
    "match_hashes",
    "track_postings",
    "tracklist",
]
