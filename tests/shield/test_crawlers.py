"""The packaged AI crawler list: provenance, content, and the refresh conversion."""

from __future__ import annotations

import importlib.util
import json
import re
from datetime import date
from importlib import resources
from pathlib import Path
from types import ModuleType

import pytest

from consentune.errors import InvalidInput
from consentune.shield import load_ai_crawlers, load_crawler_list
from consentune.shield.crawlers import convert_robots_json

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "refresh_ai_crawlers.py"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SAMPLE = {
    "ExampleBot": {
        "operator": "[Example Labs](https://example.org/bot)",
        "respect": "[Yes](https://example.org/robots)",
        "function": "Scrapes data to train models.",
        "frequency": "Daily.",
        "description": "Not kept.",
    },
    "Mystery Crawler": {"operator": "Unclear at this time.", "respect": "No", "function": "Unclear at this time."},
    "OddBot/1.0": {"operator": "Unknown", "respect": "At the discretion of its users."},
}


def test_packaged_list_states_its_source_licence_and_version() -> None:
    listing = load_crawler_list()
    raw = json.loads(resources.files("consentune.shield").joinpath("data", "ai_crawlers.json").read_text("utf-8"))
    assert listing.licence == "MIT" and "Copyright (c) 2024 ai.robots.txt" in raw["licence_notice"]
    assert re.fullmatch(r"[0-9a-f]{40}", listing.source_commit)
    assert listing.source.startswith("https://github.com/ai-robots-txt/ai.robots.txt/blob/" + listing.source_commit)
    assert date.fromisoformat(listing.retrieved)
    assert listing.version == f"{date.fromisoformat(listing.retrieved):%Y.%m.%d}+{listing.source_commit[:7]}"
    assert raw["count"] == len(listing.crawlers) == len(load_ai_crawlers())


def test_packaged_list_names_well_known_ai_crawlers() -> None:
    crawlers = {c.token: c for c in load_ai_crawlers()}
    assert len(crawlers) == len(load_ai_crawlers()) >= 100
    assert {"GPTBot", "ClaudeBot", "CCBot", "Google-Extended", "Bytespider", "PerplexityBot"} <= set(crawlers)
    assert crawlers["GPTBot"].operator == "OpenAI"
    assert crawlers["Bytespider"].respects_robots_txt is False
    assert all(c.token == c.token.strip() and "\n" not in c.token for c in crawlers.values())


def test_conversion_reduces_links_and_unknowns() -> None:
    data = convert_robots_json(SAMPLE, source_commit=COMMIT, retrieved=date(2026, 1, 2))
    assert data["version"] == "2026.01.02+0123456" and data["count"] == 3
    example, mystery, odd = data["crawlers"]
    assert example == {
        "token": "ExampleBot",
        "operator": "Example Labs",
        "function": "Scrapes data to train models.",
        "respects_robots_txt": True,
    }
    assert (mystery["operator"], mystery["function"], mystery["respects_robots_txt"]) == (None, None, False)
    assert (odd["operator"], odd["function"], odd["respects_robots_txt"]) == (None, None, None)


@pytest.mark.parametrize(
    ("raw", "commit", "message"),
    [(SAMPLE, "main", "40-digit"), ([], COMMIT, "non-empty JSON object"), ({"Bot": "text"}, COMMIT, "Bot")],
)
def test_conversion_rejects_bad_input(raw: object, commit: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        convert_robots_json(raw, source_commit=commit, retrieved=date(2026, 1, 2))  # type: ignore[arg-type]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("refresh_ai_crawlers", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_refresh_script_writes_the_converted_file(tmp_path: Path) -> None:
    source, out = tmp_path / "robots.json", tmp_path / "ai_crawlers.json"
    source.write_text(json.dumps(SAMPLE), encoding="utf-8")
    code = _script().main([str(source), "--commit", COMMIT, "--retrieved", "2026-01-02", "--out", str(out)])
    assert code == 0
    assert json.loads(out.read_text("utf-8")) == convert_robots_json(
        SAMPLE, source_commit=COMMIT, retrieved=date(2026, 1, 2)
    )


def test_refresh_script_reports_bad_input_on_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "robots.json"
    source.write_text("[]", encoding="utf-8")
    assert _script().main([str(source), "--commit", COMMIT, "--out", str(tmp_path / "out.json")]) == 2
    assert capsys.readouterr().err.startswith("error: robots.json must be")
