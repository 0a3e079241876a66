#!/usr/bin/env python3
"""Refresh Consentune's AI crawler list from a robots.json you downloaded yourself.

This script never touches the network.  To refresh the list:

1. Pick a commit of https://github.com/ai-robots-txt/ai.robots.txt and
   download its ``robots.json`` (for example
   ``https://raw.githubusercontent.com/ai-robots-txt/ai.robots.txt/<commit>/robots.json``).
2. Run, from the repository root::

       .venv/bin/python scripts/refresh_ai_crawlers.py robots.json --commit <commit>

   ``--retrieved YYYY-MM-DD`` sets the retrieval date (default: today, UTC);
   ``--out PATH`` writes elsewhere than the packaged data file.
3. Review the diff of ``src/consentune/shield/data/ai_crawlers.json`` and run
   the tests (``.venv/bin/pytest -q tests/shield``).

The upstream list is MIT licensed; the data file carries its notice.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from consentune.errors import ConsentuneError
from consentune.shield.crawlers import convert_robots_json

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "consentune" / "shield" / "data" / "ai_crawlers.json"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("robots_json", type=Path, help="robots.json downloaded from ai.robots.txt")
    parser.add_argument("--commit", required=True, help="the upstream commit (40 hex digits) it came from")
    parser.add_argument("--retrieved", type=date.fromisoformat, help="download date, YYYY-MM-DD (default: today)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"where to write (default: {DEFAULT_OUT})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    retrieved = args.retrieved or datetime.now(UTC).date()
    try:
        raw = json.loads(args.robots_json.read_text(encoding="utf-8"))
        data = convert_robots_json(raw, source_commit=args.commit, retrieved=retrieved)
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: cannot read {args.robots_json}: {exc}", file=sys.stderr)
        return 2
    except ConsentuneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {data['count']} crawlers, version {data['version']}, to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
