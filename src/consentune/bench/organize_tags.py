"""Tag normalization on Last.fm 2K (HetRec 2011, research use only; read from the caller's folder, never shipped).

Coverage is the share of all tag *assignments* (user, artist, tag) whose tag
maps to at least one facet value.  Precision comes from a committed audit:
``AUDIT_DRAWS`` assignments drawn uniformly (seeded) from the mapped ones,
so frequent tags weigh as they do in the data; each distinct
(tag → labels) pair drawn was labelled by hand in ``organize/data/tag_audit.tsv``.
"""

from __future__ import annotations

import random
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from consentune.errors import InvalidInput
from consentune.organize.tags import Cooccurrence, NormalizedTag, TagNormalizer

AUDIT_SEED = 2026
AUDIT_DRAWS = 600
TARGETS = {"tag_coverage": 0.75, "tag_precision": 0.95}


def load_lastfm(data: Path) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(artist id, tag) per assignment, and artist name → artist id."""
    needed = [data / "tags.dat", data / "user_taggedartists.dat", data / "artists.dat"]
    missing = [p.name for p in needed if not p.is_file()]
    if missing:
        raise InvalidInput(f"{data} lacks {', '.join(missing)}", hint="pass the Last.fm 2K folder")
    tags = dict(line.split("\t", 1) for line in needed[0].read_text("latin-1").splitlines()[1:] if "\t" in line)
    pairs = []
    for line in needed[1].read_text("latin-1").splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) >= 3 and fields[2] in tags:
            pairs.append((fields[1], tags[fields[2]]))
    names = {}
    for line in needed[2].read_text("utf-8", errors="replace").splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) >= 2:
            names[fields[1]] = fields[0]
    return pairs, names


def label_text(found: NormalizedTag) -> str:
    return ", ".join(f"{lb.facet}:{lb.value}" for lb in found.labels)


def audit_draws(pairs: list[tuple[str, str]], mapped: dict[str, NormalizedTag]) -> list[tuple[str, str]]:
    """The seeded sample of mapped assignments, as (tag, labels) pairs."""
    candidates = [(tag, label_text(mapped[tag])) for _item, tag in pairs if mapped[tag].mapped]
    return random.Random(AUDIT_SEED).choices(candidates, k=AUDIT_DRAWS)


def load_audit() -> dict[tuple[str, str], bool]:
    text = resources.files("consentune.organize").joinpath("data/tag_audit.tsv").read_text("utf-8")
    verdicts = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        tag, labels, verdict = line.split("\t")[:3]
        verdicts[(tag, labels)] = verdict.strip() == "ok"
    return verdicts


def normalize_all(pairs: list[tuple[str, str]], names: dict[str, str]) -> dict[str, NormalizedTag]:
    evidence = Cooccurrence(pairs)
    normalizer = TagNormalizer(artist_names=names)
    return {tag: normalizer.normalize_one(tag, evidence=evidence) for tag in {t for _i, t in pairs}}


def run_tags(data: Path) -> dict[str, Any]:
    pairs, names = load_lastfm(data)
    mapped = normalize_all(pairs, names)
    counts = Counter(tag for _item, tag in pairs)
    total = sum(counts.values())
    by_method: Counter[str] = Counter()
    by_facet: Counter[str] = Counter()
    for tag, n in counts.items():
        by_method[mapped[tag].method or "unmapped"] += n
        for facet in {lb.facet for lb in mapped[tag].labels}:
            by_facet[facet] += n
    draws = audit_draws(pairs, mapped)
    verdicts = load_audit()
    judged = [verdicts[d] for d in draws if d in verdicts]
    return {
        "tag_assignments": total,
        "tag_distinct": len(counts),
        "tag_coverage": sum(n for tag, n in counts.items() if mapped[tag].mapped) / total,
        "tag_coverage_by_method": {k: round(v / total, 4) for k, v in by_method.most_common()},
        "tag_coverage_by_facet": {k: round(v / total, 4) for k, v in by_facet.most_common()},
        "tag_audit_draws": len(draws),
        "tag_audit_distinct_pairs": len(set(draws)),
        "tag_audit_unlabelled_draws": len(draws) - len(judged),
        "tag_precision": sum(judged) / len(judged) if judged else float("nan"),
    }


def write_audit_sample(data: Path, out: Path) -> int:
    """Write the distinct drawn pairs (tag, labels, draws) for hand labelling; returns how many."""
    pairs, names = load_lastfm(data)
    draws = Counter(audit_draws(pairs, normalize_all(pairs, names)))
    lines = [f"{tag}\t{labels}\t\t{n}" for (tag, labels), n in sorted(draws.items(), key=lambda kv: -kv[1])]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


__all__ = ["AUDIT_DRAWS", "AUDIT_SEED", "TARGETS", "load_lastfm", "run_tags", "write_audit_sample"]
