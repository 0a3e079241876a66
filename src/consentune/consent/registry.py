"""ConsentRegistry: publish terms, record artists' agreements, revoke and purge.

Every change is written to the usage ledger in the same transaction as
the change itself: no rule is ever in force without its ledger entry.  A
change that turns a purpose off for some tracks records a purge job in
that transaction too, then runs the registered purgers (the gate's
derived-feature purge first; capabilities add theirs) after it commits; a
job a crash or a failing purger left pending is finished by the sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from consentune.consent.decide import BatchDecision
from consentune.consent.rules import ConsentRule, utc_bound
from consentune.consent.terms import EXPLANATIONS, Terms, default_terms, validate_kinds
from consentune.errors import ConsentError, InvalidInput, NotFound
from consentune.ledger.log import UsageLedger, UsageRecord
from consentune.ports import CatalogRepo, ConsentRepo, PurgeJob, Transactions
from consentune.types import Artist, ArtistId, Purpose, PurposeKind, TrackId

_log = logging.getLogger(__name__)

# (purpose, tracks now denied, actor) -> number of derived items removed
Purger = Callable[[Purpose, Sequence[TrackId], str], int]
# (purpose, tracks) -> decisions without logging; supplied by the gate
Decider = Callable[[Purpose, Sequence[TrackId]], BatchDecision]


@dataclass(frozen=True, slots=True)
class PurposeView:
    """One purpose as an artist sees it: the terms' default, their own answer, the outcome."""

    purpose: Purpose
    kind: PurposeKind | None
    explanation: str
    artist_rule: ConsentRule | None
    track_rules: tuple[ConsentRule, ...]
    effective_default: bool
    lapsed_rule: ConsentRule | None = None  # the artist's last all-tracks choice, if it reached its end date


@dataclass(frozen=True, slots=True)
class ConsentView:
    artist: Artist
    terms: Terms
    purposes: tuple[PurposeView, ...]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ConsentRegistry:
    def __init__(
        self,
        *,
        repo: ConsentRepo,
        catalog: CatalogRepo,
        ledger: UsageLedger,
        decider: Decider,
        transactions: Transactions,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._repo = repo
        self._tx = transactions
        self._catalog = catalog
        self._ledger = ledger
        self._decider = decider
        self._clock = clock
        self._purgers: list[Purger] = []

    def add_purger(self, purger: Purger) -> None:
        """Register a capability's purge hook, called when consent is withdrawn."""
        self._purgers.append(purger)

    # -- terms --------------------------------------------------------------
    def ensure_default_terms(self) -> Terms:
        """The current terms, publishing the shipped ones on first run (once, even with several workers)."""
        existing = self._repo.all_terms()
        if existing:
            return existing[max(existing)]
        with self._tx.transaction():
            self._repo.begin_consent_change()  # serialise first-run workers; re-read under the lock
            existing = self._repo.all_terms()
            if existing:
                return existing[max(existing)]
            return self.publish_terms(
                {p: k.value for p, k in default_terms().kinds.items()},
                summary=default_terms().summary,
                actor="system",
            )

    def current_terms(self) -> Terms:
        existing = self._repo.all_terms()
        if not existing:
            raise NotFound("no terms published yet", hint="run `consentune terms publish`")
        return existing[max(existing)]

    def terms(self, version: int) -> Terms:
        found = self._repo.all_terms().get(version)
        if found is None:
            raise NotFound(
                f"terms version {version} does not exist",
                hint="list versions with `consentune terms show`",
            )
        return found

    def all_terms(self) -> dict[int, Terms]:
        return self._repo.all_terms()

    def publish_terms(self, kinds: Mapping[str, str], *, summary: str, actor: str) -> Terms:
        """Validate and publish the next terms version; artists move to it when they accept it."""
        typed = validate_kinds(kinds)
        with self._tx.transaction():
            terms = self._repo.publish_terms(Terms(0, typed, summary, self._clock().isoformat(), EXPLANATIONS))
            self._ledger.append(
                [UsageRecord(actor, "terms-publish", None, None, "record", _describe_terms(terms), terms.version)]
            )
        return terms

    def accept_terms(self, artist: Artist, *, version: int, actor: str) -> None:
        new_terms = self.terms(version)
        before = self.view(artist)
        now_on = self.view(replace(artist, terms_version=new_terms.version))
        was_on = {p.purpose: p.effective_default for p in before.purposes}
        turned_off = [v.purpose for v in now_on.purposes if was_on.get(v.purpose, False) and not v.effective_default]
        with self._tx.transaction():
            self._repo.set_artist_terms(artist.id, version)
            self._ledger.append(
                [
                    UsageRecord(
                        actor, "terms-accept", None, None, "record", f"artist {artist.id} accepted terms", version
                    )
                ]
            )
            jobs = [self._repo.add_purge_job(artist.id, None, purpose, self._clock()) for purpose in turned_off]
        for job in jobs:
            self._run_purge(job.id, job.purpose, self._artist_tracks(artist), actor)

    # -- agreements -----------------------------------------------------------
    def set(
        self,
        artist: Artist,
        *,
        purpose: Purpose,
        allow: bool,
        actor: str,
        track: TrackId | None = None,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
    ) -> ConsentRule:
        """Record an artist's yes/no for ``purpose`` (all their tracks, or one track).

        The rule, its ledger entries and (for a no) the purge job commit in one
        transaction; the purge itself runs after the commit.  Time bounds are
        stored in UTC and must lie in years 1970–9000 (:class:`InvalidInput`).
        """
        valid_from = utc_bound(valid_from, what="valid_from")
        valid_until = utc_bound(valid_until, what="valid_until")
        terms = self.terms(artist.terms_version)
        kind = terms.kind_of(purpose)
        _check_rule(artist, purpose, kind, allow, terms.version, valid_from, valid_until)
        if track is not None:
            self._check_owner(artist, track)
        with self._tx.transaction():
            rule = self._repo.add_rule(
                ConsentRule(0, artist.id, track, purpose, allow, self._clock(), valid_from, valid_until),
                actor=actor,
            )
            # one entry per affected track, so every track's receipt shows the change
            tracks = [track] if track else self._artist_tracks(artist)
            affected: list[TrackId | None] = [*tracks] or [None]
            reason = _describe_rule(rule)
            self._ledger.append(
                [UsageRecord(actor, "consent-set", purpose, t, "record", reason, terms.version) for t in affected]
            )
            job = None if allow else self._repo.add_purge_job(artist.id, track, purpose, self._clock())
        if job is not None:
            self._run_purge(job.id, purpose, tracks, actor)
        return rule

    def revoke(self, artist: Artist, *, purpose: Purpose, actor: str, track: TrackId | None = None) -> ConsentRule:
        return self.set(artist, purpose=purpose, allow=False, actor=actor, track=track)

    def clear(self, artist: Artist, *, purpose: Purpose, track: TrackId, actor: str) -> ConsentRule:
        """End ``track``'s own choice for ``purpose``: it follows the artist's all-tracks choice again.

        Recorded as a new rule (rules are never edited) and a ledger entry;
        if the track is now denied, what was derived from it is purged.
        """
        terms = self.terms(artist.terms_version)
        _check_rule(artist, purpose, terms.kind_of(purpose), True, terms.version, None, None)
        self._check_owner(artist, track)
        with self._tx.transaction():
            rule = self._repo.add_rule(ConsentRule(0, artist.id, track, purpose, None, self._clock()), actor=actor)
            self._ledger.append(
                [UsageRecord(actor, "consent-clear", purpose, track, "record", _describe_rule(rule), terms.version)]
            )
            job = self._repo.add_purge_job(artist.id, track, purpose, self._clock())
        self._run_purge(job.id, purpose, [track], actor)  # purges only if the track is now denied
        return rule

    def view(self, artist: Artist) -> ConsentView:
        terms = self.terms(artist.terms_version)
        rules = self._repo.rules_for_artists([artist.id])
        now = self._clock()
        purposes = []
        for purpose, kind in terms.kinds.items():
            active = sorted(
                (r for r in rules if r.purpose == purpose and r.active_at(now)),
                key=lambda r: (r.created_at, r.id),
            )
            artist_rule = next((r for r in reversed(active) if r.track_id is None and r.allow is not None), None)
            latest_per_track: dict[TrackId, ConsentRule] = {}
            for r in active:
                if r.track_id is not None:
                    latest_per_track[r.track_id] = r
            own_choices = tuple(r for r in latest_per_track.values() if r.allow is not None)
            default = kind is not PurposeKind.OPT_IN
            effective = (
                True
                if kind is PurposeKind.REQUIRED
                else (bool(artist_rule.allow) if artist_rule is not None else default)
            )
            purposes.append(
                PurposeView(
                    purpose,
                    kind,
                    terms.explanations.get(purpose, ""),
                    artist_rule,
                    own_choices,
                    effective,
                    None if artist_rule is not None else _lapsed(rules, purpose, now),
                )
            )
        return ConsentView(artist, terms, tuple(purposes))

    def purge_denied(self, tracks: Sequence[TrackId], *, actor: str) -> int:
        """Re-decide ``tracks`` under every purpose of the terms and purge what they no longer allow.

        For changes outside the artist's own rules that can deny a track (a claim
        opened or upheld on a copy); purgers are idempotent, so purposes that
        were denied already cost only the check.
        """
        purposes = sorted({p for terms in self._repo.all_terms().values() for p in terms.kinds})
        purged = 0
        for purpose in purposes:
            decision = self._decider(purpose, tracks)
            denied = [t for t, ok in zip(tracks, decision.allowed.tolist(), strict=True) if not ok]
            if denied:
                purged += sum(purger(purpose, denied, actor) for purger in self._purgers)
        return purged

    def purge_jobs(self, *, status: str | None = None) -> list[PurgeJob]:
        return self._repo.list_purge_jobs(status=status)

    def retry_pending_purges(self, *, actor: str) -> int:
        """Finish purge jobs a failing purger left pending; the periodic sweep calls this.

        A job's tracks are re-decided now (consent may have changed back), and
        purgers are idempotent, so re-running a job that is merely slow is
        harmless.  A job that fails again stays pending for the next sweep.
        Returns how many jobs were finished.
        """
        finished = 0
        for job in self._repo.list_purge_jobs(status="pending"):
            tracks = [job.track_id] if job.track_id else self._tracks_of(job.artist_id)
            try:
                self._run_purge(job.id, job.purpose, tracks, actor)
            except Exception:  # one broken purger must not stop the others' retries
                _log.exception("purge job %s failed again; it stays pending", job.id)
                continue
            finished += 1
        return finished

    def _artist_tracks(self, artist: Artist) -> list[TrackId]:
        return self._tracks_of(artist.id)

    def _tracks_of(self, artist_id: ArtistId) -> list[TrackId]:
        return [t.id for t in self._catalog.list_tracks(artist_id=artist_id, limit=10**9)]

    def _check_owner(self, artist: Artist, track: TrackId) -> None:
        owners = self._catalog.track_owners([track])
        if owners.get(track) != artist.id:
            raise NotFound(
                f"artist {artist.name!r} has no track {track}",
                hint="list your tracks with `consentune tracks --artist NAME`",
            )

    def _run_purge(self, job_id: int, purpose: Purpose, tracks: list[TrackId], actor: str) -> None:
        """Purge what ``tracks`` no longer allowed under ``purpose`` gave; the job is done only if every purger ran."""
        decision = self._decider(purpose, tracks)
        denied = [t for t, ok in zip(tracks, decision.allowed.tolist(), strict=True) if not ok]
        purged = sum(purger(purpose, denied, actor) for purger in self._purgers) if denied else 0
        self._repo.finish_purge_job(job_id, purged=purged, at=self._clock())


def _check_rule(
    artist: Artist,
    purpose: Purpose,
    kind: PurposeKind | None,
    allow: bool,
    version: int,
    valid_from: datetime | None,
    valid_until: datetime | None,
) -> None:
    if kind is None:
        raise ConsentError(
            f"purpose {purpose!r} is not in terms v{version} accepted by {artist.name!r}",
            hint="see `consentune terms show` for the purposes of the terms",
        )
    if kind is PurposeKind.REQUIRED and not allow:
        raise ConsentError(
            f"{purpose} is required by terms v{version}; it cannot be switched off",
            hint="required purposes protect platform integrity; every use is still logged",
        )
    if valid_from and valid_until and valid_until <= valid_from:
        raise InvalidInput(
            f"valid_until {valid_until.isoformat()} is not after valid_from {valid_from.isoformat()}",
            hint="give an end time later than the start time",
        )


def _lapsed(rules: Sequence[ConsentRule], purpose: Purpose, now: datetime) -> ConsentRule | None:
    """The latest all-tracks rule for ``purpose`` if it ended by reaching its end date (none newer)."""
    mine = [r for r in rules if r.purpose == purpose and r.track_id is None]
    latest = max(mine, key=lambda r: (r.created_at, r.id), default=None)
    if latest is None or latest.valid_until is None or latest.valid_until > now:
        return None
    return latest


def _describe_rule(rule: ConsentRule) -> str:
    scope = f"track {rule.track_id}" if rule.track_id else f"all tracks of artist {rule.artist_id}"
    if rule.allow is None:
        return f"{scope} follows the artist's all-tracks choice again"
    text = f"{'allow' if rule.allow else 'deny'} for {scope}"
    if rule.valid_from:
        text += f" from {rule.valid_from.isoformat()}"
    if rule.valid_until:
        text += f" until {rule.valid_until.isoformat()}"
    return f"{text} (rule {rule.id})"  # the id ties every stored rule to its ledger entries


def _describe_terms(terms: Terms) -> str:
    return ", ".join(f"{p}={k.value}" for p, k in sorted(terms.kinds.items()))


__all__ = ["ConsentRegistry", "ConsentView", "Purger", "PurposeView"]
