"""Honest evaluation: Wilson intervals, the audit sample, learning curves, simulate()."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dfwidgets.learn.evaluate import (
    AuditSampler,
    LearningCurveFit,
    confidence_accuracy,
    out_of_fold_probs,
    simulate,
    wilson_interval,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ---------------------------------------------------------------- wilson_interval
def test_wilson_interval_known_values():
    # reference values (Wilson 1927 / statsmodels proportion_confint(method="wilson"))
    np.testing.assert_allclose(wilson_interval(8, 10), (0.4901625, 0.9433178), atol=1e-6)
    np.testing.assert_allclose(wilson_interval(0, 20), (0.0, 0.1611251), atol=1e-6)
    low, high = wilson_interval(50, 100, confidence=0.9)
    assert low < 0.5 < high and high - low < 0.2
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="0 <= correct <= n"):
        wilson_interval(5, 3)


# ------------------------------------------------------------------ AuditSampler
def test_audit_share_is_exact_over_time_and_random():
    audit = AuditSampler(share=0.1, random_state=0)
    pool = np.arange(1000)
    served = 0
    for k in [1] * 30 + [8] * 20 + [25] * 4:
        picks = audit.sample(pool, k)
        served += k
        assert len(picks) <= k and np.isin(picks, pool).all()
        assert len(audit.items) == int(np.floor(0.1 * served + 0.5))
    assert len(np.unique(audit.items)) == len(audit.items)
    # uniformly random, not clustered at the start of the pool
    assert audit.items.mean() == pytest.approx(500, abs=150)


def test_audit_only_draws_from_the_pool_and_estimates():
    audit = AuditSampler(share=0.5, random_state=1)
    pool = np.arange(100, 200)
    picks = audit.sample(pool, 10)
    assert len(picks) == 5 and ((picks >= 100) & (picks < 200)).all()
    assert audit.is_audit(picks).all() and not audit.is_audit([0, 1]).any()
    labels = np.full(300, -1)
    predictions = np.zeros(300, dtype=int)
    labels[picks[:4]] = [0, 0, 0, 1]  # 4 answered, 3 right; the 5th skipped
    est = audit.estimate(predictions, labels)
    assert est["n"] == 4 and est["estimate"] == 0.75
    assert (est["low"], est["high"]) == pytest.approx(wilson_interval(3, 4))
    assert AuditSampler().estimate(predictions, labels)["estimate"] is None


def test_audit_json_round_trip_continues_identically():
    a = AuditSampler(share=0.2, random_state=7)
    pool = np.arange(500)
    a.sample(pool, 10)
    a.sample(pool, 3)
    state = json.loads(json.dumps(a.to_json()))
    b = AuditSampler.from_json(state)
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(a.sample(pool, 10), b.sample(pool, 10))
    with pytest.raises(ValueError, match="missing the key"):
        AuditSampler.from_json({"share": 0.1})
    with pytest.raises(ValueError, match="share must be in"):
        AuditSampler(share=1.5)


# -------------------------------------------------------------- LearningCurveFit
def test_learning_curve_recovers_a_power_law():
    n = np.array([20, 40, 80, 160, 320, 640, 1280])
    truth = (0.05 / 1.2) ** (-1 / 0.5)  # labels for 0.85 on 0.9 - 1.2 n^-0.5: 576
    covered = []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        acc = 0.9 - 1.2 * n ** -0.5 + rng.normal(0, 0.003, len(n))
        fit = LearningCurveFit(n_bootstrap=40, random_state=seed).fit(n, acc)
        a, b, c = fit.params_
        assert a == pytest.approx(0.9, abs=0.02) and c == pytest.approx(0.5, abs=0.15)
        need = fit.labels_needed(0.85)
        assert need["reachable"] and need["low"] <= need["estimate"] <= need["high"]
        assert need["estimate"] == pytest.approx(truth, rel=0.25)
        covered.append(need["low"] <= truth <= need["high"])
    # a nominal 90% range from a point bootstrap on 7 points covers the truth most times
    assert np.mean(covered) >= 0.6, covered
    far = fit.labels_needed(0.95)  # above the asymptote
    assert not far["reachable"] and far["estimate"] == float("inf")
    np.testing.assert_allclose(fit.predict([20, 640]), [a - b * 20 ** -c, a - b * 640 ** -c])


def test_learning_curve_bad_input():
    with pytest.raises(ValueError, match=">= 3 different label counts"):
        LearningCurveFit().fit([10, 10, 20], [0.5, 0.5, 0.6])
    with pytest.raises(ValueError, match="fraction in \\[0, 1\\]"):
        LearningCurveFit().fit([10, 20, 40], [50, 60, 70])


# ----------------------------------------------------------------------- simulate
@pytest.fixture(scope="module")
def sim(fmnist_sample):
    data = fmnist_sample(4000, 3000)
    return simulate(
        data["X"], data["y"],
        strategies=["random", "entropy", "margin", "hybrid"],
        budgets=[20, 40, 80, 160, 320], seeds=[0, 1],
        test=(data["Xt"], data["yt"]), progress=False,
    )


@pytest.mark.slow
def test_simulate_curves_shape_and_honesty(sim):
    c = sim.curves
    assert list(c.columns[:4]) == ["strategy", "seed", "n_labels", "accuracy"]
    assert len(c) == 4 * 2 * 5
    assert sorted(c.n_labels.unique()) == [20, 40, 80, 160, 320]
    # the same initial (TypiClust) labels for every strategy at a seed
    first = c[c.n_labels == 20].groupby("seed").accuracy.nunique()
    assert (first == 1).all()
    mean = sim.mean_curves()
    assert (mean.loc[320] > mean.loc[20] + 0.1).all()  # more labels help every strategy
    assert mean.loc[320, "random"] > 0.7
    # an uncertainty strategy at least matches random on average at the largest budget
    best = mean.loc[320, ["entropy", "margin", "hybrid"]].max()
    assert best >= mean.loc[320, "random"] - 0.005, mean


@pytest.mark.slow
def test_simulate_labels_needed_and_savings(sim):
    mean = sim.mean_curves()
    target = float(mean.loc[160, "random"])
    need = sim.labels_needed(target)
    assert need["random"] <= 160
    budgets = list(mean.index)
    for s, n in need.items():  # interpolated between the budget before and the first hit
        if np.isfinite(n):
            hit = budgets.index(mean.index[mean[s] >= target].min())
            assert n <= budgets[hit] + 1e-9
            assert hit == 0 or n > budgets[hit - 1]
    sav = sim.savings(target)
    assert sav.loc["random", "saving"] == 0.0
    np.testing.assert_allclose(sav["ratio"], need / need["random"])
    assert np.isnan(sim.labels_needed(0.999)).all()


def test_simulate_bad_input(fmnist_train_emb):
    X = fmnist_train_emb[:200]
    y = np.arange(200) % 4
    with pytest.raises(ValueError, match="unknown strategies \\['nope'\\]"):
        simulate(X, y, strategies=["nope"], progress=False)
    with pytest.raises(ValueError, match="largest budget 640 exceeds the pool"):
        simulate(X, y, progress=False)
    with pytest.raises(ValueError, match="at least 2 classes"):
        simulate(X, np.zeros(200), budgets=[10], progress=False)
    bad = X.copy()
    bad[5] = np.inf
    with pytest.raises(ValueError, match=r"1 row\(s\): \[5\]"):
        simulate(bad, y, budgets=[10], progress=False)


def _calibrated_world(n: int, k: int, rng: np.random.Generator, sharpen: float = 1.0):
    """Probabilities and labels drawn from them (a calibrated model), then optionally
    made over-confident by sharpening (power > 1) the shown probabilities."""
    probs = rng.dirichlet(np.full(k, 0.4), size=n)
    truth = np.array([rng.choice(k, p=p) for p in probs])
    shown = probs**sharpen
    shown /= shown.sum(axis=1, keepdims=True)
    correct = shown.argmax(axis=1) == truth
    return shown, correct


def test_confidence_accuracy_calibrated_model_few_answers() -> None:
    rng = np.random.default_rng(0)
    probs, correct = _calibrated_world(20_000, 10, rng)
    pool, audit = slice(0, 19_990), slice(19_990, 20_000)  # 10 audit answers
    est = confidence_accuracy(probs[pool], probs[audit], correct[audit])
    truth = correct[pool].mean()
    assert est["n"] == 10
    assert abs(est["estimate"] - truth) < 0.03  # the pool's confidence carries it
    assert est["low"] <= truth <= est["high"]
    wl, wh = wilson_interval(int(correct[audit].sum()), 10)
    assert est["high"] - est["low"] < (wh - wl) / 2  # far tighter than the audit alone


def test_confidence_accuracy_overconfident_model_corrected_by_audit() -> None:
    rng = np.random.default_rng(1)
    probs, correct = _calibrated_world(30_000, 10, rng, sharpen=3.0)
    pool, audit = slice(0, 28_000), slice(28_000, 30_000)  # 2,000 audit answers
    truth = correct[pool].mean()
    no_audit = confidence_accuracy(probs[pool], probs[:0], [])
    assert no_audit["estimate"] - truth > 0.05  # over-confident, and nothing says so yet
    est = confidence_accuracy(probs[pool], probs[audit], correct[audit])
    assert abs(est["estimate"] - truth) < 0.015
    assert est["correction"] < -0.04
    assert est["low"] <= truth <= est["high"]


def test_confidence_accuracy_prior_is_a_calibration_gap_in_points() -> None:
    rng = np.random.default_rng(2)
    probs, correct = _calibrated_world(5_000, 10, rng, sharpen=2.0)
    pool, audit = slice(0, 4_940), slice(4_940, 5_000)  # 60 audit answers
    top = probs[pool].max(axis=1)
    n0 = (top * (1 - top)).mean() / 0.02**2  # prior sd 2 points = n0 answers
    est = confidence_accuracy(probs[pool], probs[audit], correct[audit])
    same = confidence_accuracy(probs[pool], probs[audit], correct[audit], prior_n=n0)
    assert est["estimate"] == pytest.approx(same["estimate"])
    assert est["high"] - est["low"] == pytest.approx(same["high"] - same["low"])
    # no answers: the interval is the prior's, +-1.96 x 2 points, around its centre
    none = confidence_accuracy(probs[pool], probs[:0], [])
    assert none["high"] - none["low"] == pytest.approx(2 * 1.96 * 0.02, rel=1e-3)
    shifted = confidence_accuracy(probs[pool], probs[:0], [], prior_mean=-0.03)
    assert shifted["estimate"] == pytest.approx(none["estimate"] - 0.03)
    assert shifted["correction"] == pytest.approx(-0.03)
    with pytest.raises(ValueError, match="prior_sd"):
        confidence_accuracy(probs[pool], probs[:0], [], prior_sd=0)
    with pytest.raises(ValueError, match="prior_mean"):
        confidence_accuracy(probs[pool], probs[:0], [], prior_mean=float("nan"))


def test_confidence_accuracy_weights_count_answers_fractionally() -> None:
    rng = np.random.default_rng(3)
    probs, correct = _calibrated_world(5_000, 10, rng, sharpen=2.0)
    pool, ev = slice(0, 4_800), slice(4_800, 5_000)  # 200 answers
    once = confidence_accuracy(probs[pool], probs[ev], correct[ev])
    twice_half = confidence_accuracy(
        probs[pool], np.concatenate([probs[ev], probs[ev]]),
        np.concatenate([correct[ev], correct[ev]]), weights=np.full(400, 0.5))
    assert twice_half["estimate"] == pytest.approx(once["estimate"])
    assert twice_half["high"] - twice_half["low"] == pytest.approx(once["high"] - once["low"])
    half = confidence_accuracy(probs[pool], probs[ev], correct[ev], weights=np.full(200, 0.5))
    # half-weight answers: the over-confident model's correction is pulled less far
    assert once["correction"] < half["correction"] < 0
    assert half["high"] - half["low"] > once["high"] - once["low"]
    with pytest.raises(ValueError, match="weights"):
        confidence_accuracy(probs[pool], probs[ev], correct[ev], weights=np.zeros(200))


def test_confidence_accuracy_bad_input() -> None:
    good = np.full((5, 3), 1 / 3)
    with pytest.raises(ValueError, match="non-empty"):
        confidence_accuracy(np.empty((0, 3)), good[:0], [])
    with pytest.raises(ValueError, match="audit_probs"):
        confidence_accuracy(good, good[:2], [True])
    with pytest.raises(ValueError, match="NaN"):
        confidence_accuracy(np.full((5, 3), np.nan), good[:0], [])


def test_out_of_fold_probs_never_score_a_model_on_its_own_training_items() -> None:
    """Random labels on 160 points in 128-d: a probe fits its training items perfectly
    (memorises), but items scored out of fold are at chance."""
    from dfwidgets.learn.linear_probe import LinearProbe

    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 128)).astype(np.float32)
    y = np.where(rng.random(160) < 0.5, "a", "b").astype(object)
    model = LinearProbe(C=100.0, classes=["a", "b"]).fit(X, y)
    assert (model.predict(X) == y).mean() > 0.95
    marked = np.arange(160) % 2 == 0  # half the items are "randomly picked"
    P = out_of_fold_probs(model, X, y, marked, folds=5)
    assert P.shape == (80, 2)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-5)
    oof = (np.asarray(["a", "b"], dtype=object)[P.argmax(axis=1)] == y[marked]).mean()
    assert oof < 0.7, oof
    with pytest.raises(ValueError, match="folds"):
        out_of_fold_probs(model, X, y, marked, folds=1)
