"""One batch of items to ask: the single rule behind ``Session.next_batch`` and ``simulate``.

A batch is composed in this order, all from one random generator (:func:`batch_rng`):
random audit items (a uniform sample, labeled but never trained on), then up to
``class_balance.SHARE`` of the rest for starved classes (:mod:`.class_balance`), then the
strategy's picks; the batch is shuffled so audit items cannot be told apart. The random
generator is seeded by the labeling state alone, so a simulation that reaches the same
state as a Session asks the same items. Pure function over arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .class_balance import SHARE, starved_picks
from .strategies import select_with_random

__all__ = ["COLD_START", "batch_rng", "compose_batch"]

COLD_START = ("random", "coreset", "typiclust", "probcover", "auto")  # need no model

AuditFn = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def batch_rng(labeled: np.ndarray, n_pool: int, n_asked: int) -> np.random.Generator:
    """The generator of one batch, seeded by the state: ``labeled`` (N,) bool items with a
    label (audit answers included), ``n_pool`` items to choose from, ``n_asked`` items
    served so far (the audit sampler's count). Two projects at the same label count get
    different (not correlated) draws; a replay of the same state gets the same draws."""
    idx = np.flatnonzero(labeled)
    return np.random.default_rng([len(idx), int(n_pool), int(idx.sum() % 2**32),
                                  int(n_asked)])


def compose_batch(name: str, probs: np.ndarray | None, embeddings: np.ndarray,
                  known_codes: np.ndarray, train_counts: np.ndarray, blocked: np.ndarray,
                  k: int, rng: np.random.Generator, *, audit: AuditFn | None = None,
                  keep: np.ndarray | None = None, balance: bool = True
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(picks (k',) int64, audit (k',) bool, uniform (k',) bool), k' <= k, shuffled.

    ``probs`` (N, K) or (S, N, K) model probabilities (None before a model: strategies
    that need one fall back to typiclust); ``embeddings`` (N, D); ``known_codes`` (N,)
    class code of every label incl. audit answers (-1 = none); ``train_counts`` (K,)
    training labels per class; ``blocked`` (N,) bool items that must not be asked.
    ``audit(pool, k, rng)``: the audit sampler (None = no audit items). ``keep``
    (M,) item indices the strategy sees (e.g. labeled + a selection; None = all).
    ``audit`` marks audit items, ``uniform`` strategy picks drawn uniformly from the pool
    (random's, hybrid's exploration): both are unbiased evidence of accuracy.
    """
    blocked = np.asarray(blocked, dtype=bool).copy()
    empty = np.empty(0, dtype=np.int64)
    aud = empty if audit is None else np.asarray(
        audit(np.flatnonzero(~blocked), k, rng), dtype=np.int64)[:k]
    blocked[aud] = True
    room = k - aud.size
    starved = empty
    if balance and room > 0:
        starved = starved_picks(embeddings, known_codes, train_counts, blocked,
                                min(max(1, int(SHARE * room)), room))
        blocked[starved] = True
        room -= starved.size
    chosen, uniform = empty, np.zeros(0, dtype=bool)
    if room > 0:
        if probs is None and name not in COLD_START:
            name = "typiclust"
        emb = embeddings
        if keep is not None:  # the strategy sees the labeled items + the selection only
            probs = None if probs is None else probs[..., keep, :]
            emb, blocked = embeddings[keep], blocked[keep]
        chosen, uniform = select_with_random(name, probs, emb, blocked, room, rng)
        if keep is not None:
            chosen = np.asarray(keep)[chosen]
    out = np.concatenate([chosen, starved, aud])
    is_audit = np.concatenate([np.zeros(chosen.size + starved.size, bool),
                               np.ones(aud.size, bool)])
    is_uniform = np.concatenate([uniform, np.zeros(starved.size + aud.size, bool)])
    order = rng.permutation(out.size)  # audit items at random positions
    return out[order], is_audit[order], is_uniform[order]
