"""A worker process for the revocation test: ``python -m tests.sharedstate._worker HOME DB_URL REDIS_URL PREFIX``.

It opens the service, listens for revocation notices, warms its
recommendation snapshot and prints ``ready``; then for each ``check USER``
line on stdin it prints one JSON line: the user's recommended tracks and the
remote notices this worker applied.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from consentune.config import Settings
from consentune.service import open_service


def main() -> None:
    home, database_url, redis_url, prefix = sys.argv[1:5]
    svc = open_service(Settings(home=Path(home), database_url=database_url, redis_url=redis_url, redis_prefix=prefix))
    assert svc.notices is not None
    svc.notices.start()
    svc.notices.wait_subscribed(30)
    print("ready", flush=True)
    for line in sys.stdin:
        user = line.split()[1]
        recs = [r.track for r in svc.recommend.for_user(user, n=10, actor="service:test")]
        remote = svc.metrics.revocations.labels("remote")._value.get()
        print(json.dumps({"recs": recs, "remote_notices": remote}), flush=True)
    svc.close()


if __name__ == "__main__":
    main()
