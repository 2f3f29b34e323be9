"""What to ask next: ``next_batch`` (the batch rule itself is learn/batch.py, shared with
``simulate``: audit items, starved-class picks, the strategy's picks)."""

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
    from ..learn.batch import batch_rng, compose_batch

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
    name = strategy
    if name == "bald" and probs is not None:
        mc = getattr(model, "predict_proba_mc", None)
        try:
            if mc is None:
                raise RuntimeError("bald needs a linear probe (MC samples)")
            probs = mc(s._fit.model_features())  # (S, N, K)
        except RuntimeError as exc:  # e.g. a probe restored from file: no MC samples
            log.info("%s; using entropy", exc)
            name = "entropy"
    codes = s._labels.codes()
    _, y, weight = s._fit.training_set(codes)
    counts = np.bincount(y[weight > 0], minlength=len(s._labels.classes()))
    # one rule, one random generator seeded by the state: simulate() asks the same items
    rng = batch_rng(labeled, pool.size, s._evaluation.audit_sampler().n_asked)
    with _STRATEGY_LOCK:
        out, _, uniform = compose_batch(
            name, probs, s.embeddings, codes, counts, blocked, k, rng,
            audit=s._evaluation.sample_audit if keep is None else None, keep=keep)
    if keep is None:  # uniform draws from the pool (random, hybrid's exploration)
        s._evaluation.record_random(out[uniform])
    return out
