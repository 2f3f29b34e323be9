"""One-shot and zero-shot label proposals: pure functions, arrays in, DataFrames out.

A *proposal* is a label and a confidence for every item of a pool (the unlabeled items),
from

* :func:`propose_prototypes`: :class:`~dfwidgets.learn.models.PrototypeClassifier` fitted
  on example embeddings (hard negatives push prototypes away), or
* :func:`propose_zero_shot`: :class:`~dfwidgets.learn.models.ZeroShotClassifier` from class
  prompts (CLIP models only: the caller passes the text embedder).

A proposal is ``DataFrame[index, label, confidence, kept]``, most confident first, with
``attrs = {"method", "source", "classes", "left_out", "left_out_reason"}``. ``kept`` is
False for items the open-set rule (:mod:`dfwidgets.learn.open_set`) leaves out: far from
every example of their class ("none of these"); commits never write them. :func:`summarize_proposal` and
:func:`proposal_samples` preview it; :func:`select_for_commit` picks the items a commit at
a threshold writes (only items that are *still* unlabeled). Writing labels, kept class
examples and the embedder are the Session's (``dfwidgets.session.examples``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import open_set as OS

__all__ = [
    "METHODS",
    "check_method",
    "check_threshold",
    "proposal_frame",
    "proposal_samples",
    "propose_prototypes",
    "propose_zero_shot",
    "select_for_commit",
    "summarize_proposal",
]

log = logging.getLogger(__name__)

#: softmax temperature of the prototypes on centred embeddings (their cosines spread ~10x
#: wider than uncentred ones; 0.1 is calibrated: items at confidence >= 0.9 are ~90% right
#: with 10 classes x 5 examples on Fashion-MNIST)
TEMPERATURE = 0.1
#: proposal method -> label source of the committed labels
METHODS: dict[str, str] = {"prototype": "prototype", "zero-shot": "zero-shot"}

TextEmbedder = Any  # an Embedder with ``embed_text(list[str]) -> (T, D)`` or such a callable


def check_method(method: Any) -> str:
    """``method`` if it is a proposal method, else a ValueError naming the methods."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}; got {method!r}.")
    return str(method)


def check_threshold(value: Any) -> float:
    """``value`` as a float in [0, 1], else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"min_confidence must be a number between 0 and 1; got {value!r}.")
    return float(value)


def proposal_frame(probs: np.ndarray, classes: Sequence[Any], pool_indices: np.ndarray, *,
                   method: str, kept: np.ndarray | None = None,
                   reason: str = "") -> pd.DataFrame:
    """Probabilities ``probs`` (P, K) over ``classes`` (K,) for items ``pool_indices`` (P,)
    -> DataFrame[index, label, confidence, kept], most confident first (ties: lower index
    first), ``attrs``: method, source, classes, left_out (items with ``kept`` (P,) False),
    left_out_reason (``reason``)."""
    check_method(method)
    pool = np.asarray(pool_indices, dtype=np.int64).reshape(-1)
    names = np.asarray([str(c) for c in classes], dtype=object)
    if len(pool):
        probs = np.asarray(probs)
        if probs.shape != (len(pool), len(names)):
            raise ValueError(f"probs must have shape ({len(pool)}, {len(names)}); "
                             f"got {probs.shape}.")
        label = names[probs.argmax(axis=1)]
        confidence = probs.max(axis=1).astype(np.float32)
    else:
        label, confidence = np.array([], dtype=object), np.zeros(0, np.float32)
    keep = np.ones(len(pool), bool) if kept is None else np.asarray(kept, bool).reshape(-1)
    if len(keep) != len(pool):
        raise ValueError(f"kept has {len(keep)} entries but the pool {len(pool)}.")
    frame = pd.DataFrame({"index": pool, "label": label, "confidence": confidence,
                          "kept": keep})
    frame = frame.sort_values(["confidence", "index"], ascending=[False, True],
                              kind="stable").reset_index(drop=True)
    left_out = int((~keep).sum())
    frame.attrs.update(method=method, source=METHODS[method], classes=list(names),
                       left_out=left_out, left_out_reason=reason if left_out else "")
    log.info("%s proposal: %d items, %d classes, %d left out", method, len(frame),
             len(names), left_out)
    return frame


def propose_prototypes(
    X_train: np.ndarray,
    y_train: Sequence[Any],
    X_pool: np.ndarray,
    pool_indices: np.ndarray,
    *,
    X_negative: np.ndarray | None = None,
    y_negative: Sequence[Any] | None = None,
    open_set: bool = True,
    k: int = OS.K_NEIGHBOUR,
    density_quantile: float = OS.DENSITY_QUANTILE,
) -> pd.DataFrame:
    """Nearest class mean of the examples ``X_train`` (M, D) with class names ``y_train``
    (M,), applied to the pool ``X_pool`` (P, D) whose item indices are ``pool_indices``
    (P,), in embeddings centred on the pool mean. Hard negatives ``X_negative`` (Q, D) /
    ``y_negative`` (Q,) (the class each item is *not*) push prototypes away.
    ``open_set``: leave out items far from the examples of their class
    (:func:`dfwidgets.learn.open_set.near_examples` with ``k``, ``density_quantile``).
    -> proposal DataFrame (see :func:`proposal_frame`)."""
    from .models import PrototypeClassifier

    y = np.asarray(y_train, dtype=object).reshape(-1)
    present = sorted({str(v) for v in y.tolist()})
    if len(present) < 2:
        raise ValueError(
            f"Prototypes need examples of at least 2 classes; got {present or 'none'}. "
            "Give one example per class (VisualSearch, session.label, or "
            "examples={'Sneaker': 12, 'Bag': 40})."
        )
    X_pool = np.asarray(X_pool, np.float32)
    mean = X_pool.mean(axis=0) if len(X_pool) else np.asarray(X_train, np.float32).mean(axis=0)
    # open set: centred embeddings, sharper temperature; closed set: the raw cosine model
    shift = mean if open_set else np.zeros_like(mean)
    Xt = OS.center(X_train, shift)
    model = PrototypeClassifier(temperature=TEMPERATURE) if open_set else PrototypeClassifier()
    if X_negative is not None and y_negative is not None and len(y_negative):
        model.fit(Xt, y, X_negative=OS.center(X_negative, shift),
                  y_negative=np.asarray(y_negative, dtype=object))
    else:
        model.fit(Xt, y)
    pool = np.asarray(pool_indices, dtype=np.int64).reshape(-1)
    if len(pool) != len(X_pool):
        raise ValueError(f"X_pool has {len(X_pool)} rows but pool_indices {len(pool)}.")
    Xp = OS.center(X_pool, shift) if len(pool) else X_pool
    probs = model.predict_proba(Xp) if len(pool) else np.zeros((0, len(model.classes_)))
    kept, reason = None, ""
    if open_set and len(pool):
        codes = {c: i for i, c in enumerate(model.classes_.tolist())}
        rule = OS.near_examples(X_train, np.asarray([codes[v] for v in y.tolist()]), X_pool,
                                probs.argmax(axis=1), k=k, density_quantile=density_quantile,
                                mean=mean)
        kept, reason = rule.kept, rule.reason
    return proposal_frame(probs, model.classes_, pool, method="prototype", kept=kept,
                          reason=reason)


def propose_zero_shot(
    X_pool: np.ndarray,
    pool_indices: np.ndarray,
    *,
    classes: Sequence[str],
    text_embedder: TextEmbedder | Callable[[list[str]], np.ndarray],
    prompts: Mapping[str, str | Sequence[str]] | None = None,
    templates: Sequence[str] | None = None,
    open_set: bool = True,
    z: float = 3.0,
) -> pd.DataFrame:
    """CLIP similarity of the pool ``X_pool`` (P, D) (item indices ``pool_indices`` (P,)) to
    the text of each class: ``prompts[class]`` (a prompt or a list) if given, else
    ``templates`` filled with the class name. ``text_embedder`` embeds text into the
    images' space (``embed_text(list[str]) -> (T, D)`` or such a callable). ``open_set``:
    leave out items whose similarity to their class's text does not stand out of the
    pool's (:func:`dfwidgets.learn.open_set.text_outliers` with ``z``).
    -> proposal DataFrame (see :func:`proposal_frame`)."""
    from .models import IMAGENET_TEMPLATES, ZeroShotClassifier

    classes = [str(c) for c in classes]
    if len(classes) < 2:
        raise ValueError(
            f"Zero-shot needs at least 2 classes to choose between; got {classes}. Add "
            "classes (session.add_class) or pass prompts={'Sneaker': 'a photo of a "
            "sneaker', 'Bag': 'a photo of a bag'}."
        )
    model = ZeroShotClassifier(classes, text_embedder=text_embedder, prompts=prompts,
                               templates=tuple(templates or IMAGENET_TEMPLATES)).fit()
    pool = np.asarray(pool_indices, dtype=np.int64).reshape(-1)
    if len(pool) != len(X_pool):
        raise ValueError(f"X_pool has {len(X_pool)} rows but pool_indices {len(pool)}.")
    probs = model.predict_proba(X_pool) if len(pool) else np.zeros((0, len(model.classes_)))
    kept, reason = None, ""
    if open_set and len(pool):
        sims = OS.center(X_pool, np.zeros(X_pool.shape[1])) @ model.class_embeddings_.T
        rule = OS.text_outliers(sims, probs.argmax(axis=1), z=z)
        kept, reason = rule.kept, rule.reason
    return proposal_frame(probs, model.classes_, pool, method="zero-shot", kept=kept,
                          reason=reason)


def summarize_proposal(proposal: pd.DataFrame, *, min_confidence: float = 0.9) -> pd.DataFrame:
    """Per class: DataFrame[label, proposed, above_threshold, left_out, median_confidence]
    (``above_threshold``: what a commit at ``min_confidence`` would write; ``left_out``:
    proposed items the open-set rule leaves out), largest first."""
    check_threshold(min_confidence)
    classes = proposal.attrs.get("classes") or sorted(proposal["label"].unique())
    g = proposal.groupby("label")["confidence"]
    kept = _kept(proposal)
    out = pd.DataFrame({"label": classes})
    out["proposed"] = out["label"].map(g.size()).fillna(0).astype(int)
    above = proposal[kept & (proposal["confidence"] >= min_confidence)].groupby("label").size()
    out["above_threshold"] = out["label"].map(above).fillna(0).astype(int)
    out["left_out"] = out["label"].map(proposal[~kept].groupby("label").size()).fillna(0) \
        .astype(int)
    out["median_confidence"] = out["label"].map(g.median()).astype(float)
    return out.sort_values(["above_threshold", "proposed"], ascending=False,
                           kind="stable").reset_index(drop=True)


def proposal_samples(
    proposal: pd.DataFrame,
    *,
    levels: Sequence[float] = (0.99, 0.9, 0.7, 0.5),
    per_class: int = 3,
) -> pd.DataFrame:
    """Items to look at before committing: for each class and confidence level, the
    ``per_class`` items whose confidence is closest to it (at or below it when possible),
    each item at most once (only items the open-set rule keeps):
    DataFrame[label, level, index, confidence]."""
    rows = []
    for name, grp in proposal[_kept(proposal)].groupby("label", sort=False):
        conf = grp["confidence"].to_numpy()
        idx = grp["index"].to_numpy()
        used: set[int] = set()
        for level in levels:
            order = np.argsort(np.abs(conf - level) + (conf > level) * 1e-3, kind="stable")
            picked = [i for i in order if int(idx[i]) not in used][:per_class]
            for i in picked:
                used.add(int(idx[i]))
                rows.append((name, float(level), int(idx[i]), float(conf[i])))
    return pd.DataFrame(rows, columns=["label", "level", "index", "confidence"])


def select_for_commit(
    proposal: pd.DataFrame,
    labels_now: np.ndarray,
    *,
    min_confidence: float = 0.9,
    labels: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str], str]:
    """What a commit writes: the proposed items the open-set rule kept with confidence >=
    ``min_confidence`` (only of classes ``labels`` if given) that are still unlabeled in ``labels_now`` ((N,) class
    codes, < 0 = unlabeled). -> (indices (M,) int64, their class names, label source)."""
    check_threshold(min_confidence)
    source = proposal.attrs.get("source")
    if source not in METHODS.values():
        raise ValueError("This DataFrame is not a proposal from propose(); its attrs lack the "
                         "source. Call session.propose(...) again.")
    pick = proposal[_kept(proposal) & (proposal["confidence"] >= min_confidence)]
    if labels is not None:
        unknown = set(labels) - set(proposal.attrs.get("classes", []))
        if unknown:
            raise ValueError(f"labels {sorted(unknown)} are not classes of this proposal "
                             f"({proposal.attrs.get('classes')}).")
        pick = pick[pick["label"].isin(list(labels))]
    idx = pick["index"].to_numpy(dtype=np.int64)
    still_free = np.asarray(labels_now)[idx] < 0
    skipped = int((~still_free).sum())
    if skipped:
        log.info("commit: %d proposed items were labeled since the proposal; kept", skipped)
    names = [str(n) for n in pick["label"].to_numpy(dtype=object)[still_free]]
    return idx[still_free], names, str(source)


def _kept(proposal: pd.DataFrame) -> pd.Series:
    """(P,) bool: the open-set rule keeps the item (all True for a frame without ``kept``)."""
    if "kept" in proposal.columns:
        return proposal["kept"].astype(bool)
    return pd.Series(True, index=proposal.index)
