"""learn/training_report.py: the numbers the Trainer draws, checked against values
computed independently (by hand, by a loop, or from the curve that made the data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dfwidgets.learn import training_report as tr
from dfwidgets.learn.simulation import SimulationResult


def _records(**cols):
    return pd.DataFrame(cols)


def test_curve_points_prefers_ground_truth_and_keeps_the_latest_fit_per_count():
    curve = _records(
        n_labels=[30, 10, 30, 20],
        accuracy=[0.5, 0.3, 0.55, 0.4], low=[0.4, 0.2, 0.45, 0.3], high=[0.6, 0.4, 0.65, 0.5],
        true_accuracy=[0.61, 0.42, 0.63, np.nan],
    )
    pts = tr.curve_points(curve)
    assert list(pts.columns) == tr.CURVE_COLUMNS
    # 20 has no ground truth: dropped; 30 was fitted twice: the later record (0.63) wins
    assert pts["n_labels"].tolist() == [10, 30]
    np.testing.assert_allclose(pts["accuracy"], [0.42, 0.63])
    assert pts["low"].isna().all() and pts["high"].isna().all()
    assert set(pts["measured"]) == {"ground truth"}


def test_curve_points_estimated_keeps_the_interval():
    curve = _records(n_labels=[20, 10, 20], accuracy=[0.5, 0.3, 0.52],
                     low=[0.4, 0.2, 0.41], high=[0.6, 0.4, 0.63],
                     true_accuracy=[None, None, None])
    pts = tr.curve_points(curve)
    assert pts["n_labels"].tolist() == [10, 20]
    np.testing.assert_allclose(pts["accuracy"], [0.3, 0.52])
    np.testing.assert_allclose(pts["low"], [0.2, 0.41])
    np.testing.assert_allclose(pts["high"], [0.4, 0.63])
    assert set(pts["measured"]) == {"estimated: confidence + audit"}
    assert tr.curve_points(None).empty and tr.curve_points(pd.DataFrame()).empty


def test_confusion_counts_match_a_loop_and_skip_unknown_codes():
    rng = np.random.default_rng(0)
    k = 4
    truth = rng.integers(0, k, 500)
    pred = rng.integers(-1, k, 500)  # -1: a class the model does not know
    cm = tr.confusion(truth, pred, k)
    expected = np.zeros((k, k), dtype=int)
    for t, p in zip(truth, pred):
        if p >= 0:
            expected[t, p] += 1
    np.testing.assert_array_equal(cm, expected)
    assert cm.sum() == (pred >= 0).sum()
    with pytest.raises(ValueError, match="n_classes"):
        tr.confusion([0, 5], [0, 1], 3)
    with pytest.raises(ValueError, match="length"):
        tr.confusion([0, 1], [0], 3)


def test_per_class_accuracy_leaves_out_empty_classes():
    cm = np.array([[3, 1, 0], [0, 0, 0], [2, 0, 6]])
    per = tr.per_class_accuracy(cm)
    assert per["class_code"].tolist() == [0, 2]
    np.testing.assert_allclose(per["accuracy"], [3 / 4, 6 / 8])
    assert per["n"].tolist() == [4, 8]


def _power_points(a, b, c, ns):
    ns = np.asarray(ns, dtype=float)
    return pd.DataFrame({"n_labels": ns.astype(int), "accuracy": a - b * ns ** -c,
                         "measured": "ground truth"})


def test_stop_estimate_recovers_the_labels_needed_on_a_power_law():
    a, b, c = 0.92, 0.8, 0.5
    pts = _power_points(a, b, c, [20, 40, 80, 160, 300])
    target = 0.88
    truth_needed = ((a - target) / b) ** (-1 / c)  # = 400
    est = tr.stop_estimate(pts, target)
    assert est["status"] == "estimate"
    assert est["estimate"] == pytest.approx(truth_needed, rel=1e-3)
    assert est["low"] <= est["estimate"] <= est["high"]
    assert est["asymptote"] == pytest.approx(a, abs=1e-4)
    assert est["n_now"] == 300 and est["more"] == round(est["estimate"]) - 300
    # the drawn curve is the law itself, from the first count to past the estimate
    fx, fy = np.asarray(est["fit_x"]), np.asarray(est["fit_y"])
    assert fx[0] == 20 and fx[-1] >= truth_needed
    np.testing.assert_allclose(fy, a - b * fx ** -c, atol=1e-4)


def test_stop_estimate_states():
    pts = _power_points(0.9, 0.8, 0.5, [20, 40, 80, 160])
    assert tr.stop_estimate(pts.iloc[:2], 0.85)["status"] == "too_few"
    out = tr.stop_estimate(pts, 0.95)  # above the plateau 0.9
    assert out["status"] == "unreachable" and not np.isfinite(out["estimate"])
    assert out["asymptote"] == pytest.approx(0.9, abs=1e-3)
    reached = tr.stop_estimate(pts, 0.5)  # the last point (0.837) is above the target
    assert reached["status"] == "reached" and reached["more"] is None
    same_n = pd.DataFrame({"n_labels": [10, 10, 20], "accuracy": [0.3, 0.4, 0.5]})
    bad = tr.stop_estimate(same_n, 0.9)
    assert bad["status"] == "no_fit" and "3 different" in bad["error"]


def _sim(ns, accs):
    curves = pd.DataFrame({"strategy": "random", "seed": 0, "n_labels": ns, "accuracy": accs,
                           "seconds": 0.0})
    return SimulationResult(curves=curves)


def test_saving_interpolates_random_sampling_labels():
    sim = _sim([10, 20, 40, 80], [0.5, 0.6, 0.7, 0.8])
    pts = pd.DataFrame({"n_labels": [10, 20], "accuracy": [0.4, 0.75], "measured": "x"})
    out = tr.saving(pts, sim)
    # random reaches 0.75 halfway between 40 (0.7) and 80 (0.8): 60 labels = 3x as many
    assert out["random_needed"] == pytest.approx(60.0)
    assert out["ratio"] == pytest.approx(3.0) and out["verdict"] == "saved"
    assert out["n_labels"] == 20 and out["simulated_up_to"] == 80
    never = tr.saving(pts.assign(accuracy=[0.4, 0.9]), sim)
    assert never["random_needed"] == float("inf") and never["verdict"] is None
    worse = tr.saving(pd.DataFrame({"n_labels": [80], "accuracy": [0.6], "measured": "x"}), sim)
    assert worse["random_needed"] == pytest.approx(20.0) and worse["verdict"] == "worse"
    assert tr.saving(pts, None)["random_needed"] is None
    assert tr.saving(pts.iloc[:0], sim)["n_labels"] is None


def test_baseline_budgets_and_random_baseline():
    assert tr.baseline_budgets(100)[0] == 10 and tr.baseline_budgets(100)[-1] == 100
    assert tr.baseline_grid_top(100) == 256 and tr.baseline_grid_top(64) == 64
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(3, 8)) * 4
    y = rng.integers(0, 3, 400)
    X = (centers[y] + rng.normal(size=(400, 8))).astype(np.float32)
    names = np.array(["a", "b", "c"], dtype=object)[y]
    sim = tr.random_baseline(X[:300], names[:300], top=60, test=(X[300:], names[300:]))
    xs, ys = tr.baseline_curve(sim)
    assert xs == tr.baseline_budgets(60)
    assert ys[-1] > 0.9  # well-separated blobs
    assert tr.baseline_curve(None) == ([], [])


def test_baseline_pool_leaves_out_the_holdout_and_unlabeled_items():
    labels = np.array([0, 1, -1, 2, 0, 1, -1, 2, 0, 1])
    pool = tr.baseline_pool(labels, np.array([0, 3]), size=100)
    assert pool.tolist() == [1, 4, 5, 7, 8, 9]
    small = tr.baseline_pool(labels, np.array([0, 3]), size=3)
    assert len(small) == 3 and set(small) <= set(pool.tolist())
    assert (np.diff(small) > 0).all()


def test_finetune_run_record():
    from types import SimpleNamespace

    history = pd.DataFrame({"epoch": [0, 1, 2], "val_acc": [0.6, 0.7, 0.65]})
    ft = SimpleNamespace(history_=history, improved_=False, best_accuracy_=0.6,
                         probe_accuracy_=0.6, blocks_=["blocks.6"], seconds_=12.345,
                         cancelled_=False, verdict_="kept the probe")
    ev = {"truth": np.array([0, 1, 1, 2]), "pred": np.array([0, 1, 2, 2]), "kind": "audit labels"}
    run = tr.finetune_run(ft, n_labels=50, n_train=45, evaluation=ev, kept="probe")
    assert run["accuracy"] == pytest.approx(0.75) and run["eval"] == "audit labels"
    assert run["held_out_finetune"] == pytest.approx(0.7)  # best epoch after the probe
    assert run["epochs"] == 2 and run["seconds"] == 12.35 and run["kept"] == "probe"
    assert tr.finetune_run(ft, n_labels=1, n_train=1, evaluation=None, kept=None)["accuracy"] is None
