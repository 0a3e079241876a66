"""The list of known AI crawlers, kept as versioned data.

The list is a converted snapshot of ``robots.json`` from the ai.robots.txt
project (https://github.com/ai-robots-txt/ai.robots.txt, MIT licence), stored
in ``consentune/shield/data/ai_crawlers.json`` together with its source
commit, retrieval date, version and the upstream licence notice.  It is
refreshed with ``scripts/refresh_ai_crawlers.py``, which calls
:func:`convert_robots_json` on a robots.json downloaded by hand; nothing here
touches the network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from consentune.errors import InvalidInput

DATA_FORMAT = 1
UPSTREAM_REPOSITORY = "https://github.com/ai-robots-txt/ai.robots.txt"
UPSTREAM_FILE = "robots.json"
UPSTREAM_LICENCE = "MIT"
UPSTREAM_COPYRIGHT = "Copyright (c) 2024 ai.robots.txt"
_DATA_FILE = "ai_crawlers.json"
_UNKNOWN = re.compile(r"^(unclear at this time\.?|unknown|no information( provided)?\.?)$", re.IGNORECASE)
_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


@dataclass(frozen=True, slots=True)
class Crawler:
    """One AI crawler as the upstream list describes it.

    ``token`` is the product token robots.txt ``User-agent`` lines name;
    ``operator`` and ``function`` are upstream's free text (links reduced to
    their text), None when upstream says it is unknown;
    ``respects_robots_txt`` is True/False when upstream says plainly yes/no.
    """

    token: str
    operator: str | None
    function: str | None
    respects_robots_txt: bool | None


@dataclass(frozen=True, slots=True)
class CrawlerList:
    """The crawler list with where it came from; ``retrieved`` is an ISO date."""

    version: str
    source: str
    source_commit: str
    licence: str
    retrieved: str
    crawlers: tuple[Crawler, ...]


@cache
def load_crawler_list() -> CrawlerList:
    """The packaged crawler list with its provenance (read once, then cached)."""
    text = resources.files("consentune.shield").joinpath("data", _DATA_FILE).read_text(encoding="utf-8")
    return _from_data(json.loads(text))


def load_ai_crawlers() -> tuple[Crawler, ...]:
    """The packaged AI crawlers, in upstream order."""
    return load_crawler_list().crawlers


def convert_robots_json(raw: Mapping[str, Any], *, source_commit: str, retrieved: date) -> dict[str, Any]:
    """Turn an upstream robots.json (user agent -> facts) into our data file's JSON value.

    ``source_commit`` is the upstream commit the file was taken from (40 hex
    digits); ``retrieved`` the day it was downloaded.  Raises
    :class:`~consentune.errors.InvalidInput` when the input is not shaped
    like robots.json.
    """
    if not re.fullmatch(r"[0-9a-f]{40}", source_commit):
        raise InvalidInput(
            f"source_commit {source_commit!r} is not a 40-digit git commit id",
            hint="pass the commit of ai.robots.txt the file was downloaded from",
        )
    crawlers = [_convert_entry(agent, facts) for agent, facts in _entries(raw)]
    return {
        "format": DATA_FORMAT,
        "version": f"{retrieved:%Y.%m.%d}+{source_commit[:7]}",
        "source": f"{UPSTREAM_REPOSITORY}/blob/{source_commit}/{UPSTREAM_FILE}",
        "source_commit": source_commit,
        "retrieved": retrieved.isoformat(),
        "licence": UPSTREAM_LICENCE,
        "licence_notice": f"{UPSTREAM_COPYRIGHT}. {_MIT_PERMISSION}",
        "count": len(crawlers),
        "crawlers": crawlers,
    }


def _entries(raw: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidInput("robots.json must be a non-empty JSON object", hint="pass ai.robots.txt's robots.json")
    bad = [agent for agent, facts in raw.items() if not agent.strip() or not isinstance(facts, Mapping)]
    if bad:
        raise InvalidInput(
            f"robots.json entries {bad[:3]!r} are not user agent -> object",
            hint="pass ai.robots.txt's robots.json unmodified",
        )
    return list(raw.items())


def _convert_entry(agent: str, facts: Mapping[str, Any]) -> dict[str, Any]:
    respect = _plain(facts.get("respect"))
    return {
        "token": agent.strip(),
        "operator": _known(facts.get("operator")),
        "function": _known(facts.get("function")),
        "respects_robots_txt": _yes_no(respect),
    }


def _plain(value: Any) -> str | None:
    """Upstream text with Markdown links reduced to their text, or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    return _MARKDOWN_LINK.sub(r"\1", value).strip()


def _known(value: Any) -> str | None:
    text = _plain(value)
    return None if text is None or _UNKNOWN.match(text) else text


def _yes_no(text: str | None) -> bool | None:
    words = (text or "").lower().split()
    first = words[0].strip(".;,") if words else ""
    return {"yes": True, "no": False}.get(first)


def _from_data(data: Mapping[str, Any]) -> CrawlerList:
    if data.get("format") != DATA_FORMAT:
        raise InvalidInput(
            f"crawler data format {data.get('format')!r} is not {DATA_FORMAT}",
            hint="regenerate it with scripts/refresh_ai_crawlers.py",
        )
    crawlers = tuple(
        Crawler(
            token=item["token"],
            operator=item["operator"],
            function=item["function"],
            respects_robots_txt=item["respects_robots_txt"],
        )
        for item in data["crawlers"]
    )
    return CrawlerList(
        version=data["version"],
        source=data["source"],
        source_commit=data["source_commit"],
        licence=data["licence"],
        retrieved=data["retrieved"],
        crawlers=crawlers,
    )


# The upstream MIT licence asks that its notice travel with substantial copies of the list.
_MIT_PERMISSION = (
    "Permission is hereby granted, free of charge, to any person obtaining a copy of this software and "
    'associated documentation files (the "Software"), to deal in the Software without restriction, including '
    "without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell "
    "copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the "
    "following conditions: The above copyright notice and this permission notice shall be included in all "
    "copies or substantial portions of the Software. "
    'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT '
    "LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO "
    "EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER "
    "IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR "
    "THE USE OR OTHER DEALINGS IN THE SOFTWARE."
)


__all__ = [
    "Crawler",
    "CrawlerList",
    "convert_robots_json",
    "load_ai_crawlers",
    "load_crawler_list",
]
