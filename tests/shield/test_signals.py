"""Every emitted signal, read back by an independent parser, states the registry's decision for every track.

The readers here are written from the specifications, not from the generator:
Python's ``urllib.robotparser`` (first match) and a small RFC 9309 reader
(longest match) for robots.txt, an aipref Content-Usage reader, a TDMRep
first-match reader with ``*`` and ``$``, and ``xml.etree`` for XMP.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from urllib.robotparser import RobotFileParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentune.errors import InvalidInput
from consentune.shield import (
    CatalogPolicy,
    TrackPolicy,
    load_ai_crawlers,
    robots_txt,
    tdmrep_json,
    track_headers,
    xmp_packet,
)

BASE = "https://music.example"
PURPOSES = ("train-ai", "train-generative", "ai-input")
CRAWLERS = load_ai_crawlers()
TRICKY_AGENTS = ("GPTBot", "ClaudeBot", "Brightbot 1.0", "iaskspider/2.0", "meta-externalagent", "Spider", "Code")
PLUS = "{http://ns.useplus.org/ldf/xmp/1.0/}"

choices = st.dictionaries(st.sampled_from(PURPOSES), st.booleans())
# A tiny alphabet makes ids that are prefixes of each other, the hard case for path rules.
track_ids = st.text(alphabet="ab-", min_size=1, max_size=4)
catalogues = st.builds(
    CatalogPolicy,
    tracks=st.lists(st.builds(TrackPolicy, track_id=track_ids, allowed=choices), unique_by=lambda t: t.track_id).map(
        tuple
    ),
    site_reserved=st.booleans(),
    policy_url=st.sampled_from([None, "/ai-policy", "https://rights.example/tdm.json"]),
)


def allows(track: TrackPolicy, purpose: str) -> bool:
    return track.allowed.get(purpose, False)


# --- independent readers ---------------------------------------------------------


def robots_groups(text: str) -> list[tuple[list[str], list[tuple[str, str]]]]:
    """RFC 9309 groups: user-agent lines, then rules until the next user-agent line."""
    groups: list[tuple[list[str], list[tuple[str, str]]]] = []
    agents: list[str] = []
    rules: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "user-agent":
            if rules:
                groups.append((agents, rules))
                agents, rules = [], []
            agents.append(value.lower())
        elif agents:
            rules.append((key, value))
    if agents:
        groups.append((agents, rules))
    return groups


def group_for(text: str, agent: str) -> list[tuple[str, str]]:
    groups = robots_groups(text)
    for agents, rules in groups:
        if agent.lower() in agents:
            return rules
    return next(rules for agents, rules in groups if "*" in agents)


def may_crawl(rules: list[tuple[str, str]], path: str) -> bool:
    """Longest matching Allow/Disallow wins; on a tie Allow wins; no match allows."""
    matches = [
        (len(value), key == "allow")
        for key, value in rules
        if key in ("allow", "disallow") and value and path.startswith(value)
    ]
    return max(matches, default=(0, True))[1]


def sf_dictionary(text: str) -> dict[str, object]:
    """RFC 9651 dictionary of tokens and booleans (enough for aipref), parameters ignored."""
    result: dict[str, object] = {}
    for member in text.split(","):
        member = member.strip().split(";", 1)[0]
        key, eq, value = member.partition("=")
        assert re.fullmatch(r"[a-z*][a-z0-9_\-.*]*", key), member
        result[key] = value if eq else True
    return result


def usage_for(rules: list[tuple[str, str]], path: str) -> dict[str, object]:
    """The Content-Usage statement of the longest matching rule (draft-ietf-aipref-attach-04)."""
    best: tuple[int, str] | None = None
    for key, value in rules:
        if key != "content-usage":
            continue
        rule_path, _, preference = value.partition(" ") if value.startswith("/") else ("/", "", value)
        if path.startswith(rule_path) and (best is None or len(rule_path) > best[0]):
            best = (len(rule_path), preference.strip())
    return sf_dictionary(best[1]) if best else {}


def tdm_rule(rules: list[dict[str, object]], path: str) -> dict[str, object] | None:
    """TDMRep: the first rule whose location pattern (with * and $) matches the path."""
    for rule in rules:
        pattern = str(rule["location"])
        anchored = pattern.endswith("$")
        regex = ".*".join(map(re.escape, pattern.rstrip("$").split("*"))) + ("$" if anchored else "")
        if re.match(regex, path):
            return rule
    return None


def aipref_answer(statement: dict[str, object], label: str) -> bool | None:
    return {"y": True, "n": False}.get(str(statement[label])) if label in statement else None


# --- the property ------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(policy=catalogues, agent=st.sampled_from([c.token for c in CRAWLERS]))
def test_every_signal_reads_back_as_the_registry_decision(policy: CatalogPolicy, agent: str) -> None:
    text = robots_txt(policy, CRAWLERS, base_url=BASE)
    parser = RobotFileParser()
    parser.parse(text.splitlines())
    tdm = json.loads(json.dumps(tdmrep_json(policy, base_url=BASE)))
    stream = f"{BASE}{policy.stream_prefix}signed-abc?sig=1"
    for ua in (agent, *TRICKY_AGENTS, "Googlebot"):
        assert not parser.can_fetch(ua, stream)
        assert not may_crawl(group_for(text, ua), f"{policy.stream_prefix}signed-abc")
    for track in policy.tracks:
        page = policy.track_page(track.track_id)
        train_ai, train_genai = allows(track, "train-ai"), allows(track, "train-generative")
        for ua in (agent, *TRICKY_AGENTS):
            assert parser.can_fetch(ua, BASE + page) is train_ai, (ua, page)
            assert may_crawl(group_for(text, ua), page) is train_ai, (ua, page)
        assert parser.can_fetch("Googlebot", BASE + page)
        for ua in (agent, "Googlebot"):
            statement = usage_for(group_for(text, ua), page)
            assert aipref_answer(statement, "train-ai") is train_ai
            assert aipref_answer(statement, "train-genai") is train_genai
        rule = tdm_rule(tdm, page)
        assert rule is not None and rule["tdm-reservation"] == int(not (train_ai and train_genai))
        assert ("tdm-policy" in rule) == (rule["tdm-reservation"] == 1 and policy.policy_url is not None)
        check_headers(track)
        check_xmp(track)
    outside = tdm_rule(tdm, "/about")
    assert (outside is not None and outside["tdm-reservation"] == 1) if policy.site_reserved else outside is None


def check_headers(track: TrackPolicy) -> None:
    headers = {k.lower(): v for k, v in track_headers(track, policy_url="https://music.example/ai").items()}
    reserved = not (allows(track, "train-ai") and allows(track, "train-generative"))
    assert int(headers["tdm-reservation"]) == int(reserved)
    assert headers.get("tdm-policy") == ("https://music.example/ai" if reserved else None)
    statement = sf_dictionary(headers["content-usage"])
    assert aipref_answer(statement, "train-ai") is allows(track, "train-ai")
    assert aipref_answer(statement, "train-genai") is allows(track, "train-generative")


def check_xmp(track: TrackPolicy) -> None:
    root = ET.fromstring(xmp_packet(track, title="Song", artist="Artist"))
    value = root.findtext(f".//{PLUS}DataMining")
    key = (allows(track, "train-ai"), allows(track, "train-generative"), allows(track, "ai-input"))
    expected = {
        (True, True, True): "DMI-ALLOWED",
        (True, False, True): "DMI-PROHIBITED-GENAIMLTRAINING",
        (False, False, True): "DMI-PROHIBITED-AIMLTRAINING",
        (False, False, False): "DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING",
    }.get(key, "DMI-PROHIBITED-SEECONSTRAINT")
    assert value == "http://ns.useplus.org/ldf/vocab/" + expected
    constraint = root.findtext(f".//{PLUS}OtherConstraints/*/*") or ""
    for purpose in PURPOSES:
        assert f"{purpose}: {'allowed' if allows(track, purpose) else 'not allowed'}" in constraint


# --- examples --------------------------------------------------------------------


def test_robots_txt_without_crawlers_has_only_the_default_group() -> None:
    policy = CatalogPolicy((TrackPolicy("t1", {"train-ai": True}),))
    groups = robots_groups(robots_txt(policy, (), base_url=BASE))
    assert [agents for agents, _ in groups] == [["*"]]


def test_site_wide_content_signal_follows_the_default() -> None:
    reserved = robots_txt(CatalogPolicy(()), CRAWLERS[:1], base_url=BASE)
    open_site = robots_txt(CatalogPolicy((), site_reserved=False), CRAWLERS[:1], base_url=BASE)
    assert "Content-Signal: search=yes, ai-input=no, ai-train=no" in reserved.splitlines()
    assert "Content-Signal: search=yes" in open_site.splitlines()
    assert "Content-Usage: / train-ai=n, train-genai=n" in reserved.splitlines()
    assert not any(line.startswith("Content-Usage: / ") for line in open_site.splitlines())


def test_crawler_names_are_deduplicated_ignoring_case() -> None:
    text = robots_txt(CatalogPolicy(()), CRAWLERS, base_url=BASE)
    agents = [line.split(":", 1)[1].strip().lower() for line in text.splitlines() if line.startswith("User-agent:")]
    assert len(agents) == len(set(agents))
    assert {"gptbot", "claudebot", "ccbot", "google-extended", "*"} <= set(agents)


def test_unknown_purpose_and_duplicate_track_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="train_ai"):
        TrackPolicy("t", {"train_ai": True})
    with pytest.raises(InvalidInput, match="twice"):
        CatalogPolicy((TrackPolicy("t", {}), TrackPolicy("t", {})))
    with pytest.raises(InvalidInput, match="stream prefix"):
        CatalogPolicy((TrackPolicy("x", {}),), track_path="/stream/{id}")
    with pytest.raises(InvalidInput, match="track_path"):
        CatalogPolicy((), track_path="/tracks/*/{id}")


def test_track_ids_are_percent_encoded_in_paths() -> None:
    policy = CatalogPolicy((TrackPolicy("a b/c", {"train-ai": True}),))
    assert policy.track_page("a b/c") == "/v1/listen/tracks/a%20b%2Fc"
