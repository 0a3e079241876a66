"""Originals a crash left without a track, and half-written temp files, are swept once old enough."""

from __future__ import annotations

import os
import time

from consentune.service import Consentune

HOUR = 3600.0


def _age(path: os.PathLike[str], seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_old_orphans_are_swept_and_everything_referenced_or_recent_is_kept(
    svc: Consentune, audio_files: dict[str, bytes]
) -> None:
    ada = svc.catalog.add_artist("Ada", actor="admin")
    kept = svc.catalog.ingest(audio_files["wav"], filename="a.wav", artist=ada, title=None, actor="t").track
    orphan = svc.gate.admit_upload(audio_files["flac"], filename="b.flac")  # stored, then the process died
    recent = svc.gate.admit_upload(audio_files["mp3"], filename="c.mp3")  # an upload still registering
    blobs = svc.settings.blob_dir
    by_name = {p.name: p for p in blobs.rglob("*") if p.is_file()}
    temp = by_name[kept.content_sha256].with_name(".incoming-crashed")
    temp.write_bytes(b"half an upload")
    for name in (kept.content_sha256, orphan.sha256):
        _age(by_name[name], 2 * HOUR)
    _age(temp, 2 * HOUR)

    assert svc.gate.sweep_orphans(min_age_s=HOUR) == 2
    left = {p.name for p in blobs.rglob("*") if p.is_file()}
    assert left == {kept.content_sha256, recent.sha256}

    # storing the same bytes again makes an old orphan fresh: an upload re-registering it keeps its original
    again = svc.gate.admit_upload(audio_files["mp3"], filename="c.mp3")
    assert again.sha256 == recent.sha256
    _age(next(p for p in blobs.rglob(recent.sha256)), 2 * HOUR)
    svc.gate.admit_upload(audio_files["mp3"], filename="c.mp3")
    assert svc.gate.sweep_orphans(min_age_s=HOUR) == 0
