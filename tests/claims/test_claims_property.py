"""No path lets a copy be used for a purpose its original artist denies (Hypothesis, through the gate)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentune.claims import EXEMPT, POLICY_BOUND, Claim, ClaimPolicy, ClaimStatus
from consentune.demo.synth import SongSpec, encode, synthesize
from consentune.service import Consentune
from consentune.storage.claims_sql import SqlClaims
from consentune.types import ArtistId, Purpose, PurposeKind, TrackId

ACTOR = "admin:test"
PURPOSES = ["stream", "recommend", "organize", "train-ai", "train-generative", "ai-input", "identify", "detect-fraud"]


def _track(svc: Consentune, artist_name: str, seed: int) -> tuple[ArtistId, TrackId]:
    artist = svc.catalog.add_artist(artist_name, actor=ACTOR)
    audio = encode(synthesize(SongSpec(seed=seed, duration_s=3.0, sample_rate=22_050)), 22_050, format="wav")
    track = svc.catalog.ingest(audio, filename="x.wav", artist=artist, title=artist_name, actor=ACTOR).track
    return ArtistId(artist.id), track.id


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    purpose=st.sampled_from(PURPOSES),
    original_says=st.sampled_from([None, True, False]),
    copy_says=st.sampled_from([None, True, False]),
    status=st.sampled_from(list(ClaimStatus)),
    policy=st.sampled_from(list(ClaimPolicy)),
)
def test_a_governed_copy_is_never_allowed_what_its_original_is_denied(
    sqlite_svc: Consentune,
    purpose: str,
    original_says: bool | None,
    copy_says: bool | None,
    status: ClaimStatus,
    policy: ClaimPolicy,
) -> None:
    svc = sqlite_svc
    repo = SqlClaims(svc.store)
    if not svc.catalog.artists():
        _track(svc, "Original", 1)
        _track(svc, "Uploader", 2)
    by_name = {a.name: a for a in svc.catalog.artists()}
    original_artist, copy_artist = by_name["Original"], by_name["Uploader"]
    [original] = [t.id for t in svc.catalog.tracks(artist=original_artist)]
    [copy] = [t.id for t in svc.catalog.tracks(artist=copy_artist)]
    now = datetime.now(UTC)
    claim = next(iter(repo.list_claims(artist_id=None, status=None, limit=1, offset=0)), None)
    if claim is None:
        pair = (copy, original, ArtistId(copy_artist.id), ArtistId(original_artist.id))
        [claim] = repo.add_claims([Claim(0, *pair, status, 20.0, 0.0, 3.0, 0.0, 3.0, 1.0, 0.0, False, now, now)])
    repo.move_claim(claim.id, expect=list(ClaimStatus), to=status, at=now, by=ACTOR, reason="x")
    repo.set_claim_policy(ArtistId(original_artist.id), policy, now)

    p = Purpose(purpose)
    kind = svc.consent.current_terms().kind_of(p)
    required = kind is PurposeKind.REQUIRED

    def say(artist: object, track: TrackId, answer: bool | None) -> bool:
        """Apply the track's own rule; return the track's own answer."""
        if answer is None or (required and answer is False):
            svc.consent.clear(artist, purpose=p, track=track, actor=ACTOR)  # type: ignore[arg-type]
            return kind is not PurposeKind.OPT_IN
        svc.consent.set(artist, purpose=p, allow=answer, actor=ACTOR, track=track)  # type: ignore[arg-type]
        return answer or required

    original_own = say(original_artist, original, original_says)
    copy_own = say(copy_artist, copy, copy_says)

    decided = bool(svc.gate.decide(purpose=p, tracks=[copy]).allowed[0])
    granted = [h.track for h in svc.gate.request(actor=ACTOR, purpose=p, tracks=[copy]).allowed]

    governed = status.governs and p not in EXEMPT
    if governed and not original_own:
        assert not decided and not granted  # the promise: the original's "no" reaches every copy
    expected = copy_own and (not governed or (original_own and (p not in POLICY_BOUND or policy is ClaimPolicy.ALLOW)))
    assert decided == expected
    assert (granted == [copy]) == expected
    # the signals and the listener catalogue decide every purpose from one read of consent and claims:
    # the same answers as deciding each purpose on its own
    both = [copy, original]
    together, _until = svc.gate.decide_purposes(purposes=[Purpose(q) for q in PURPOSES], tracks=both)
    for q in PURPOSES:
        alone = svc.gate.decide(purpose=Purpose(q), tracks=both)
        assert together[Purpose(q)].allowed.tolist() == alone.allowed.tolist(), q
        assert together[Purpose(q)].reasons.tolist() == alone.reasons.tolist(), q
