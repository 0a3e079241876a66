"""Catalogue: artists, tracks and uploads.  Content enters through the gate."""

from consentune.catalog.service import Catalog, IngestResult, safe_filename

__all__ = ["Catalog", "IngestResult", "safe_filename"]
