"""What to ask next: ``next_batch`` mixes strategy picks with random audit items."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from .checks import check_indices, check_strategy

if TYPE_CHECKING:
    from .session import Session

__all__ = ["next_batch"]

log = logging.getLogger(__name__)

COLD_START = ("random", "coreset", "typiclust", "probcover", "auto")  # strategies that need no model
# One strategy computation at a time per process: two at once (a view's background refill
# and a script's call) oversubscribe OpenBLAS/OpenMP ("Detect OpenMP Loop and this
# application may hang").
_STRATEGY_LOCK = threading.RLock()


def next_batch(session: Session, k: int, *, strategy: str | None = None,
               exclude: Iterable[int] = (), within: Any = None) -> np.ndarray:
    """(<= k,) int64 unlabeled item indices to ask next (see :meth:`Session.next_batch`).

    ``within``: item indices (ints or an (N,) bool mask) to choose from, e.g. the
    selection. The strategy then sees the labeled items plus ``within`` only, and no
    audit items are drawn (they must be a uniform sample of all items to stay unbiased).
    """
    from ..learn import strategies

    s = session
    strategy = check_strategy(strategy or s.strategy)
    if int(k) < 1:
        raise ValueError(f"k must be at least 1, got {k!r}.")
    n = len(s.ids)
    labeled = s._labels.codes() >= 0
    blocked = labeled | s.issues.skip_mask()  # excluded items, second copies (issue 19)
    ex = np.asarray(list(exclude), dtype=np.int64)
    if ex.size:
        if ((ex < 0) | (ex >= n)).any():
            raise IndexError(f"exclude has indices outside 0..{n - 1}.")
        blocked[ex] = True
    keep = None  # items the strategy sees (None = all)
    if within is not None:
        inside = np.zeros(n, dtype=bool)
        inside[check_indices(within, n, allow_empty=True)] = True
        keep = np.flatnonzero(inside | labeled)
        blocked |= ~inside
    pool = np.flatnonzero(~blocked)
    if pool.size == 0:
        if within is not None:
            raise ValueError("No unlabeled items in the selection: "
                             + ("it is empty; select items first (e.g. a lasso on the map)."
                                if not inside.any() else "every selected item is labeled "
                                "or excluded. Select more items, or ask over all items."))
        raise ValueError(
            "No items left to ask: every item is labeled or excluded. Unlabel or add items."
        )
    k = min(int(k), pool.size)
    with s._fit.lock:
        probs, model = s._fit.probs_, s._fit.model_
    # seeded by the state, including which items are labeled: two projects at the same
    # label count get different (not the same correlated) random picks
    rng = np.random.default_rng([int(s.store.version()), len(pool),
                                 int(np.flatnonzero(labeled).sum() % 2**32)])
    if keep is None:
        audit_idx = s._evaluation.sample_audit(pool, k, rng)
    else:
        audit_idx = np.empty(0, dtype=np.int64)
    blocked[audit_idx] = True
    starved = _starved(s, blocked, k - audit_idx.size)
    blocked[starved] = True
    rest = k - audit_idx.size - starved.size
    chosen = np.empty(0, dtype=np.int64)
    if rest > 0:
        name = strategy
        if probs is None and name not in COLD_START:
            name = "typiclust"
        elif name == "bald":
            mc = getattr(model, "predict_proba_mc", None)
            try:
                if mc is None:
                    raise RuntimeError("bald needs a linear probe (MC samples)")
                probs = mc(s._fit.model_features())  # (S, N, K)
            except RuntimeError as exc:  # e.g. a probe restored from file: no MC samples
                log.info("%s; using entropy", exc)
                name = "entropy"
        emb = s.embeddings
        if keep is not None:  # the strategy sees the labeled items + the selection only
            probs = None if probs is None else probs[..., keep, :]
            emb, blocked = emb[keep], blocked[keep]
        with _STRATEGY_LOCK:
            chosen, uniform = strategies.select_with_random(name, probs, emb, blocked, rest, rng)
        if keep is not None:
            chosen = keep[chosen]
        else:  # uniform draws from the pool (random, hybrid's exploration): unbiased evidence
            s._evaluation.record_random(chosen[uniform])
    out = np.concatenate([chosen, starved, audit_idx])
    # audit items go at random positions so the user cannot tell them apart
    return out[rng.permutation(out.size)]


def _starved(s: Session, blocked: np.ndarray, room: int) -> np.ndarray:
    """Items for classes with < MIN_LABELS training labels (never starve a class): up to
    class_balance.SHARE of the batch, nearest neighbours of the class's labels and audit
    answers (see learn/class_balance.py; ``simulate`` does the same)."""
    from ..learn.class_balance import SHARE, starved_picks

    if room < 1:
        return np.empty(0, dtype=np.int64)
    codes = s._labels.codes()
    _, y, weight = s._fit.training_set(codes)
    counts = np.bincount(y[weight > 0], minlength=len(s._labels.classes()))
    n = max(1, int(SHARE * room))
    return starved_picks(s.embeddings, codes, counts, blocked, min(n, room))
