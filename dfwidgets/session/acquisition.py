"""What to ask next: ``next_batch`` mixes strategy picks with random audit items."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from .checks import check_strategy

if TYPE_CHECKING:
    from .session import Session

__all__ = ["next_batch"]

log = logging.getLogger(__name__)

COLD_START = ("random", "coreset", "typiclust")  # strategies that need no model


def next_batch(session: Session, k: int, *, strategy: str | None = None,
               exclude: Iterable[int] = ()) -> np.ndarray:
    """(<= k,) int64 unlabeled item indices to ask next (see :meth:`Session.next_batch`)."""
    from ..learn import strategies

    s = session
    strategy = check_strategy(strategy or s.strategy)
    if int(k) < 1:
        raise ValueError(f"k must be at least 1, got {k!r}.")
    n = len(s.ids)
    blocked = s._labels.codes() >= 0
    ex = np.asarray(list(exclude), dtype=np.int64)
    if ex.size:
        if ((ex < 0) | (ex >= n)).any():
            raise IndexError(f"exclude has indices outside 0..{n - 1}.")
        blocked[ex] = True
    pool = np.flatnonzero(~blocked)
    if pool.size == 0:
        raise ValueError(
            "No items left to ask: every item is labeled or excluded. Unlabel or add items."
        )
    k = min(int(k), pool.size)
    with s._fit.lock:
        probs, model = s._fit.probs_, s._fit.model_
    rng = np.random.default_rng([int(s.store.version()), len(pool)])
    audit_idx = s._evaluation.sample_audit(pool, k, rng)
    blocked[audit_idx] = True
    rest = k - audit_idx.size
    chosen = np.empty(0, dtype=np.int64)
    if rest > 0:
        name = strategy
        if probs is None and name not in COLD_START:
            name = "typiclust"
        elif name == "bald":
            mc = getattr(model, "predict_proba_mc", None)
            if mc is None:
                log.info("bald needs a linear probe (MC samples); using entropy")
                name = "entropy"
            else:
                probs = mc(s._fit.model_features())  # (S, N, K)
        chosen = np.asarray(strategies.select(name, probs, s.embeddings, blocked, rest, rng),
                            dtype=np.int64)
    out = np.concatenate([chosen, audit_idx])
    # audit items go at random positions so the user cannot tell them apart
    return out[rng.permutation(out.size)]
