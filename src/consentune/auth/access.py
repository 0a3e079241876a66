"""Who may see what: the one authorization rule the JSON API and the dashboard share."""

from __future__ import annotations

from consentune.auth.keys import Principal
from consentune.catalog import Catalog
from consentune.errors import NotFound
from consentune.types import Role, Track


def visible_track(catalog: Catalog, caller: Principal, track_id: str) -> Track:
    """The track, if the caller may see it; an artist never learns of others' tracks (404, not 403)."""
    track = catalog.track(track_id)
    if caller.role is Role.ARTIST and track.artist_id != caller.artist_id:
        raise NotFound(f"unknown track {track_id!r}", hint="list your tracks with GET /v1/tracks")
    return track


__all__ = ["visible_track"]
