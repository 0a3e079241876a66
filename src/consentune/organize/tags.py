"""Free user tags → a faceted vocabulary: genre (a tree), era, mood, vocals, origin, instrument, non-descriptor.

Resolution order for one tag (first hit wins):

1. the whole tag is an alias (after folding case, accents, punctuation and spacing;
   ``hip-hop``, ``Hip Hop`` and ``hiphop`` are one key) or an era (``80s``, ``1982``, ``eighties``);
2. the tag is an artist's name → ``non-descriptor:artist-name``: names of two or more words
   always, one-word names ("Rain", "Heart") only where evidence shows the tag on that artist;
3. the tag splits completely into aliases, eras and filler words
   (``british rock`` → origin:uk + genre:rock; ``best songs of the 80s`` → non-descriptor + era:1980s);
4. a spelling variant: one edit (two for 9+ characters) from exactly one alias, 6+ characters,
   confirmed by co-occurrence evidence when it is given;
5. a partial split — known parts plus at most two unknown words, no negation —
   kept only where co-occurrence evidence agrees: the items carrying the tag
   are also tagged with that value by other tags (never the tag itself).

Without co-occurrence evidence (see :class:`Cooccurrence`) step 5 is off.

Work per tag is linear in its length: a tag longer than :data:`MAX_TAG_CHARS`
is left unmapped without being read, and the spelling search (whose
deletion neighbourhood grows with the square of the length) runs only on
keys short enough to be within two edits of some alias.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

MAX_TAG_CHARS = 200  # longer than any tag worth mapping; callers should refuse longer ones at entry
FACETS = ("genre", "era", "mood", "vocals", "origin", "instrument", "non-descriptor")
_NEGATIONS = frozenset({"not", "non", "no", "anti", "than", "better", "without", "like", "hate", "except", "vs"})
_DECADE = re.compile(r"^(?:(19|20)?(\d)0s)$")
_YEAR = re.compile(r"^(19[0-9]|20[0-4])(\d)$")


@dataclass(frozen=True, slots=True, order=True)
class Label:
    facet: str
    value: str


@dataclass(frozen=True, slots=True)
class NormalizedTag:
    tag: str
    labels: tuple[Label, ...]  # empty when unmapped
    method: str | None  # "artist-name", "alias", "era", "compound", "spelling", "partial" or None

    @property
    def mapped(self) -> bool:
        return bool(self.labels)


def fold(tag: str) -> str:
    """Comparison key: lower case, no accents, '&' as 'and', punctuation as spaces, single spaces."""
    text = unicodedata.normalize("NFKD", tag.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = text.replace("&", " and ").replace("'n'", " and ").replace("'", "").replace("’", "")
    text = re.sub(r"[^a-z0-9<3+]+", " ", text)
    return " ".join(text.split())


def _compact(key: str) -> str:
    return key.replace(" ", "")


def _era(key: str) -> str | None:
    words = _vocabulary()["era_words"]
    if key in words:
        return str(words[key])
    decade = _DECADE.match(key.replace(" ", ""))
    if decade:
        century, digit = decade.group(1), int(decade.group(2))
        if century is None:
            century = "20" if digit <= 1 else "19"
        return f"{century}{digit}0s"
    year = _YEAR.match(key)
    if year:
        return f"{year.group(1)}0s"
    return None


@lru_cache(maxsize=1)
def _vocabulary() -> dict[str, Any]:
    text = resources.files("consentune.organize").joinpath("data/tag_vocabulary.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@dataclass
class Vocabulary:
    """Alias indexes over the packaged vocabulary."""

    aliases: dict[str, set[Label]] = field(default_factory=lambda: defaultdict(set))
    compact: dict[str, set[Label]] = field(default_factory=lambda: defaultdict(set))
    parents: dict[Label, Label | None] = field(default_factory=dict)
    fillers: frozenset[str] = frozenset()

    @classmethod
    def packaged(cls) -> Vocabulary:
        return _packaged()

    def add(self, alias: str, label: Label) -> None:
        key = fold(alias)
        if key:
            self.aliases[key].add(label)
            self.compact[_compact(key)].add(label)

    @property
    def longest(self) -> int:
        """Characters in the longest compact alias."""
        cached: int | None = getattr(self, "_longest", None)
        if cached is None:
            cached = max((len(k) for k in self.compact), default=0)
            self._longest = cached
        return cached

    def lookup(self, key: str) -> set[Label]:
        return self.aliases.get(key) or self.compact.get(_compact(key)) or set()

    @property
    def deletes(self) -> dict[str, set[str]]:
        """Deletion neighbourhoods of every compact alias (one edit, two for 9+ characters), built once."""
        cached: dict[str, set[str]] | None = getattr(self, "_deletes", None)
        if cached is None:
            cached = defaultdict(set)
            for key in self.compact:
                for variant in _deletions(key, 2 if len(key) >= 9 else 1):
                    cached[variant].add(key)
            self._deletes = cached
        return cached

    def path(self, label: Label) -> list[str]:
        """Root-first path of a label in its facet's tree, e.g. ['rock', 'alternative', 'indie']."""
        out: list[str] = []
        node: Label | None = label
        seen: set[Label] = set()
        while node is not None and node not in seen:
            seen.add(node)
            out.append(node.value)
            node = self.parents.get(node)
        return out[::-1]


@lru_cache(maxsize=1)
def _packaged() -> Vocabulary:
    data = _vocabulary()
    vocab = Vocabulary(fillers=frozenset(fold(w) for w in data["fillers"]))
    for facet in ("genre", "origin"):
        for value, entry in data[facet].items():
            label = Label(facet, value)
            parent = entry["parent"]
            vocab.parents[label] = Label(facet, str(parent)) if parent else None
            for alias in [value, *entry["aliases"]]:
                vocab.add(str(alias), label)
    for facet in ("mood", "vocals", "instrument", "non-descriptor"):
        for value, aliases in data[facet].items():
            label = Label(facet, value)
            vocab.parents[label] = None
            for alias in [value, *aliases] if facet != "non-descriptor" else aliases:
                vocab.add(alias, label)
    return vocab


class Cooccurrence:
    """Which items carry which tags: evidence for spelling variants and partial matches.

    Built from (item, tag) pairs, e.g. (artist, tag) assignments or (track, tag) pairs from the catalogue.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.items_of: dict[str, set[str]] = defaultdict(set)
        for item, tag in pairs:
            self.items_of[fold(tag)].add(item)
        self._labels_of_item: dict[str, Counter[Label]] | None = None

    def support(self, key: str, label: Label, normalizer: TagNormalizer) -> float:
        """Share of the tag's items that *other* tags place under ``label`` (or below it in the tree)."""
        items = self.items_of.get(key, set())
        if len(items) < 2:
            return 0.0
        per_item = self._item_labels(normalizer)
        own = int(label in normalizer.expanded(normalizer.normalize_key(key, evidence=None).labels))
        hits = sum(1 for item in items if per_item.get(item, Counter())[label] - own > 0)
        return hits / len(items)

    def _item_labels(self, normalizer: TagNormalizer) -> dict[str, Counter[Label]]:
        if self._labels_of_item is None:
            table: dict[str, Counter[Label]] = defaultdict(Counter)
            for key, items in self.items_of.items():
                expanded = normalizer.expanded(normalizer.normalize_key(key, evidence=None).labels)
                for item in items:
                    table[item].update(expanded)
            self._labels_of_item = table
        return self._labels_of_item


class TagNormalizer:
    """Maps tags onto the vocabulary; ``artist_names`` (folded) become ``non-descriptor:artist-name``."""

    def __init__(
        self,
        *,
        vocabulary: Vocabulary | None = None,
        artist_names: Mapping[str, str] | Iterable[str] = (),
        min_support: float = 0.25,
    ) -> None:
        """``artist_names``: names, or name → item id (the id the evidence uses for that artist)."""
        self.vocab = vocabulary or Vocabulary.packaged()
        named = artist_names.items() if isinstance(artist_names, Mapping) else ((n, None) for n in artist_names)
        self._names: dict[str, set[str | None]] = defaultdict(set)
        for name, item in named:
            if fold(name):
                self._names[fold(name)].add(item)
        self._min_support = min_support
        self._deletes = self.vocab.deletes

    def ancestors(self, label: Label) -> list[Label]:
        return [Label(label.facet, v) for v in self.vocab.path(label)]

    def expanded(self, labels: Iterable[Label]) -> set[Label]:
        """The labels and all their ancestors."""
        return {a for label in labels for a in self.ancestors(label)}

    def normalize(self, tags: Sequence[str], *, evidence: Cooccurrence | None = None) -> list[NormalizedTag]:
        return [self.normalize_one(t, evidence=evidence) for t in tags]

    def normalize_one(self, tag: str, *, evidence: Cooccurrence | None = None) -> NormalizedTag:
        """``tag`` mapped onto the vocabulary; one over :data:`MAX_TAG_CHARS` is unmapped."""
        if len(tag) > MAX_TAG_CHARS:
            return NormalizedTag(tag, (), None)
        found = self.normalize_key(fold(tag), evidence=evidence)
        return NormalizedTag(tag, found.labels, found.method)

    def normalize_key(self, key: str, *, evidence: Cooccurrence | None) -> NormalizedTag:
        if not key:
            return NormalizedTag(key, (), None)
        direct = self.vocab.lookup(key)
        if direct:
            return NormalizedTag(key, tuple(sorted(direct)), "alias")
        era = _era(key)
        if era:
            return NormalizedTag(key, (Label("era", era),), "era")
        tokens = key.split()
        if self._is_name(key, tokens, evidence):
            return NormalizedTag(key, (Label("non-descriptor", "artist-name"),), "artist-name")
        split = self._segment(tokens, max_unknown=0)
        if split:
            return NormalizedTag(key, split, "compound")
        variant = self._spelling(key, evidence)
        if variant:
            return NormalizedTag(key, variant, "spelling")
        if evidence is not None and not _NEGATIONS.intersection(tokens):
            partial = self._segment(tokens, max_unknown=2)
            supported = tuple(
                label
                for label in partial
                if label.facet != "non-descriptor" and evidence.support(key, label, self) >= self._min_support
            )
            if supported:
                return NormalizedTag(key, supported, "partial")
        return NormalizedTag(key, (), None)

    # -- internals ------------------------------------------------------------
    def _is_name(self, key: str, tokens: Sequence[str], evidence: Cooccurrence | None) -> bool:
        items = self._names.get(key)
        if not items:
            return False
        if len(tokens) >= 2:
            return True
        return evidence is not None and bool(items & evidence.items_of.get(key, set()))

    def _span(self, words: Sequence[str]) -> set[Label] | None:
        key = " ".join(words)
        labels = self.vocab.lookup(key)
        if labels:
            return labels
        era = _era(key)
        return {Label("era", era)} if era else None

    def _segment(self, tokens: Sequence[str], *, max_unknown: int) -> tuple[Label, ...]:
        """Cover ``tokens`` with the fewest known spans (+ fillers, + up to ``max_unknown`` unknown words)."""
        n = len(tokens)
        if n < 2 or n > 12:
            return ()
        inf = (10**9, 10**9)
        best: list[tuple[int, int]] = [inf] * (n + 1)  # (unknown words, spans) to cover tokens[:i]
        back: list[tuple[int, frozenset[Label]] | None] = [None] * (n + 1)
        best[0] = (0, 0)
        for end in range(1, n + 1):
            for start in range(max(0, end - 5), end):
                if best[start] == inf:
                    continue
                words = tokens[start:end]
                span = self._span(words)
                if span is not None:
                    cost = (best[start][0], best[start][1] + 1)
                    found = frozenset(span)
                elif end - start == 1 and words[0] in self.vocab.fillers:
                    cost, found = (best[start][0], best[start][1]), frozenset()
                elif end - start == 1 and best[start][0] < max_unknown:
                    cost, found = (best[start][0] + 1, best[start][1]), frozenset()
                else:
                    continue
                if cost < best[end]:
                    best[end], back[end] = cost, (start, found)
        if best[n] == inf:
            return ()
        labels: set[Label] = set()
        known_words, pos = 0, n
        while pos > 0:
            step = back[pos]
            assert step is not None
            start, found = step
            if found:
                labels |= found
                known_words += pos - start
            pos = start
        if not labels or (max_unknown and known_words * 2 < n - sum(t in self.vocab.fillers for t in tokens)):
            return ()
        return tuple(sorted(labels))

    def _spelling(self, key: str, evidence: Cooccurrence | None) -> tuple[Label, ...]:
        compact = _compact(key)
        if len(compact) < 6:  # shorter words are too often other real words one edit away
            return ()
        limit = 2 if len(compact) >= 9 else 1
        if len(compact) > self.vocab.longest + limit:  # no alias is that close; spare the O(n²) neighbourhood
            return ()
        candidates: set[str] = set()
        for variant in _deletions(compact, limit):
            candidates |= self._deletes.get(variant, set())
        close = [c for c in candidates if _distance(compact, c) <= limit and c[0] == compact[0]]
        labelsets = {frozenset(self.vocab.compact[c]) for c in close}
        if len(labelsets) != 1:
            return ()
        labels = tuple(sorted(next(iter(labelsets))))
        if evidence is not None and evidence.items_of.get(key):
            labels = tuple(lb for lb in labels if evidence.support(key, lb, self) >= self._min_support)
        return labels


def _deletions(word: str, depth: int) -> set[str]:
    out, frontier = {word}, {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


def _distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance (Levenshtein plus adjacent transpositions)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]


__all__ = ["FACETS", "MAX_TAG_CHARS", "Cooccurrence", "Label", "NormalizedTag", "TagNormalizer", "Vocabulary", "fold"]
