"""One scheduler process for the multi-process test: ``python -m tests.scheduler._worker URL LOG SECONDS [crash]``.

Each run of the job appends ``<holder> <due µs>`` to LOG (O_APPEND lines, so
processes never interleave).  ``crash`` ends the process without stepping
down, as a killed worker would.
"""

from __future__ import annotations

import os
import sys
import time

from consentune.scheduler import Job, Scheduler, SqlLeases
from consentune.storage import make_engine

PERIOD_S = 0.4
TICK_S = 0.05
LEASE_TTL_S = 1.0


def main() -> None:
    url, log, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    crash = len(sys.argv) > 4 and sys.argv[4] == "crash"
    engine = make_engine(url)
    holder = f"pid{os.getpid()}"
    scheduler = Scheduler(
        SqlLeases(engine), [Job("tick", PERIOD_S, lambda: None)], holder=holder, lease_ttl_s=LEASE_TTL_S
    )
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, due in scheduler.tick():
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(fd, f"{holder} {name} {due}\n".encode())
            os.close(fd)
        time.sleep(TICK_S)
    if crash:
        os._exit(0)
    scheduler.release()
    engine.dispose()


if __name__ == "__main__":
    main()
