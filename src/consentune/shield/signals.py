"""Machine-readable opt-out signals, generated from each artist's consent choices.

Pure functions over a :class:`CatalogPolicy` (the registry's decision per
track for ``train-ai``, ``train-generative`` and ``ai-input``); the caller
serves what they return.  Anything a track's policy does not mention is
denied, as everywhere in Consentune.

What is emitted, and the revision of each specification it follows:

- ``robots.txt`` (:func:`robots_txt`): RFC 9309 groups.  Known AI crawlers
  (:mod:`consentune.shield.crawlers`) may fetch only the pages of tracks
  whose artist allows ``train-ai``; the stream prefix is closed to everyone.
  A ``Content-Signal`` line per group states the site-wide default (Content
  Signals Policy, contentsignals.org, as published September 2025) and
  ``Content-Usage`` rules state each track's choice (draft-ietf-aipref-attach-04
  with the vocabulary pinned in :mod:`consentune.consent.aipref`).
- ``/.well-known/tdmrep.json`` (:func:`tdmrep_json`) and the ``tdm-reservation``
  / ``tdm-policy`` response headers (:func:`track_headers`): W3C TDM
  Reservation Protocol, Final Community Group Report.
- ``Content-Usage`` response header (:func:`track_headers`).
- An XMP packet carrying ``plus:DataMining`` (PLUS License Data Format
  vocabulary, as adopted by IPTC Photo Metadata 2023.1) for files users may
  download (:func:`xmp_packet`), embedded where XMP has a standard home
  (:func:`embed_xmp`: WAV ``_PMX`` chunk, MP3 ID3v2 ``PRIV`` frame).

Path rules are emitted longest path first, and a track whose choice equals the
default still gets its own rule when a shorter track path with a different
choice is a prefix of it.  So readers that take the longest match (RFC 9309,
aipref) and readers that take the first match (TDMRep, Python's
``urllib.robotparser``) find the same answer for every track page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar
from urllib.parse import quote, urljoin
from xml.sax.saxutils import escape

from consentune.consent.aipref import AIPREF_REVISION, aipref_label
from consentune.errors import InvalidInput
from consentune.shield.crawlers import Crawler
from consentune.types import AI_INPUT, TRAIN_AI, TRAIN_GENERATIVE, Purpose

AIPREF_ATTACH_REVISION = "draft-ietf-aipref-attach-04"
TDMREP_REVISION = "W3C TDM Reservation Protocol (TDMRep), Final Community Group Report"
CONTENT_SIGNALS_REVISION = "Content Signals Policy (contentsignals.org, September 2025)"
SHIELD_PURPOSES: tuple[Purpose, ...] = (TRAIN_AI, TRAIN_GENERATIVE, AI_INPUT)
PLUS_VOCAB = "http://ns.useplus.org/ldf/vocab/"
XMP_FORMATS: Mapping[str, bool] = MappingProxyType(
    {"wav": True, "mp3": True, "flac": False, "ogg-vorbis": False, "opus": False}
)

_V = TypeVar("_V", bool, str)
_BAD_AGENT = re.compile(r"[\x00-\x1f\x7f#]")
_BAD_PATH = re.compile(r"[\x00-\x20\x7f#*$]")  # whitespace, comments and robots.txt wildcards
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class TrackPolicy:
    """The registry's decision for one track: ``allowed[purpose]`` is True when the artist allows it.

    Purposes are those in :data:`SHIELD_PURPOSES`; a purpose left out is denied.
    """

    track_id: str
    allowed: Mapping[str, bool]

    def __post_init__(self) -> None:
        if not self.track_id:
            raise InvalidInput("track_id is empty", hint="pass the catalogue's track id")
        unknown = sorted(set(self.allowed) - set(SHIELD_PURPOSES))
        if unknown:
            raise InvalidInput(
                f"track {self.track_id!r} has choices for unknown purposes {unknown}",
                hint=f"use only {', '.join(SHIELD_PURPOSES)}",
            )
        object.__setattr__(self, "allowed", MappingProxyType({k: bool(v) for k, v in self.allowed.items()}))

    def allows(self, purpose: str) -> bool:
        """The artist's choice for ``purpose``; False when none was recorded."""
        return self.allowed.get(purpose, False)


@dataclass(frozen=True)
class CatalogPolicy:
    """Every track's policy plus where tracks live on the site.

    ``track_path`` is the URL path of a track page, with ``{id}`` standing for
    the percent-encoded track id; ``stream_prefix`` is the path under which
    audio is served (signed URLs only).  ``site_reserved`` makes every path
    without a track rule reserved (``train-ai=n``, ``tdm-reservation: 1``);
    without it such paths carry no preference.  ``policy_url`` (absolute, or
    relative to the site) points to the human-readable AI licensing policy.
    ``crawlable_tracks`` opens the pages of tracks not listed in ``tracks`` to
    AI crawlers (set from aggregates when some track may allow ``train-ai``):
    each page's own headers then state its track's choices.
    """

    tracks: tuple[TrackPolicy, ...]
    track_path: str = "/v1/listen/tracks/{id}"
    stream_prefix: str = "/stream/"
    site_reserved: bool = True
    policy_url: str | None = None
    crawlable_tracks: bool = False
    _pages: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_paths(self.track_path, self.stream_prefix)
        object.__setattr__(self, "tracks", tuple(self.tracks))
        pages: dict[str, str] = {}
        for track in self.tracks:
            if track.track_id in pages:
                raise InvalidInput(f"track {track.track_id!r} appears twice", hint="pass each track once")
            page = self.track_path.replace("{id}", quote(track.track_id, safe=""))
            if page.startswith(self.stream_prefix):
                raise InvalidInput(
                    f"track page {page!r} lies under the stream prefix {self.stream_prefix!r}",
                    hint="serve track pages and streams under separate paths",
                )
            pages[track.track_id] = page
        object.__setattr__(self, "_pages", MappingProxyType(pages))

    def track_page(self, track_id: str) -> str:
        """URL path of the page of ``track_id`` (which must be in the catalogue)."""
        try:
            return self._pages[track_id]
        except KeyError:
            raise InvalidInput(f"track {track_id!r} is not in the policy", hint="add its TrackPolicy") from None


def _check_paths(track_path: str, stream_prefix: str) -> None:
    if not track_path.startswith("/") or track_path.count("{id}") != 1 or _BAD_PATH.search(track_path):
        raise InvalidInput(
            f"track_path {track_path!r} must start with '/', contain '{{id}}' once and no space, '#', '*' or '$'",
            hint="e.g. '/v1/listen/tracks/{id}'",
        )
    if not stream_prefix.startswith("/") or stream_prefix == "/" or _BAD_PATH.search(stream_prefix):
        raise InvalidInput(
            f"stream_prefix {stream_prefix!r} must be a path below '/' without space, '#', '*' or '$'",
            hint="e.g. '/stream/'",
        )


# --- per-track decisions -----------------------------------------------------


def content_usage(track: TrackPolicy) -> str:
    """The track's aipref statement, e.g. ``train-ai=y, train-genai=n``.

    Structured-field dictionary of the pinned vocabulary; purposes without a
    label in that revision (``ai-input``) are not expressed.
    """
    return _usage({purpose: track.allows(purpose) for purpose in SHIELD_PURPOSES})


def tdm_reserved(track: TrackPolicy) -> bool:
    """Whether TDM rights stay reserved for the track.

    TDMRep has one switch for all text and data mining, which includes
    training of any model, generative or not; it is released only when the
    artist allows both ``train-ai`` and ``train-generative``.
    """
    return not (track.allows(TRAIN_AI) and track.allows(TRAIN_GENERATIVE))


def _usage(choices: Mapping[Purpose, bool]) -> str:
    items = [(aipref_label(purpose), allowed) for purpose, allowed in choices.items()]
    return ", ".join(f"{label}={'y' if allowed else 'n'}" for label, allowed in items if label)


def _site_usage() -> str:
    return _usage(dict.fromkeys(SHIELD_PURPOSES, False))


def _path_rules(values: Mapping[str, _V], default: _V | None) -> list[tuple[str, _V]]:
    """(path, value) rules, longest path first, that give every path in ``values`` its own value.

    A path gets a rule when its value differs from ``default``, or when a
    shorter path with a differing value is a prefix of it (else that shorter
    rule would capture it).  Cost: one lookup per prefix of each path.
    """
    differing = {path: value for path, value in values.items() if value != default}
    rules = dict(differing)
    for path, value in values.items():
        if path not in rules and any(path[:cut] in differing for cut in range(1, len(path))):
            rules[path] = value
    return _longest_first(rules.items())


def _longest_first(rules: Iterable[tuple[str, _V]]) -> list[tuple[str, _V]]:
    """Rules by path length, longest first: then the first match is also the longest match."""
    return sorted(rules, key=lambda rule: (-len(rule[0].rstrip("*")), rule[0]))


def _pages(policy: CatalogPolicy) -> Iterable[tuple[str, TrackPolicy]]:
    return ((policy.track_page(track.track_id), track) for track in policy.tracks)


# --- robots.txt ------------------------------------------------------------------


def robots_txt(policy: CatalogPolicy, crawlers: Sequence[Crawler], *, base_url: str) -> str:
    """The site's robots.txt (RFC 9309) with Content-Signal and Content-Usage lines.

    One group names every crawler in ``crawlers``: it may fetch only the
    pages of tracks whose artist allows ``train-ai`` (whether a crawler
    trains generative models is not something the list states reliably, so
    ``train-generative`` is expressed through Content-Usage, not access).
    The ``*`` group may fetch everything except the stream prefix.  Both
    groups carry the site-wide Content-Signal and the per-track Content-Usage
    rules.  ``base_url`` (e.g. ``https://music.example``) only labels the file.
    """
    agents = _agents(crawlers)
    signal = _content_signal(policy.site_reserved)
    usage = _usage_lines(policy)
    groups = [["User-agent: *", signal, f"Disallow: {policy.stream_prefix}", "Allow: /", *usage]]
    if agents:
        access = _path_rules({page: track.allows(TRAIN_AI) for page, track in _pages(policy)}, False)
        opened = [(policy.track_path.split("{id}")[0], True)] if policy.crawlable_tracks else []
        rules = _longest_first([*access, *opened, (policy.stream_prefix, False), ("/", False)])
        crawl = [f"{'Allow' if allowed else 'Disallow'}: {path}" for path, allowed in rules]
        groups.insert(0, [*(f"User-agent: {agent}" for agent in agents), signal, *crawl, *usage])
    lines = _header(policy, base_url, crawlers_named=len(agents))
    for group in groups:
        lines.extend([*group, ""])
    return "\n".join(lines)


def _agents(crawlers: Sequence[Crawler]) -> list[str]:
    """User-agent tokens, deduplicated ignoring case (robots.txt matching ignores case)."""
    seen: dict[str, str] = {}
    for crawler in crawlers:
        token = crawler.token.strip()
        if not token or _BAD_AGENT.search(token):
            raise InvalidInput(
                f"crawler user agent {crawler.token!r} cannot be written in robots.txt",
                hint="refresh the crawler list with scripts/refresh_ai_crawlers.py",
            )
        seen.setdefault(token.lower(), token)
    return list(seen.values())


def _header(policy: CatalogPolicy, base_url: str, *, crawlers_named: int) -> list[str]:
    return [
        f"# robots.txt for {base_url}, generated by Consentune from its consent registry; edit choices there.",
        f"# {crawlers_named} AI crawler user agents from the ai.robots.txt list (MIT licence).",
        "# Content-Signal (https://contentsignals.org/) gives the site-wide default: search = search index",
        "# and results, ai-input = content fed to AI models when answering, ai-train = training or",
        "# fine-tuning AI models; yes allows, no forbids, a missing signal states nothing.",
        f"# Content-Usage rules ({AIPREF_ATTACH_REVISION}, vocabulary {AIPREF_REVISION}) give each",
        "# track's own choice and are more specific than the site-wide default; each track page's",
        "# Content-Usage and tdm-reservation response headers state that track's choice too.",
        f"# Audio under {policy.stream_prefix} is served only through signed URLs; no crawler may fetch it.",
        "",
    ]


def _content_signal(site_reserved: bool) -> str:
    return "Content-Signal: search=yes, ai-input=no, ai-train=no" if site_reserved else "Content-Signal: search=yes"


def _usage_lines(policy: CatalogPolicy) -> list[str]:
    default = _site_usage() if policy.site_reserved else None
    rules = _path_rules({page: content_usage(track) for page, track in _pages(policy)}, default)
    site = [f"Content-Usage: / {default}"] if default else []
    return [*(f"Content-Usage: {path} {usage}" for path, usage in rules), *site]


# --- TDMRep ------------------------------------------------------------------------


def tdmrep_json(policy: CatalogPolicy, *, base_url: str) -> list[dict[str, object]]:
    """The JSON value of ``/.well-known/tdmrep.json``.

    TDMRep uses the first rule whose ``location`` matches, so rules run from
    the most specific path to ``/*``: the stream prefix (always reserved),
    each track page whose reservation differs from the site default (see
    :func:`tdm_reserved`), then the site-wide reservation when
    ``site_reserved``.  ``tdm-policy`` (``policy_url`` resolved against
    ``base_url``) accompanies every reserved rule.
    """
    policy_url = urljoin(base_url, policy.policy_url) if policy.policy_url else None
    default = True if policy.site_reserved else None
    tracks = _path_rules({page: tdm_reserved(track) for page, track in _pages(policy)}, default)
    rules = _longest_first([*tracks, (f"{policy.stream_prefix}*", True)])
    if policy.site_reserved:
        rules.append(("/*", True))
    return [_tdm_rule(location, reserved, policy_url) for location, reserved in rules]


def _tdm_rule(location: str, reserved: bool, policy_url: str | None) -> dict[str, object]:
    rule: dict[str, object] = {"location": location, "tdm-reservation": int(reserved)}
    if reserved and policy_url:
        rule["tdm-policy"] = policy_url
    return rule


# --- response headers ------------------------------------------------------------


def track_headers(track: TrackPolicy, *, policy_url: str | None) -> dict[str, str]:
    """HTTP response headers for a track page or stream of ``track``.

    ``tdm-reservation`` (``1``/``0``), ``tdm-policy`` when reserved and a
    policy URL (absolute) is given, and the aipref ``Content-Usage`` field.
    """
    reserved = tdm_reserved(track)
    headers = {"tdm-reservation": "1" if reserved else "0"}
    if reserved and policy_url:
        headers["tdm-policy"] = policy_url
    headers["Content-Usage"] = content_usage(track)
    return headers


# --- XMP ---------------------------------------------------------------------------


def data_mining_value(track: TrackPolicy) -> str:
    """The PLUS ``DataMining`` value URI that states the track's choices.

    All three uses allowed -> DMI-ALLOWED; only generative training denied ->
    DMI-PROHIBITED-GENAIMLTRAINING; only AI input allowed ->
    DMI-PROHIBITED-AIMLTRAINING; nothing allowed ->
    DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING (the site allows search);
    any other mix -> DMI-PROHIBITED-SEECONSTRAINT, spelled out in
    ``plus:OtherConstraints``.
    """
    key = (track.allows(TRAIN_AI), track.allows(TRAIN_GENERATIVE), track.allows(AI_INPUT))
    value = {
        (True, True, True): "DMI-ALLOWED",
        (True, False, True): "DMI-PROHIBITED-GENAIMLTRAINING",
        (False, False, True): "DMI-PROHIBITED-AIMLTRAINING",
        (False, False, False): "DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING",
    }.get(key, "DMI-PROHIBITED-SEECONSTRAINT")
    return PLUS_VOCAB + value


def xmp_packet(track: TrackPolicy, *, title: str, artist: str, policy_url: str | None = None) -> bytes:
    """A UTF-8 XMP packet for a downloadable file of ``track``.

    Carries ``dc:title``, ``dc:creator``, ``dc:identifier`` (the track id),
    ``plus:DataMining`` (:func:`data_mining_value`), ``plus:OtherConstraints``
    (the three choices in words) and, when given, ``xmpRights:WebStatement``.
    Characters XML cannot hold are dropped from the text fields.
    """
    choices = "; ".join(f"{p}: {'allowed' if track.allows(p) else 'not allowed'}" for p in SHIELD_PURPOSES)
    statement = f"Artist's choices for this recording: {choices}."
    rights = f"\n   <xmpRights:WebStatement>{_text(policy_url)}</xmpRights:WebStatement>" if policy_url else ""
    packet = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/"
    xmlns:xmpRights="http://ns.adobe.com/xap/1.0/rights/">
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{_text(title)}</rdf:li></rdf:Alt></dc:title>
   <dc:creator><rdf:Seq><rdf:li>{_text(artist)}</rdf:li></rdf:Seq></dc:creator>
   <dc:identifier>{_text(track.track_id)}</dc:identifier>
   <plus:DataMining>{data_mining_value(track)}</plus:DataMining>
   <plus:OtherConstraints><rdf:Alt>
    <rdf:li xml:lang="x-default">{_text(statement)}</rdf:li>
   </rdf:Alt></plus:OtherConstraints>{rights}
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>"""
    return packet.encode("utf-8")


def _text(value: str) -> str:
    # A raw CR would come back as LF: XML parsers normalise line ends in text.
    return escape(_XML_INVALID.sub("", value), {'"': "&quot;", "\r": "&#13;"})


def has_xmp_carriage(format: str) -> bool:
    """Whether :func:`embed_xmp` can embed XMP in ``format`` (one of the catalogue's formats)."""
    try:
        return XMP_FORMATS[format]
    except KeyError:
        raise InvalidInput(f"unknown audio format {format!r}", hint=f"use one of {', '.join(XMP_FORMATS)}") from None


def embed_xmp(data: bytes, *, format: str, xmp: bytes) -> bytes:
    """``data`` with the XMP packet embedded where the format has a standard place for it.

    WAV: a ``_PMX`` chunk before the ``data`` chunk, RIFF size rewritten.
    MP3: an ID3v2 ``PRIV`` frame owned by ``XMP``, added to the existing
    ID3v2.3/2.4 tag or to a new ID3v2.4 tag.  Earlier XMP is replaced.
    FLAC, Ogg Vorbis and Opus have no standard XMP carriage: ``data`` is
    returned unchanged and the caller should send an HTTP ``Link`` header to a
    sidecar (``<…/track.xmp>; rel="describedby"; type="application/rdf+xml"``).
    """
    if not has_xmp_carriage(format):
        return data
    return _embed_wav(data, xmp) if format == "wav" else _embed_mp3(data, xmp)


# --- WAV (RIFF) ----------------------------------------------------------------------


def _embed_wav(data: bytes, xmp: bytes) -> bytes:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise InvalidInput("data is not a RIFF WAVE file", hint="pass the WAV bytes, or format='...' that matches")
    chunks = [chunk for chunk in _riff_chunks(data) if chunk[:4] != b"_PMX"]
    pmx = b"_PMX" + len(xmp).to_bytes(4, "little") + xmp + b"\0" * (len(xmp) & 1)
    at = next(i for i, chunk in enumerate(chunks) if chunk[:4] == b"data")
    body = b"WAVE" + b"".join([*chunks[:at], pmx, *chunks[at:]])
    if len(body) > 0xFFFFFFFF:
        raise InvalidInput(f"WAV with XMP would be {len(body) + 8} bytes, over RIFF's 4 GiB", hint="use FLAC")
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def _riff_chunks(data: bytes) -> list[bytes]:
    """Top-level chunks with their padding; a ``data`` chunk whose size is open or too big runs to the end."""
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        end = pos + 8 + size + (size & 1)
        if chunk_id == b"data" and (size in (0, 0xFFFFFFFF) or end > len(data)):
            end = len(data)
        elif end > len(data):
            raise InvalidInput(f"WAV chunk {chunk_id!r} at byte {pos} runs past the end", hint="pass a complete file")
        chunks.append(data[pos:end])
        pos = end
    if not any(chunk[:4] == b"data" for chunk in chunks):
        raise InvalidInput("WAV file has no data chunk", hint="pass a complete WAV file")
    if pos < len(data):
        chunks.append(data[pos:])
    return chunks


# --- MP3 (ID3v2) --------------------------------------------------------------------

_XMP_OWNER = b"XMP\x00"
_FRAME_ID = re.compile(rb"[A-Z0-9]{4}")


def _embed_mp3(data: bytes, xmp: bytes) -> bytes:
    version, frames, audio = _id3_frames(data)
    body = _XMP_OWNER + xmp
    size = _syncsafe(len(body)) if version == 4 else len(body).to_bytes(4, "big")
    tag = b"".join([*frames, b"PRIV", size, b"\0\0", body])
    return b"ID3" + bytes([version, 0, 0]) + _syncsafe(len(tag)) + tag + audio


def _id3_frames(data: bytes) -> tuple[int, list[bytes], bytes]:
    """(major version, frames other than an XMP PRIV, audio after the tag) of an MP3."""
    if data[:3] != b"ID3":
        return 4, [], data
    if len(data) < 10:
        raise InvalidInput("MP3 ID3v2 header is truncated", hint="pass a complete file")
    major, flags = data[3], data[5]
    if major not in (3, 4) or flags & 0x80:
        raise InvalidInput(
            f"MP3 has an ID3v2.{major} tag{' with unsynchronisation' if flags & 0x80 else ''}; "
            "XMP can be added only to plain ID3v2.3/2.4 tags",
            hint="re-save the tags as ID3v2.4 without unsynchronisation (e.g. with mutagen or eyeD3)",
        )
    size = _unsyncsafe(data[6:10])
    body = data[10 : 10 + size]
    footer = 10 if major == 4 and flags & 0x10 else 0
    start = _extended_header_size(body, major) if flags & 0x40 else 0
    return major, _frames(body, start, major), data[10 + size + footer :]


def _extended_header_size(body: bytes, major: int) -> int:
    return _unsyncsafe(body[:4]) if major == 4 else int.from_bytes(body[:4], "big") + 4


def _frames(body: bytes, pos: int, major: int) -> list[bytes]:
    frames = []
    while pos + 10 <= len(body) and _FRAME_ID.fullmatch(body[pos : pos + 4]):
        raw = body[pos + 4 : pos + 8]
        end = pos + 10 + (_unsyncsafe(raw) if major == 4 else int.from_bytes(raw, "big"))
        if end > len(body):
            raise InvalidInput(f"ID3 frame {body[pos : pos + 4]!r} runs past the tag", hint="repair the tags")
        if not (body[pos : pos + 4] == b"PRIV" and body[pos + 10 : end].startswith(_XMP_OWNER)):
            frames.append(body[pos:end])
        pos = end
    return frames  # the rest is padding


def _syncsafe(value: int) -> bytes:
    if value >= 1 << 28:
        raise InvalidInput(f"ID3 tag of {value} bytes is over the 256 MiB limit", hint="use a smaller XMP packet")
    return bytes((value >> shift) & 0x7F for shift in (21, 14, 7, 0))


def _unsyncsafe(raw: bytes) -> int:
    value = 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
    return value


__all__ = [
    "AIPREF_ATTACH_REVISION",
    "CONTENT_SIGNALS_REVISION",
    "PLUS_VOCAB",
    "SHIELD_PURPOSES",
    "TDMREP_REVISION",
    "XMP_FORMATS",
    "CatalogPolicy",
    "TrackPolicy",
    "content_usage",
    "data_mining_value",
    "embed_xmp",
    "has_xmp_carriage",
    "robots_txt",
    "tdm_reserved",
    "tdmrep_json",
    "track_headers",
    "xmp_packet",
]
