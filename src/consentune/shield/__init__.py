"""Shield: machine-readable opt-out signals generated from the consent registry."""

from consentune.shield.crawlers import Crawler, CrawlerList, load_ai_crawlers, load_crawler_list
from consentune.shield.signals import (
    CatalogPolicy,
    TrackPolicy,
    embed_xmp,
    robots_txt,
    tdmrep_json,
    track_headers,
    xmp_packet,
)

__all__ = [
    "CatalogPolicy",
    "Crawler",
    "CrawlerList",
    "TrackPolicy",
    "embed_xmp",
    "load_ai_crawlers",
    "load_crawler_list",
    "robots_txt",
    "tdmrep_json",
    "track_headers",
    "xmp_packet",
]
