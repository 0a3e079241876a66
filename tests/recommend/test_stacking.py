"""The two-stage model: a logistic stage that learns, a long-tail share that is met, and a safe fallback."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from consentune.errors import InvalidInput
from consentune.recommend import EASE, ItemKNN, LogisticStage, RP3Beta, TwoStage, Weighting, metrics, top_n


def _zipf_plays(users: int = 300, items: int = 200, per_user: int = 12, seed: int = 0) -> sp.csr_matrix:
    """Users in 4 taste groups over a Zipf-popular catalogue: a head, a long tail, and structure to learn."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, items + 1) ** 0.9
    group_of_item = rng.integers(0, 4, size=items)
    rows, cols = [], []
    for user in range(users):
        weights = popularity * np.where(group_of_item == user % 4, 6.0, 1.0)
        chosen = rng.choice(items, size=per_user, replace=False, p=weights / weights.sum())
        rows += [user] * per_user
        cols += chosen.tolist()
    counts = rng.integers(1, 50, size=len(rows)).astype(np.float32)
    return sp.csr_matrix((counts, (rows, cols)), shape=(users, items))


PLAYS = _zipf_plays()


def _two_stage(**kwargs: float) -> TwoStage:
    members = [ItemKNN(k=50, weighting=Weighting("log1p")), RP3Beta(alpha=1.0, beta=0.3, k=50)]
    model = TwoStage(members, candidates=40, seed=3, **kwargs)  # type: ignore[arg-type]
    model.fit(PLAYS)
    return model


def _tail_share(model: TwoStage) -> float:
    top = top_n(model.scores(PLAYS), n=10, exclude=PLAYS)
    return metrics.long_tail_share_at_k(top, long_tail=model.long_tail, k=10)


def test_logistic_stage_recovers_the_probabilities_it_was_trained_on() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20_000, 3)) * np.array([1.0, 3.0, 0.5])
    truth = 1.0 / (1.0 + np.exp(-(x @ np.array([2.0, -0.5, 0.0]) - 1.0)))
    y = rng.random(truth.size) < truth
    stage = LogisticStage(l2=1e-3).fit(x, y)
    assert np.abs(stage.predict(x) - truth).mean() < 0.02
    assert stage.coef is not None and abs(stage.coef[2]) < 0.05  # the useless feature gets ~no weight


def test_logistic_stage_rejects_one_class_and_mismatched_labels() -> None:
    with pytest.raises(InvalidInput, match="both hits and misses"):
        LogisticStage().fit(np.ones((5, 2)), np.zeros(5))
    with pytest.raises(InvalidInput, match="disagree"):
        LogisticStage().fit(np.ones((5, 2)), np.zeros(4))
    with pytest.raises(InvalidInput, match="not fitted"):
        LogisticStage().predict(np.ones((1, 2)))


def test_the_stage_is_learned_and_trusts_the_members_scores() -> None:
    model = _two_stage()
    assert model.learned
    assert model.stage.coef is not None
    # features start with (score, gap to the user's best) per member: a higher member score means a likelier hit
    assert max(model.stage.coef[0], model.stage.coef[2]) > 0


@pytest.mark.parametrize("target", [0.1, 0.25, 0.4])
def test_long_tail_target_is_met_on_the_training_users_lists(target: float) -> None:
    model = _two_stage()
    untouched = _tail_share(model)
    model.set_exposure(long_tail_target=target)
    assert untouched < target
    assert abs(_tail_share(model) - target) <= 0.02
    assert model.bonus > 0


def test_more_long_tail_share_costs_a_larger_bonus() -> None:
    model = _two_stage()
    bonuses = []
    for target in (0.1, 0.2, 0.3):
        model.set_exposure(long_tail_target=target)
        bonuses.append(model.bonus)
    assert bonuses == sorted(bonuses) and bonuses[0] < bonuses[-1]


def test_popularity_damping_spreads_exposure_away_from_the_biggest_artists() -> None:
    model = _two_stage()
    plain = top_n(model.scores(PLAYS), n=10, exclude=PLAYS)
    model.set_exposure(long_tail_target=0.0, popularity_damping=0.5)
    damped = top_n(model.scores(PLAYS), n=10, exclude=PLAYS)
    head = np.argsort(-model.listeners, kind="stable")[:5]
    assert np.isin(damped, head).sum() < np.isin(plain, head).sum()
    assert metrics.exposure_gini(damped, n_items=PLAYS.shape[1]) < metrics.exposure_gini(plain, n_items=PLAYS.shape[1])


def test_refit_keeps_the_stage_and_retrains_the_members() -> None:
    model = _two_stage()
    coef = None if model.stage.coef is None else model.stage.coef.copy()
    more = sp.vstack([PLAYS, _zipf_plays(users=40, seed=11)]).tocsr()
    model.refit(more)
    assert model.stage.coef is not None and coef is not None
    np.testing.assert_array_equal(model.stage.coef, coef)
    assert model.scores(more[-3:]).shape == (3, PLAYS.shape[1])


def test_too_little_data_falls_back_to_averaging_the_members() -> None:
    tiny = sp.csr_matrix(np.array([[3, 1, 0, 0], [0, 2, 5, 0], [1, 0, 0, 4]], dtype=np.float32))
    model = TwoStage([EASE(l2=1.0, min_users=1), ItemKNN(k=3)], seed=0)
    model.fit(tiny)
    assert not model.learned
    items, _ = model.recommend(tiny[0], n=2)
    assert len(items) == 2 and not set(items.tolist()) & {0, 1}


def test_bad_exposure_settings_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="long_tail_target"):
        TwoStage([ItemKNN()], long_tail_target=1.5)
    with pytest.raises(InvalidInput, match="at least one member"):
        TwoStage([])
    with pytest.raises(InvalidInput, match="long_tail_target"):
        _two_stage().set_exposure(long_tail_target=-0.1)


def test_sweeping_exposure_from_cached_probabilities_equals_scoring_afresh() -> None:
    model = _two_stage()
    probability = model.hit_probabilities(PLAYS[:20])
    for target, damping in ((0.0, 0.0), (0.3, 0.2)):
        model.set_exposure(long_tail_target=target, popularity_damping=damping)
        np.testing.assert_array_equal(model.with_exposure(probability), model.scores(PLAYS[:20]))


def test_a_saved_model_serves_the_same_scores_without_its_calibration_lists() -> None:
    import pickle

    model = _two_stage(long_tail_target=0.2)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.scores(PLAYS[:10]), model.scores(PLAYS[:10]))
    assert len(pickle.dumps(model)) < len(pickle.dumps(dict(model.__dict__)))  # the lists are left out
    with pytest.raises(InvalidInput, match="refit"):
        loaded.set_exposure(long_tail_target=0.3)
    loaded.refit(PLAYS)
    loaded.set_exposure(long_tail_target=0.3)
    assert abs(_tail_share(loaded) - 0.3) <= 0.02


def test_bounded_memory_gives_the_same_model_as_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Item-item members built block by block and candidates scored in user batches change no score."""
    from consentune.recommend import models, stacking

    whole = _two_stage(long_tail_target=0.1)
    monkeypatch.setattr(models, "ITEM_BLOCK_PRODUCTS", 500)  # dozens of item blocks
    monkeypatch.setattr(stacking, "SCORE_CELLS", 7_000)  # batches of ~35 users
    blocked = _two_stage(long_tail_target=0.1)
    for one, other in zip(whole.members, blocked.members, strict=True):
        assert isinstance(one, ItemKNN | RP3Beta) and isinstance(other, ItemKNN | RP3Beta)
        difference = one.similarity - other.similarity
        assert one.similarity.nnz == other.similarity.nnz and abs(difference).max() < 1e-6
    assert blocked.bonus == pytest.approx(whole.bonus, abs=1e-6)
    np.testing.assert_allclose(blocked.scores(PLAYS), whole.scores(PLAYS), atol=1e-5)


def test_the_stage_sample_shrinks_as_the_catalogue_grows_but_keeps_a_floor() -> None:
    from consentune.recommend.stacking import CALIBRATION_USERS, MIN_SAMPLE_USERS, SAMPLE_CELLS, _sample

    users = np.arange(50_000)
    assert _sample(users, 1, items=100).size == CALIBRATION_USERS
    assert _sample(users, 1, items=SAMPLE_CELLS // 5_000).size == 5_000
    assert _sample(users, 1, items=10**9).size == MIN_SAMPLE_USERS
    picked = _sample(users, 1, items=10**9)
    assert np.all(np.diff(picked) > 0) and np.array_equal(picked, _sample(users, 1, items=10**9))  # sorted, seeded
    assert np.array_equal(_sample(users[:100], 1, items=10**9), users[:100])  # few users: all of them
