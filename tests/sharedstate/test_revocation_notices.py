"""A revocation in one worker reaches every other worker's in-memory recommendation snapshot (Redis pub/sub)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from consentune.service import open_service
from consentune.types import PlayEvent, Purpose, TrackId
from tests.sharedstate.conftest import SharedRedis

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 10, 1, tzinfo=UTC)


def _ask(worker: subprocess.Popen[str], user: str) -> dict[str, Any]:
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.write(f"check {user}\n")
    worker.stdin.flush()
    answer: dict[str, Any] = json.loads(worker.stdout.readline())
    return answer


def test_every_worker_drops_a_revoked_track_from_its_snapshot(
    shared_redis: SharedRedis, tmp_path: Path, audio_files: dict[str, bytes]
) -> None:
    home, url = tmp_path / "home", f"sqlite:///{tmp_path / 'c.db'}"
    svc = open_service(shared_redis.settings(home, url))
    workers: list[subprocess.Popen[str]] = []
    try:
        ada = svc.catalog.add_artist("Ada", actor="admin:test")
        tracks = [svc.catalog.ingest(data, filename=f"{fmt}.bin", artist=ada, title=fmt, actor="t").track.id
                  for fmt, data in audio_files.items()]  # fmt: skip
        plays = [PlayEvent(f"user{u}", tracks[(u + k) % len(tracks)], T0 + timedelta(minutes=10 * u + k), 120_000)
                 for u in range(30) for k in range(3)]  # fmt: skip
        svc.store.add_plays(plays)
        svc.recommend.train(actor="admin:test")
        args = [
            sys.executable,
            "-m",
            "tests.sharedstate._worker",
            str(home),
            url,
            shared_redis.url,
            shared_redis.prefix,
        ]
        for _ in range(2):
            workers.append(subprocess.Popen(args, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        before = [_ask(w, "user1") for w in workers]
        target = TrackId(before[0]["recs"][0])
        assert all(target in b["recs"] and b["remote_notices"] == 0 for b in before)
        svc.consent.revoke(ada, purpose=Purpose("recommend"), actor="artist:ada", track=target)
        for worker in workers:
            deadline = time.monotonic() + 10
            answer = _ask(worker, "user1")
            while answer["remote_notices"] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
                answer = _ask(worker, "user1")
            assert answer["remote_notices"] == 1 and target not in answer["recs"]
    finally:
        for worker in workers:
            if worker.stdin is not None:
                worker.stdin.close()
            worker.wait(timeout=30)
        svc.close()
