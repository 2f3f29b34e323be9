"""Acquisition strategies on real Fashion-MNIST embeddings: the contract of every strategy."""

from __future__ import annotations

import numpy as np
import pytest

from dfwidgets.learn import strategies as S
from dfwidgets.learn.linear_probe import LinearProbe

NAMES = list(S.STRATEGIES)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def pool(fmnist_train, fmnist_train_emb):
    """2,000 real items, 60 of them labeled, a probe fitted on those 60."""
    rng = np.random.default_rng(1)
    idx = np.sort(rng.choice(len(fmnist_train_emb), 2000, replace=False))
    X = fmnist_train_emb[idx]
    y = fmnist_train.labels[idx]
    mask = np.zeros(len(X), dtype=bool)
    mask[rng.choice(len(X), 60, replace=False)] = True
    probe = LinearProbe(n_members=4).fit(X[mask], y[mask])
    return {"X": X, "y": y, "mask": mask, "probs": probe.predict_proba(X),
            "mc": probe.predict_proba_mc(X)}


def run(name, pool, k, seed=0, mask=None):
    probs = pool["mc"] if name == "bald" else pool["probs"]
    return S.select(name, probs, pool["X"], pool["mask"] if mask is None else mask, k, seed)


@pytest.mark.parametrize("name", NAMES)
def test_contract_unique_unlabeled_k_deterministic(name, pool):
    picks = run(name, pool, 25, seed=3)
    assert picks.dtype == np.int64 and picks.shape == (25,)
    assert len(np.unique(picks)) == 25
    assert not pool["mask"][picks].any()
    np.testing.assert_array_equal(picks, run(name, pool, 25, seed=3))
    assert len(run(name, pool, 0)) == 0


@pytest.mark.parametrize("name", NAMES)
def test_k_larger_than_pool_is_a_clear_error(name, pool):
    mask = np.ones(len(pool["X"]), dtype=bool)
    mask[:5] = False
    with pytest.raises(ValueError, match="asked for k=6 items but only 5 unlabeled"):
        run(name, pool, 6, mask=mask)
    picks = run(name, pool, 5, mask=mask)  # exactly what is left
    assert sorted(picks.tolist()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("name", NAMES)
def test_no_near_duplicates_in_a_batch_built_from_duplicates(name, pool):
    # every item three times (the copies with tiny noise): cosine > 0.99 between copies
    rng = np.random.default_rng(0)
    base = pool["X"][:400]
    X = np.concatenate([base, base + 1e-4 * rng.standard_normal(base.shape, dtype=np.float32),
                        base])
    probe = LinearProbe(n_members=3).fit(pool["X"][pool["mask"]], pool["y"][pool["mask"]])
    probs = probe.predict_proba_mc(X) if name == "bald" else probe.predict_proba(X)
    mask = np.zeros(len(X), dtype=bool)
    picks = S.select(name, probs, X, mask, 30, 0)
    U = X[picks] / np.linalg.norm(X[picks], axis=1, keepdims=True)
    cos = U @ U.T
    np.fill_diagonal(cos, 0)
    assert cos.max() <= S.DUPLICATE_COSINE
    assert len(np.unique(picks % 400)) == 30  # 30 different originals


def test_uncertainty_strategies_pick_the_most_uncertain(pool):
    unl = np.flatnonzero(~pool["mask"])
    for name in ("least_confidence", "margin", "entropy"):
        score = S.uncertainty_scores(pool["probs"], name)
        picks = run(name, pool, 20)
        # only near-duplicate removal may skip a top item: the picks' scores are at the top
        assert score[picks].min() >= np.sort(score[unl])[-40]
        assert score[picks].mean() > score[unl].mean()


def test_bald_needs_samples(pool):
    with pytest.raises(ValueError, match=r"\(S, N, K\).*predict_proba_mc"):
        S.bald(pool["probs"], pool["X"], pool["mask"], 5, 0)


def test_cold_start_falls_back_to_typiclust(pool, caplog):
    caplog.set_level("INFO", logger="dfwidgets.learn.strategies")
    mask = np.zeros(len(pool["X"]), dtype=bool)
    picks = S.entropy(None, pool["X"], mask, 10, 0)
    assert "cold start" in caplog.text and "typiclust" in caplog.text
    np.testing.assert_array_equal(picks, S.typiclust(None, pool["X"], mask, 10, 0))


def test_typiclust_covers_more_classes_than_random_at_cold_start(pool):
    mask = np.zeros(len(pool["X"]), dtype=bool)
    cover_t, cover_r = [], []
    for seed in range(3):
        cover_t.append(len(np.unique(pool["y"][S.typiclust(None, pool["X"], mask, 10, seed)])))
        cover_r.append(len(np.unique(pool["y"][S.random(None, pool["X"], mask, 10, seed)])))
    assert np.mean(cover_t) >= np.mean(cover_r), (cover_t, cover_r)


def test_coreset_picks_far_from_labeled(pool):
    X, mask = pool["X"], pool["mask"]
    picks = S.coreset(None, X, mask, 10, 0)
    rand = S.random(None, X, mask, 10, 0)

    def dist_to_labeled(idx):
        d = ((X[idx, None, :] - X[None, mask, :]) ** 2).sum(-1)
        return d.min(axis=1)

    assert dist_to_labeled(picks).mean() > dist_to_labeled(rand).mean()


def test_hybrid_mixes_uncertainty_and_exploration(pool):
    picks = S.hybrid(pool["probs"], pool["X"], pool["mask"], 20, 0)
    score = S.uncertainty_scores(pool["probs"], "margin")
    unl = np.flatnonzero(~pool["mask"])
    assert np.median(score[picks]) > np.median(score[unl])


def test_bad_arguments(pool):
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        S.select("nope", None, pool["X"], pool["mask"], 3)
    with pytest.raises(ValueError, match="embeddings have 2000 rows but labeled_mask has 10"):
        S.random(None, pool["X"], pool["mask"][:10], 3, 0)
    with pytest.raises(ValueError, match="labeled_mask must be a boolean array"):
        S.random(None, pool["X"], pool["mask"].astype(int), 3, 0)
    with pytest.raises(ValueError, match=r"probs must have shape \(N, K\)"):
        S.margin(pool["probs"][:10], pool["X"], pool["mask"], 3, 0)
    with pytest.raises(ValueError, match="needs embeddings"):
        S.coreset(None, None, pool["mask"], 3, 0)
    X = pool["X"].copy()
    X[7] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values in 1 row\(s\): \[7\]"):
        S.random(None, X, pool["mask"], 3, 0)
    with pytest.raises(ValueError, match="k must be >= 0"):
        S.random(None, None, pool["mask"], -1, 0)
