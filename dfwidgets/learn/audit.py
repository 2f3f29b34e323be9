"""The random audit share of what the user is asked (:class:`AuditSampler`) and the
Wilson interval of its answers: one rule for ``Session.next_batch`` and ``simulate``.
Re-exported by :mod:`.evaluate`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["AuditSampler", "wilson_interval"]


def wilson_interval(correct: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``correct / n``; (0, 1) when ``n == 0``.

    Uses ``scipy.stats.binomtest(...).proportion_ci(method="wilson")``.
    """
    from scipy.stats import binomtest

    correct, n = int(correct), int(n)
    if n < 0 or not 0 <= correct <= max(n, 0):
        raise ValueError(f"need 0 <= correct <= n; got correct={correct}, n={n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    if n == 0:
        return 0.0, 1.0
    ci = binomtest(correct, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


class AuditSampler:
    """Chooses the random audit share of what the user is asked, and remembers it.

    About ``share`` of all items served are drawn uniformly at random from the unlabeled
    pool, never by uncertainty; their answers are used only to estimate accuracy (the
    Session never trains on them). The count is kept exact over time: after ``m`` items
    served, ``round(share * m)`` were audit items, so one-at-a-time queues get them too.

    State is JSON-able: :meth:`to_json` / :meth:`from_json` (for the Session meta).
    """

    def __init__(self, *, share: float = 0.1, random_state: int = 0) -> None:
        if not 0 <= share < 1:
            raise ValueError(f"share must be in [0, 1); got {share}")
        self.share = float(share)
        self.random_state = int(random_state)
        self._items: list[int] = []
        self._asked = 0
        self._calls = 0

    @property
    def items(self) -> np.ndarray:
        """(M,) int64 indices served as audit items, in serving order."""
        return np.asarray(self._items, dtype=np.int64)

    @property
    def n_asked(self) -> int:
        """Items served so far (audit and strategy picks)."""
        return self._asked

    def restore(self, items: Iterable[int], *, asked: int | None = None) -> AuditSampler:
        """Reload served audit ``items`` (indices); ``asked`` defaults to ``len(items)/share``."""
        self._items = [int(i) for i in dict.fromkeys(int(i) for i in items)]
        if asked is None:
            asked = round(len(self._items) / self.share) if self.share else 0
        self._asked = max(int(asked), len(self._items))
        return self

    def n_due(self, k: int) -> int:
        """How many of the next ``k`` served items should be audit items."""
        target = int(np.floor(self.share * (self._asked + k) + 0.5))
        return int(min(max(target - len(self._items), 0), k))

    def sample(self, pool: Any, k: int, *, rng: np.random.Generator | None = None) -> np.ndarray:
        """Audit items for a batch of ``k`` served from ``pool`` (unlabeled indices).

        Returns (m,) int64, ``m = n_due(k)`` (fewer if the pool runs out), drawn uniformly
        from ``pool`` minus earlier audit items, and records them. The caller serves
        ``k - m`` strategy picks beside them.
        """
        pool = np.asarray(pool, dtype=np.int64)
        if pool.ndim != 1:
            raise ValueError(f"pool must be a 1-D array of item indices; got shape {pool.shape}")
        if k < 0:
            raise ValueError(f"k must be >= 0; got {k}")
        if rng is None:
            rng = np.random.default_rng([self.random_state, self._calls])
        self._calls += 1
        m = self.n_due(k)
        fresh = pool[~np.isin(pool, self._items)] if self._items else pool
        m = min(m, len(fresh))
        picks = rng.choice(fresh, size=m, replace=False) if m else np.empty(0, np.int64)
        self._items.extend(int(i) for i in picks)
        self._asked += int(k)
        return np.asarray(picks, dtype=np.int64)

    def is_audit(self, indices: Any) -> np.ndarray:
        """Boolean mask: which of ``indices`` are audit items."""
        return np.isin(np.asarray(indices, dtype=np.int64), self._items)

    def estimate(self, predictions: Any, labels: Any, *, confidence: float = 0.95) -> dict:
        """Accuracy on answered audit items: dict(estimate, low, high, n).

        ``predictions`` and ``labels`` are (N,) arrays over all items (labels: -1 or None
        where not labeled). ``estimate`` is None when no audit item is answered yet.
        """
        pred = np.asarray(predictions)
        lab = np.asarray(labels)
        if pred.shape != lab.shape or pred.ndim != 1:
            raise ValueError(
                f"predictions and labels must be (N,) arrays of the same length; got "
                f"{pred.shape} and {lab.shape}"
            )
        items = self.items
        if len(items) and items.max() >= len(lab):
            raise ValueError(f"audit item {int(items.max())} is outside labels (N={len(lab)})")
        given = lab[items]
        if given.dtype == object:
            answered = np.array([v is not None for v in given], dtype=bool)
        else:
            answered = given >= 0 if given.dtype.kind in "iu" else np.ones(len(given), bool)
        idx = items[answered]
        n = len(idx)
        if n == 0:
            return {"estimate": None, "low": None, "high": None, "n": 0}
        correct = int((pred[idx] == lab[idx]).sum())
        low, high = wilson_interval(correct, n, confidence=confidence)
        return {"estimate": correct / n, "low": low, "high": high, "n": n}

    def to_json(self) -> dict:
        """JSON-able state."""
        return {"share": self.share, "random_state": self.random_state,
                "items": list(self._items), "asked": self._asked, "calls": self._calls}

    @classmethod
    def from_json(cls, state: dict) -> AuditSampler:
        """Rebuild from :meth:`to_json` output."""
        try:
            out = cls(share=state["share"], random_state=state["random_state"])
            out.restore(state["items"], asked=state["asked"])
            out._calls = int(state.get("calls", 0))
        except KeyError as exc:
            raise ValueError(f"audit state is missing the key {exc}; got {sorted(state)}") from None
        return out

    def __repr__(self) -> str:
        return (f"AuditSampler(share={self.share}, random_state={self.random_state}, "
                f"items={len(self._items)}, asked={self._asked})")
