"""simulate(): replay labeling with an oracle, to compare acquisition strategies."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._checks import check_embeddings, check_labels, encode_labels
from .audit import AuditSampler
from .batch import batch_rng, compose_batch
from .neighbour_smoothing import NeighbourSmoothing
from .strategies import STRATEGIES

__all__ = ["SimulationResult", "simulate"]

log = logging.getLogger(__name__)

# The Session's default neighbour-smoothing weight (see NeighbourSmoothing): off. 0.5 needs
# ~20% fewer labels for the same accuracy on Fashion-MNIST but makes the model's confidence,
# and so Session.accuracy_estimate(), over-optimistic (benchmarks/RESULTS.md): opt in.
SMOOTHING = 0.0
AUDIT_SHARE = 0.1  # as the Session's next_batch (session/evaluation.py AUDIT_SHARE)


def _probs(model: Any, X: np.ndarray, classes: np.ndarray, *, mc: bool) -> np.ndarray:
    """(N, K) (or (S, N, K) with ``mc``) probabilities in the columns of ``classes``, zeros
    for classes the model does not know yet (as the Session's ``probs_``)."""
    p = model.predict_proba_mc(X) if mc else model.predict_proba(X)
    out = np.zeros((*p.shape[:-1], len(classes)), dtype=p.dtype)
    col = {c: i for i, c in enumerate(classes.tolist())}
    out[..., [col[c] for c in list(model.classes_)]] = p
    return out


@dataclass
class SimulationResult:
    """What :func:`simulate` returns.

    ``curves``: DataFrame[strategy, seed, n_labels, accuracy, seconds] (one row per
    strategy x seed x budget; ``seconds`` = time spent in that run so far).
    ``seconds``: wall time of the whole simulation. ``n_pool`` / ``n_test``: sizes.
    """

    curves: pd.DataFrame
    seconds: float = 0.0
    n_pool: int = 0
    n_test: int = 0
    settings: dict = field(default_factory=dict)

    def mean_curves(self) -> pd.DataFrame:
        """Mean accuracy over seeds: index n_labels, one column per strategy."""
        return self.curves.pivot_table(index="n_labels", columns="strategy",
                                       values="accuracy", aggfunc="mean", sort=True)

    def labels_needed(self, target: float) -> pd.Series:
        """Per strategy, labels needed for mean accuracy (over seeds) >= ``target``,
        linearly interpolated between budgets (learn/recommend.py's rule, the one
        :meth:`recommend` reports); NaN if no budget reached it."""
        from .recommend import labels_needed

        if not 0 < target < 1:
            raise ValueError(f"target must be an accuracy in (0, 1); got {target}")
        mean = self.mean_curves()
        n = mean.index.to_numpy(dtype=np.float64)
        out = {s: labels_needed(n, mean[s].to_numpy(dtype=np.float64), target)
               for s in mean.columns}
        return pd.Series(out, name="labels_needed", dtype=np.float64)

    def savings(self, target: float) -> pd.DataFrame:
        """Labels needed per strategy vs random: DataFrame[labels_needed, ratio, saving]
        indexed by strategy; ratio = labels / random's labels, saving = 1 - ratio."""
        need = self.labels_needed(target)
        if "random" not in need.index:
            raise ValueError("savings() compares against random: include 'random' in strategies")
        base = need["random"]
        ratio = need / base if np.isfinite(base) else need * np.nan
        if not np.isfinite(base):
            log.info("random never reached %.3f: savings are unknown (NaN)", target)
        return pd.DataFrame({"labels_needed": need, "ratio": ratio, "saving": 1.0 - ratio})


    def recommend(self, target: float | None = None) -> Any:
        """The strategy to use for mean accuracy ``target`` (default 95% of the best final
        accuracy) with its evidence: a :class:`~dfwidgets.learn.recommend.Recommendation`
        (labels saved against random, range over seeds, ``.text`` in words)."""
        from .recommend import recommend

        return recommend(self.curves, target=target)


def _accuracy(model: Any, X: np.ndarray, y_codes: np.ndarray, classes: np.ndarray) -> float:
    pred = model.predict(X)
    lookup = {c: i for i, c in enumerate(classes.tolist())}
    pred_codes = np.fromiter((lookup[p] for p in pred.tolist()), np.int64, len(pred))
    return float((pred_codes == y_codes).mean())


def simulate(
    embeddings: Any,
    y: Any,
    *,
    strategies: Sequence[str] = ("random", "entropy", "margin", "hybrid"),
    budgets: Sequence[int] = (20, 40, 80, 160, 320, 640),
    seeds: Sequence[int] = (0, 1, 2),
    test: tuple[Any, Any] | None = None,
    model: Any = None,
    batch_size: int | None = None,
    initial: Literal["typiclust", "probcover", "auto", "random"] = "typiclust",
    smoothing: float = SMOOTHING,
    audit_share: float = AUDIT_SHARE,
    balance: bool = True,
    classes: Sequence[Any] | None = None,
    progress: bool = True,
) -> SimulationResult:
    """Replay active labeling with an oracle that knows ``y``; return accuracy curves.

    ``embeddings`` (N, D) is the pool, ``y`` (N,) its true labels (ground truth, or the
    labels a user already gave: then pass only the labeled items). For each seed the
    first ``budgets[0]`` labels come from ``initial`` (the same items for every strategy);
    then each strategy picks the rest, a batch of ``batch_size`` at a time (default: up to
    the next budget), the model is refitted (warm-started) after each batch, and accuracy
    is measured at every budget on ``test = (X_test, y_test)`` (default: a random 20% of
    the pool held out, never labeled). ``model``: an unfitted sklearn-shaped classifier
    (default :class:`LinearProbe`); cloned per run. ``smoothing``: the model sees
    :class:`NeighbourSmoothing` features (each item plus ``smoothing`` x the mean of its 10
    nearest pool neighbours, as ``Session.open(..., smoothing=)`` does); 0 (default) = the
    raw embeddings. The strategies
    always get the raw embeddings for their diversity terms.

    Each batch is made by ``Session.next_batch``'s own function
    (:func:`~dfwidgets.learn.batch.compose_batch`, its generator seeded by the labeling
    state), and the default model is the Session's (a warm-started LinearProbe over the
    classes labeled so far), so from the same first labels a Session asks the same items:
    ``audit_share`` random audit items, labeled but never trained on (0 = train on every
    label), with ``balance`` up to a quarter of the rest for classes with fewer than 3
    training labels (:func:`~dfwidgets.learn.class_balance.starved_picks`), then the
    strategy's picks. ``seeds`` choose the first labels; the draws after them follow.
    ``classes``: the class names in the Session's order (``session.classes``; default
    sorted): the model's column order changes its rounding, and so later picks.
    """
    from sklearn.base import clone

    from .linear_probe import LinearProbe

    X = check_embeddings(embeddings, name="embeddings")
    y = check_labels(y, len(X))
    classes, codes = encode_labels(y, classes)
    if len(classes) < 2:
        raise ValueError(f"simulate needs at least 2 classes in y; got {list(classes)}")
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not len(strategies):
        raise ValueError(f"unknown strategies {unknown}; choose from {sorted(STRATEGIES)}")
    if initial not in ("typiclust", "random", "probcover", "coreset", "auto"):
        raise ValueError(f"initial must be 'typiclust', 'probcover', 'auto' or 'random' (a "
                         f"strategy that needs no model); got {initial!r}")
    budgets = sorted({int(b) for b in budgets})
    if not budgets or budgets[0] < 1:
        raise ValueError(f"budgets must be positive label counts; got {budgets}")
    if not 0 <= audit_share < 1:
        raise ValueError(f"audit_share must be in [0, 1); got {audit_share}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 or None; got {batch_size}")

    if test is None:
        rng = np.random.default_rng(12345)
        perm = rng.permutation(len(X))
        n_test = max(1, len(X) // 5)
        test_idx, pool_idx = perm[:n_test], np.sort(perm[n_test:])
        X_test, t_codes = X[test_idx], codes[test_idx]
        X, codes = X[pool_idx], codes[pool_idx]
        log.info("simulate: no test set given; holding out %d pool items for accuracy", n_test)
    else:
        X_test = check_embeddings(test[0], name="test embeddings", dim=X.shape[1])
        y_test = check_labels(test[1], len(X_test), name="test labels")
        _, t_codes = encode_labels(y_test, classes)
    if budgets[-1] > len(X):
        raise ValueError(f"the largest budget {budgets[-1]} exceeds the pool ({len(X)} items)")
    X_model = X
    if smoothing:
        smoother = NeighbourSmoothing(alpha=smoothing).fit(X)
        X_model, X_test = smoother.transform(), smoother.transform(X_test)

    order = None
    if model is None:  # the Session's: warm-started, over the classes labeled so far
        model, order = LinearProbe(), classes.tolist()
    elif "classes" in model.get_params():
        model = clone(model).set_params(classes=classes.tolist())
    if "bald" in strategies and not hasattr(model, "predict_proba_mc"):
        raise ValueError("bald needs a model with predict_proba_mc (e.g. LinearProbe)")
    y_pool = classes[codes]

    total_steps = len(seeds) * len(strategies) * len(budgets)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, desc="simulate", unit="fit")
    rows = []
    started = time.perf_counter()
    try:
        for seed in seeds:
            start_mask = np.zeros(len(X), dtype=bool)
            first = STRATEGIES[initial](None, X, start_mask, budgets[0],
                                        np.random.default_rng([int(seed), 0]))
            for name in strategies:
                run_model = clone(model)
                mask = start_mask.copy()
                mask[first] = True
                held = np.zeros(len(X), dtype=bool)  # audit items: labeled, never trained on
                audit = AuditSampler(share=audit_share)
                run_start = time.perf_counter()
                fitted, fitted_at = None, -1
                for budget in budgets:
                    while (have := int(mask.sum())) < budget:
                        if fitted_at != have:  # labels only grow: the count identifies the fit
                            fitted = _fit(run_model, X_model, y_pool, mask & ~held, order)
                            fitted_at = have
                        step = budget - have if batch_size is None else min(batch_size,
                                                                             budget - have)
                        probs = None if fitted is None else _probs(fitted, X_model, classes,
                                                                    mc=name == "bald")
                        picks = _batch(name, probs, X, codes, mask, held, step, audit,
                                       balance)
                        mask[picks] = True
                    fitted = _fit(run_model, X_model, y_pool, mask & ~held, order)
                    fitted_at = int(mask.sum())
                    if fitted is None:  # one class so far: the constant prediction
                        only = codes[mask & ~held][0]
                        acc = float((t_codes == only).mean())
                    else:
                        acc = _accuracy(fitted, X_test, t_codes, classes)
                    rows.append((name, int(seed), int(mask.sum()), acc,
                                 time.perf_counter() - run_start))
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    curves = pd.DataFrame(rows, columns=["strategy", "seed", "n_labels", "accuracy", "seconds"])
    return SimulationResult(
        curves=curves,
        seconds=time.perf_counter() - started,
        n_pool=len(X),
        n_test=len(X_test),
        settings={"strategies": list(strategies), "budgets": budgets, "seeds": list(seeds),
                  "batch_size": batch_size, "initial": initial, "smoothing": smoothing,
                  "audit_share": audit_share, "balance": balance},
    )


def _batch(name: str, probs: np.ndarray | None, X: np.ndarray, codes: np.ndarray,
           mask: np.ndarray, held: np.ndarray, k: int, audit: Any, balance: bool
           ) -> np.ndarray:
    """(k,) picks by Session.next_batch's own rule (:func:`~.batch.compose_batch`, the
    generator seeded by the state as there); audit items are marked in ``held``."""
    rng = batch_rng(mask, int((~mask).sum()), audit.n_asked)
    train = np.bincount(codes[mask & ~held], minlength=int(codes.max()) + 1)
    picks, is_audit, _ = compose_batch(
        name, probs, X, np.where(mask, codes, -1), train, mask, k, rng,
        audit=(lambda pool, n, r: audit.sample(pool, n, rng=r)) if audit.share else None,
        balance=balance)
    held[picks[is_audit]] = True
    return picks


def _fit(model: Any, X: np.ndarray, y: np.ndarray, mask: np.ndarray,
         order: list | None = None) -> Any | None:
    """Fit on the labeled items; None while fewer than 2 classes are labeled. ``order``:
    the classes as the Session knows them; the model gets those with a training label, in
    that order (as FitWorker._make_model: the column order changes the fit's rounding)."""
    labels = y[mask]
    present = set(labels.tolist())
    if len(present) < 2:
        return None
    if order is not None:
        model.set_params(classes=[c for c in order if c in present])
    return model.fit(X[mask], labels)
