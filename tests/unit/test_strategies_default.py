"""Issue 16: the default strategy (auto = TypiClust, coverage margin, then hybrid), simulate() as the
Session loop (audit items, starved classes), and recommend() with its evidence."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from dfwidgets.learn import strategies as S
from dfwidgets.learn.recommend import recommend
from dfwidgets.learn.simulation import simulate
from dfwidgets.session import Session


def test_session_default_is_auto() -> None:
    assert inspect.signature(Session.open).parameters["strategy"].default == "auto"
    assert {"auto", "probcover"} <= set(S.STRATEGIES)


def test_probcover_picks_typical_spread_items(small) -> None:
    src, emb = small
    gt = np.asarray(src.labels)
    mask = np.zeros(len(emb), dtype=bool)
    picks = S.probcover(None, emb, mask, 20, 0)
    assert len(np.unique(picks)) == 20 and not mask[picks].any()
    # representative picks cover the classes better than 20 random items usually do
    assert len(np.unique(gt[picks])) >= 8
    again = S.probcover(None, emb, mask, 20, 0)
    np.testing.assert_array_equal(picks, again)  # seeded
    mask[picks] = True
    more = S.probcover(None, emb, mask, 10, 1)
    assert not np.isin(more, picks).any()


def test_auto_switches_from_representative_to_uncertain(small) -> None:
    _, emb = small
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), size=len(emb)).astype(np.float32)
    mask = np.zeros(len(emb), dtype=bool)
    mask[:30] = True
    # no model yet: representative picks
    np.testing.assert_array_equal(S.auto(None, emb, mask, 10, 0),
                                  S.typiclust(None, emb, mask, 10, 0))
    # 3 per class: uncertain regions (coverage margin)
    np.testing.assert_array_equal(S.auto(probs, emb, mask, 10, 0),
                                  S.coverage_margin(probs, emb, mask, 10, 0))
    # still uncertain regions one label short of the switch (session 28: not 10 per class)
    mask[: 10 * S.SWITCH_PER_CLASS - 1] = True
    assert S.SWITCH_PER_CLASS == 40
    np.testing.assert_array_equal(S.auto(probs, emb, mask, 10, 0),
                                  S.coverage_margin(probs, emb, mask, 10, 0))
    mask[: 10 * S.SWITCH_PER_CLASS] = True  # 40 per class: uncertainty with diversity
    np.testing.assert_array_equal(S.auto(probs, emb, mask, 10, 0),
                                  S.hybrid(probs, emb, mask, 10, 0))


def test_typical_margin_prefers_typical_uncertain_items(small) -> None:
    from dfwidgets.learn.probcover import neighbour_table

    _, emb = small
    n = len(emb)
    probs = np.tile(np.asarray([[0.9, 0.1]], np.float32), (n, 1))
    probs[: n // 2] = [0.5, 0.5]  # the first half is maximally uncertain
    mask = np.zeros(n, dtype=bool)
    picks = S.typical_margin(probs, emb, mask, 20, 0)
    assert len(np.unique(picks)) == 20 and (picks < n // 2).all()
    U = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    nb = neighbour_table(emb)
    typ = np.einsum("id,ikd->i", U, U[nb]) / nb.shape[1]
    # the picks are more typical than the uncertain items on average (no outliers)
    assert typ[picks].mean() > typ[: n // 2].mean()
    np.testing.assert_array_equal(picks, S.typical_margin(probs, emb, mask, 20, 0))


def test_dense_margin_prefers_uncertain_regions_to_lone_uncertain_items(small) -> None:
    from dfwidgets.learn.probcover import neighbour_table

    _, emb = small
    n = len(emb)
    nb = neighbour_table(emb)
    core = np.zeros(n, dtype=bool)
    core[np.unique(nb[:20])] = True  # 20 items' neighbourhoods ...
    region = core.copy()
    region[np.unique(nb[core])] = True  # ... and theirs: every core item's neighbours are unsure
    lone = np.flatnonzero(~region & ~region[nb].any(axis=1))[::2]  # unsure, neighbours sure
    probs = np.tile(np.asarray([[0.95, 0.05]], np.float32), (n, 1))
    probs[region] = probs[lone] = [0.5, 0.5]  # the same own uncertainty
    mask = np.zeros(n, dtype=bool)
    dense = S.dense_margin(probs, emb, mask, 20, 0)
    typical = S.typical_margin(probs, emb, mask, 20, 0)
    assert len(np.unique(dense)) == 20 and not mask[dense].any()
    # the middle of the uncertain region; uncertainty x typicality alone cannot tell
    assert core[dense].mean() >= 0.5 and core[dense].mean() >= core[typical].mean() + 0.3
    np.testing.assert_array_equal(dense, S.dense_margin(probs, emb, mask, 20, 0))


def test_coverage_margin_takes_one_pick_per_uncertain_region(small) -> None:
    from dfwidgets.learn.probcover import neighbour_table, probcover_picks
    from dfwidgets.learn.strategies_cold import COVER_KNN

    _, emb = small
    n = len(emb)
    nb = neighbour_table(emb, k=COVER_KNN)
    unsure = np.zeros(n, dtype=bool)
    unsure[np.unique(nb[:40])] = True  # 40 items' neighbourhoods are unsure, the rest sure
    probs = np.tile(np.asarray([[0.95, 0.05]], np.float32), (n, 1))
    probs[unsure] = [0.5, 0.5]
    mask = np.zeros(n, dtype=bool)
    picks = S.coverage_margin(probs, emb, mask, 10, 0)
    assert len(np.unique(picks)) == 10 and not mask[picks].any()
    # each pick covers (is a neighbour of) many unsure items, and different ones
    covers = [np.flatnonzero((nb == x).any(axis=1) & unsure) for x in picks]
    assert min(len(c) for c in covers) >= 5
    together = np.concatenate(covers)
    assert len(np.unique(together)) >= 0.8 * len(together)
    np.testing.assert_array_equal(picks, S.coverage_margin(probs, emb, mask, 10, 0))
    with pytest.raises(ValueError, match="weights must be"):  # bad weights: a clear message
        probcover_picks(emb, mask, 5, np.random.default_rng(3), weights=-np.ones(n))
    # no model yet: representative picks
    np.testing.assert_array_equal(S.coverage_margin(None, emb, mask, 10, 0),
                                  S.typiclust(None, emb, mask, 10, 0))


def test_simulate_mirrors_the_session_loop(small) -> None:
    src, emb = small
    y = np.asarray(src.classes, dtype=object)[np.asarray(src.labels)]
    res = simulate(emb, y, strategies=["auto"], budgets=[20, 60], seeds=[0], batch_size=20,
                   initial="auto", progress=False)
    assert res.settings["audit_share"] == 0.1 and res.settings["balance"] is True
    assert res.curves["n_labels"].tolist() == [20, 60]
    assert res.curves["accuracy"].iloc[-1] > 0.6


def _curves() -> pd.DataFrame:
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.02)):
        for n, r, a in ((20, 0.50, 0.60), (40, 0.60, 0.70), (80, 0.70, 0.78),
                        (160, 0.78, 0.82)):
            rows += [("random", seed, n, r + shift, 0.0), ("auto", seed, n, a + shift, 0.0)]
    return pd.DataFrame(rows, columns=["strategy", "seed", "n_labels", "accuracy", "seconds"])


def test_recommend_gives_the_strategy_with_its_evidence() -> None:
    rec = recommend(_curves(), target=0.70)
    assert rec.strategy == "auto"
    assert rec.labels_needed == pytest.approx(40 - 0.01 / 0.1 * 20)  # mean curve 0.71 at 40
    assert rec.random_labels == pytest.approx(40 + 0.09 / 0.10 * 40)  # 0.61 -> 0.71
    assert rec.labels_saved == pytest.approx(rec.random_labels - rec.labels_needed)
    assert rec.seed_range == (pytest.approx(36.0), pytest.approx(40.0))
    assert "auto" in rec.text and "saves about" in rec.text and "2 seeds" in rec.text
    far = recommend(_curves(), target=0.95)
    assert far.strategy == "auto" and "no strategy reached" in far.text
    with pytest.raises(ValueError, match="target"):
        recommend(_curves(), target=1.5)


def test_neighbour_tables_of_several_k_stay_for_one_pool_and_go_with_it() -> None:
    """A pool's 10-NN (the Session's) and 30-NN (coverage margin's) tables are both kept;
    handing over another pool's table drops the first pool's (bounded memory)."""
    from dfwidgets.learn import probcover

    rng = np.random.default_rng(0)
    X1, X2 = rng.normal(size=(50, 4)), rng.normal(size=(60, 4))

    def table(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.stack([np.roll(np.arange(len(X)), -j - 1) for j in range(k)], axis=1)
        return idx, np.full(idx.shape, 0.5, np.float32)

    probcover.remember_table(X1, *table(X1, 10))
    probcover.remember_table(X1, *table(X1, 30))
    for k in (10, 30):  # both served from memory: the handed-over tables, not rebuilt ones
        np.testing.assert_array_equal(probcover.neighbour_table(X1, k=k), table(X1, k)[0])
    probcover.remember_table(X2, *table(X2, 10))
    pools = {key[1] for key in probcover._CACHE}
    assert pools == {X2.shape}
