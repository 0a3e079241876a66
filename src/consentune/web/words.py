"""Plain words for musicians: purpose titles, decisions, ledger actions and actors.

The exact terms stay one click away (the slug beside a title, the ledger's
own reason under "Exact entry"); these functions only translate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PURPOSE_TITLES: Mapping[str, str] = {
    "stream": "Streaming to listeners",
    "identify": "Finding copies of your music",
    "detect-fraud": "Checking plays for fraud",
    "recommend": "Recommending your music to listeners",
    "organize": "Tags, tempo, key and similar tracks",
    "train-ai": "Training AI models",
    "train-generative": "Training generative AI (music, voice or style imitation)",
    "ai-input": "Use by AI tools when they answer (inference)",
}

_ACTIONS: Mapping[str, str] = {
    "ingest": "uploaded",
    "read-audio": "audio read",
    "read-features": "analysis data read",
    "write-features": "analysed",
    "read-plays": "listening data read",
    "consent-set": "consent changed",
    "consent-clear": "track follows your all-tracks choice again",
    "terms-accept": "platform terms accepted",
    "terms-publish": "platform terms published",
    "purge": "derived data deleted",
    "index": "fingerprinted for copy detection",
    "unindex": "removed from copy detection",
    "match": "matched as a possible copy",
    "recommend": "recommended to a listener",
    "train": "used to train a recommendation model",
    "claim-open": "copy claim opened",
    "claim-dispute": "copy claim disputed",
    "claim-uphold": "copy claim upheld",
    "claim-release": "copy claim released",
    "claim-policy": "choice for copies changed",
    "block": "listener blocked",
    "challenge": "listener challenged",
}

_V = r"(?: \(terms v(\d+)\))?$"  # the terms version the gate appends to its reason
_COPY = "this upload copies another artist's track"
_REASONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile("^required by terms" + _V), "Always on: the platform terms{v} require it; every use is still logged."),
    (re.compile("^track rule: allow"), "On: your choice for this track."),
    (re.compile("^track rule: deny"), "Off: your choice for this track."),
    (re.compile("^artist rule: allow"), "On: your choice for all your tracks."),
    (re.compile("^artist rule: deny"), "Off: your choice for all your tracks."),
    (
        re.compile(r"^terms: opt-out purpose, no rule \(on\)" + _V),
        "On: the platform terms{v} have it on until you switch it off.",
    ),
    (
        re.compile(r"^terms: opt-in purpose, no rule \(off\)" + _V),
        "Off: the platform terms{v} keep it off unless you switch it on.",
    ),
    (re.compile("^purpose not in the artist's terms"), "Off: the terms you accepted do not cover this use."),
    (re.compile("^unknown track"), "Off: the track is not in the catalogue."),
    (
        re.compile("^claim: a copy of another artist's track"),
        f"Off for now: {_COPY}; it waits for the claim's outcome.",
    ),
    (re.compile("^claim: the original artist does not allow"), f"Off: {_COPY}, and they do not allow copies."),
    (
        re.compile("^claim: the original artist's choice applies"),
        f"Off: {_COPY}, and their choice for this use is off.",
    ),
]


JOB_TITLES: Mapping[str, str] = {
    "analyze": "Analysing tracks (tags, tempo, key)",
    "fingerprint": "Fingerprinting tracks for copy detection",
    "train-recommend": "Training the recommendation model",
    "fraud-rescan": "Checking all stored plays for fraud",
    "import-plays": "Importing a file of plays",
}
JOB_STATES: Mapping[str, str] = {
    "queued": "Waiting to start",
    "running": "Running",
    "done": "Finished",
    "failed": "Stopped before the end (it can be resumed)",
    "cancelled": "Cancelled",
}


def job_title(kind: str) -> str:
    return JOB_TITLES.get(kind, kind.replace("-", " "))


def job_state(status: str) -> str:
    return JOB_STATES.get(status, status)


def purpose_title(purpose: str) -> str:
    """A musician's name for a purpose (the slug itself for purposes the platform added later)."""
    return PURPOSE_TITLES.get(purpose, purpose)


def decision_sentence(reason: str) -> str:
    """The gate's reason ("terms: opt-in purpose, no rule (off) (terms v1)") as one sentence."""
    for pattern, sentence in _REASONS:
        found = pattern.search(reason)
        if found is not None:
            version = found.group(1) if found.groups() else None
            return sentence.format(v=f" (version {version})" if version else "")
    return reason


def action_words(action: str) -> str:
    return _ACTIONS.get(action, action.replace("-", " "))


def actor_words(actor: str, *, names: Mapping[str, str], me: str | None) -> str:
    """Who acted, in words: "you", an artist's name, "an operator", "a listener", a platform service."""
    kind, _, ident = actor.partition(":")
    if kind == "artist":
        return "you" if ident == me else names.get(ident, "another artist")
    if kind == "admin":
        return "an operator"
    if kind == "listener":
        return "a listener"
    if kind == "system":
        return "the platform (scheduled)"
    if kind == "service":
        return f"the {ident} service" if ident and not ident.startswith("key_") else "a platform service"
    return actor


__all__ = [
    "JOB_STATES",
    "JOB_TITLES",
    "PURPOSE_TITLES",
    "action_words",
    "actor_words",
    "decision_sentence",
    "job_state",
    "job_title",
    "purpose_title",
]
