"""Issue 16: the Session's labeling loop never starves a class and never downgrades the
model; the training set is built in one place; the default strategy is measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from session_helpers import label_truth

from dfwidgets.learn.class_balance import starved_classes, starved_picks
from dfwidgets.session import Session


@pytest.fixture
def session(tmp_path: Path, small):
    src, emb = small
    s = Session.open(tmp_path / "proj", source=src, embeddings=emb, auto_fit=False)
    yield s
    s.close()


def _per_class(src, counts: dict[int, int], start: int = 0) -> np.ndarray:
    gt = np.asarray(src.labels)
    return np.concatenate([np.flatnonzero(gt == c)[start:start + n] for c, n in counts.items()])


def test_one_label_class_still_trains_a_probe(session: Session, small) -> None:
    src, _ = small
    counts = {c: 5 for c in range(9)} | {9: 1}  # "Ankle boot" has a single label
    label_truth(session, _per_class(src, counts))
    session.fit()
    assert session.fit_status_.startswith("linear probe on 46 labels")
    assert "Ankle boot" in list(session.model_.classes_)
    col = session.model_classes_.index("Ankle boot")
    boots = np.flatnonzero(np.asarray(src.labels) == 9)[1:]
    # the single label already gives the class a real column: most boots are found
    assert (session.predictions_[boots] == col).mean() > 0.5


def test_training_set_is_one_place_with_weights(session: Session, small) -> None:
    src, _ = small
    label_truth(session, _per_class(src, {0: 3, 1: 2}))
    idx, y, weight = session._fit.training_set()
    assert idx.dtype == np.int64 and y.dtype == np.int64 and weight.dtype == np.float32
    assert idx.shape == y.shape == weight.shape == (5,)
    assert sorted(y.tolist()) == [0, 0, 0, 1, 1] and (weight == 1).all()


def test_probe_uses_sample_weight(small) -> None:
    from dfwidgets.learn.linear_probe import LinearProbe

    _, emb = small
    X, y = emb[:40], np.array(["a", "b"] * 20, dtype=object)
    plain = LinearProbe().fit(X, y)
    same = LinearProbe().fit(X, y, sample_weight=np.ones(40))
    np.testing.assert_allclose(plain.coef_, same.coef_, atol=1e-5)
    w = np.ones(40)
    w[::2] = 0.0  # every "a" weighted out: the probe leans to "b"
    tilted = LinearProbe().fit(X, y, sample_weight=w)
    assert tilted.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean()
    with pytest.raises(ValueError, match="sample_weight"):
        LinearProbe().fit(X, y, sample_weight=-np.ones(40))


def test_starved_picks_are_neighbours_of_the_class(small) -> None:
    src, emb = small
    gt = np.asarray(src.labels)
    codes = np.full(len(gt), -1)
    bag = np.flatnonzero(gt == 8)[0]
    codes[bag] = 8
    train = np.bincount(codes[codes >= 0], minlength=10)
    train[:8] = 10  # every other class with an example is well fed
    assert starved_classes(train, np.bincount(codes[codes >= 0], minlength=10)).tolist() == [8]
    blocked = codes >= 0
    picks = starved_picks(emb, codes, train, blocked, 5)
    assert len(picks) == 5 and not blocked[picks].any()
    assert (gt[picks] == 8).mean() >= 0.6  # nearest neighbours of a bag are mostly bags


def test_a_starved_class_is_asked_within_a_few_batches(session: Session, small) -> None:
    src, _ = small
    gt = np.asarray(src.labels)
    label_truth(session, _per_class(src, {c: 6 for c in range(10) if c != 8} | {8: 1}))
    session.fit()
    bags = []
    for _ in range(3):  # margin alone would not ask for "Bag" (its column is weak)
        batch = session.next_batch(20, strategy="margin")
        assert len(batch) == 20 and len(np.unique(batch)) == 20
        bags.append(int((gt[batch] == 8).sum()))
        label_truth(session, batch)
        session.fit()
    _, y, _ = session._fit.training_set()
    assert bags[0] >= 1 and int((y == 8).sum()) >= 3, bags


@pytest.mark.parametrize("strategy", ["auto", "random", "margin"])
def test_accuracy_estimate_is_honest(session: Session, small, strategy: str) -> None:
    """A model whose accuracy is known (ground truth of every unlabeled item): the truth
    is inside the estimate's 95% interval and the estimate within 5 points of it. (The
    issue's 3 points at >= 90% of checkpoints is measured by benchmarks/session_loop.py;
    not yet met everywhere: see benchmarks/RESULTS.md.)"""
    src, _ = small
    gt = np.asarray(src.labels)
    names = np.asarray(src.classes, dtype=object)
    label_truth(session, np.random.default_rng(1).choice(len(gt), 20, replace=False))
    session.fit()
    while len(session.labels) < 200:
        label_truth(session, session.next_batch(30, strategy=strategy))
        session.fit()
    est = session.accuracy_estimate()
    unlabeled = np.flatnonzero(session.label_array() < 0)
    pred = session.predicted_labels()
    truth = float((pred[unlabeled] == names[gt[unlabeled]]).mean())
    assert abs(est["estimate"] - truth) <= 0.05, (est, truth)
    assert est["low"] <= truth <= est["high"], (est, truth)
    # random picks are trained on and also scored out of fold (unbiased evidence)
    assert (est["n_random"] > 100) == (strategy == "random"), est
    # the prior's centre follows the share of random picks among the training labels:
    # a probe fitted on random labels is over-confident by ~2.5 points, on picked ones ~0.5
    assert (est["prior_gap"] < -0.015) == (strategy == "random"), est
    assert -0.025 <= est["prior_gap"] <= -0.005, est


def test_accuracy_estimate_only_reads(session: Session, small, monkeypatch) -> None:
    """The out-of-fold refits run in the fit (beside the model), never in the estimate."""
    from dfwidgets.learn import evaluate
    from dfwidgets.learn.linear_probe import LinearProbe

    src, _ = small
    label_truth(session, np.random.default_rng(2).choice(len(src.labels), 20, replace=False))
    session.fit()
    label_truth(session, session.next_batch(30, strategy="random"))
    fits = []
    real_fit = LinearProbe.fit
    monkeypatch.setattr(LinearProbe, "fit", lambda self, *a, **k: fits.append(1)
                        or real_fit(self, *a, **k))
    session.fit()
    assert len(fits) == 1 + 5  # the model + the out-of-fold refits, in the fit
    fits.clear()
    monkeypatch.setattr(evaluate, "out_of_fold_probs", lambda *a, **k: fits.append(1))
    est = session.accuracy_estimate()
    n_random = int(session._evaluation.random_mask().sum())  # (some picks: starved classes)
    assert fits == [] and est["n_random"] == n_random >= 20, est


def test_hybrid_exploration_picks_are_recorded(session: Session, small) -> None:
    from dfwidgets.learn import strategies as S

    _, emb = small
    gt = np.asarray(small[0].labels)
    label_truth(session, _per_class(small[0], {c: 3 for c in range(10)}))
    session.fit()
    probs = session.probs_
    picks, uniform = S.select_with_random("hybrid", probs, emb, session.label_array() >= 0,
                                          20, 0)
    assert uniform.sum() == 2 and len(picks) == 20  # 10% drawn uniformly from the pool
    np.testing.assert_array_equal(picks, S.hybrid(probs, emb, session.label_array() >= 0,
                                                  20, 0))
    assert not S.select_with_random("margin", probs, emb, gt < 0, 5, 0)[1].any()
    batch = session.next_batch(20, strategy="hybrid")
    recorded = np.flatnonzero(session._evaluation.random_mask())
    assert 1 <= len(recorded) <= 2 and np.isin(recorded, batch).all()


def test_simulate_replays_the_session_loop(tmp_path: Path, small) -> None:
    """Item 3: one batch rule (learn/batch.py) and one state-seeded generator, so
    simulate() asks the Session's items: same accuracy at every budget, to the digit."""
    from dfwidgets.learn.simulation import simulate
    from dfwidgets.learn.strategies import STRATEGIES

    src, emb = small
    names = np.asarray(src.classes, dtype=object)
    y = names[np.asarray(src.labels)]
    budgets, seed, strategy = [20, 40], 3, "margin"  # model, starved and audit picks
    sim = simulate(emb, y, strategies=[strategy], budgets=budgets, seeds=[seed],
                   test=(emb, y), batch_size=10, initial="random",
                   classes=list(names), progress=False).curves
    first = STRATEGIES["random"](None, emb, np.zeros(len(emb), dtype=bool), 20,
                                 np.random.default_rng([seed, 0]))
    s = Session.open(tmp_path / "p", source=src, embeddings=emb, auto_fit=False,
                     strategy=strategy)
    try:
        label_truth(s, first)
        s.fit()
        got = {}
        while (n := len(s.labels)) <= budgets[-1]:
            if n in budgets:
                got[n] = float((s.model_.predict(emb) == y).mean())
            if n == budgets[-1]:
                break
            label_truth(s, s.next_batch(10))
            s.fit()
        assert int(s._evaluation.audit_mask().sum()) == 2  # audit items were in the loop
    finally:
        s.close()
    assert got == dict(zip(sim["n_labels"].tolist(), sim["accuracy"].tolist()))
