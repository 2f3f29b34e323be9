"""The Labeler's queue: which items to show next, fed by a Session (headless, no widget imports).

The queue asks ``Session.next_batch`` for items (a cold-start strategy such as TypiClust
while there is no model, then the chosen strategy; the Session mixes in its audit items),
commits every answer to the Session's store before it forgets the item, remembers answers
and skips for undo, and reorders itself when a new model arrives without ever bringing
back an item that was answered. :meth:`LabelQueue.restrict` limits it to some items (the
Labeler's "Only the selection": ``next_batch(..., within=session.selection)``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["LabelQueue"]

log = logging.getLogger(__name__)


class LabelQueue:
    """Ordered item indices to show next, with answer / skip / undo / reorder.

    Parameters
    ----------
    session:
        A :class:`dfwidgets.session.Session`; only its public API is used
        (``check_strategy``, ``check_indices``, ``next_batch``, ``label``, ``undo``,
        ``history``, ``label_array``, ``probs_``, ``ids``).
    strategy:
        Acquisition strategy name used once the Session has a model (``s.probs_`` set).
    cold_start:
        Strategy used while there is no model yet (diversity: ``"typiclust"``).
    batch:
        Extra items asked from the Session per refill: it is asked once per ``batch``
        answers, and its new model reorders the queue in between.
    ahead:
        Keep at least this many items queued (current item + prefetched ones).
    hold:
        On reorder, the first ``hold`` items stay in front (the browser may already be
        showing them).
    """

    def __init__(
        self,
        session: Any,
        *,
        strategy: str = "auto",
        cold_start: str = "typiclust",
        batch: int = 8,
        ahead: int = 9,
        hold: int = 3,
    ) -> None:
        for name, value in (("batch", batch), ("ahead", ahead)):
            if int(value) < 1:
                raise ValueError(f"{name} must be at least 1, got {value!r}.")
        session.check_strategy(strategy)
        session.check_strategy(cold_start)
        self.session = session
        self.strategy = strategy
        self.cold_start = cold_start
        self.batch = int(batch)
        self.ahead = int(ahead)
        self.hold = max(1, int(hold))
        self._items: list[int] = []
        self._skipped: set[int] = set()
        self._answered: set[int] = set()
        self._actions: list[tuple[str, tuple[int, ...], str | None]] = []
        self._lock = threading.RLock()
        self._exhausted = False
        self._within: np.ndarray | None = None  # (N,) bool: the items it may ask for

    # ------------------------------------------------------------------ views
    @property
    def items(self) -> list[int]:
        """Queued item indices, the one to show first at position 0."""
        with self._lock:
            return list(self._items)

    @property
    def current(self) -> int | None:
        """Index of the item to show now, or None when nothing is left to label."""
        with self._lock:
            return self._items[0] if self._items else None

    @property
    def answered(self) -> frozenset[int]:
        """Indices answered through this queue and not undone (never queued again)."""
        with self._lock:
            return frozenset(self._answered)

    @property
    def can_undo(self) -> bool:
        """True when there is an answer or skip to take back."""
        return bool(self._actions)

    @property
    def within(self) -> np.ndarray | None:
        """(M,) int64 sorted item indices the queue is restricted to, or None (all items)."""
        with self._lock:
            return None if self._within is None else np.flatnonzero(self._within)

    def restrict(self, within: Any) -> list[int]:
        """Ask only for items in ``within`` (indices or an (N,) bool mask; None: all items
        again). Queued items outside it leave the queue; returns them. Refill with
        :meth:`fill`."""
        mask = None
        if within is not None:
            arr = np.asarray(within)
            mask = np.zeros(len(self.session.ids), dtype=bool)
            if arr.size and not (arr.dtype == bool and not arr.any()):
                mask[self.session.check_indices(arr, unique=False)] = True
        with self._lock:
            self._within = mask
            if mask is None:
                return []
            gone = [i for i in self._items if not mask[i]]
            self._items = [i for i in self._items if mask[i]]
            return gone

    def remaining(self) -> int:
        """Unlabeled items it could still ask for (inside the restriction, if any), not
        counting queued, answered and skipped ones."""
        with self._lock:
            exclude, _ = self._exclusions(self._items)
            if self._within is not None:
                exclude = exclude | ~self._within
            return int((~exclude).sum())

    def strategy_in_use(self) -> str:
        """The cold-start strategy until the Session has predictions, then ``strategy``."""
        return self.cold_start if getattr(self.session, "probs_", None) is None else self.strategy

    # ---------------------------------------------------------------- filling
    def fill(self) -> list[int]:
        """When fewer than ``ahead`` items are queued, fetch ``batch`` more than missing
        (so the Session is asked once per ``batch`` answers); return the indices added.

        ``next_batch`` runs without the lock, so answers can be committed meanwhile (the
        widget fills in a background thread); the result is filtered against them.
        """
        with self._lock:
            need = self.ahead - len(self._items)
            if need <= 0:
                return []
            exclusions = self._exclusions(self._items)
        new = self._fetch(need + self.batch, exclusions)
        with self._lock:
            if not new and self._skipped and not self._items:
                # Everything else is labeled: offer the skipped items again.
                self._skipped.clear()
                new = self._fetch(need + self.batch, self._exclusions(self._items))
            labeled = self._labeled_mask()
            have = set(self._items) | self._answered | self._skipped
            new = [i for i in new if i not in have and not labeled[i] and self._inside(i)]
            self._items.extend(new)
            return new

    def reorder(self) -> list[int]:
        """Re-rank after a model update: keep the first ``hold`` items, refetch the rest.

        The expensive ``next_batch`` call runs without the lock, so answers keep flowing;
        the first ``hold`` items still queued when it returns stay in front (the item on the
        page's stage never changes under the user), the rest is the new ranking, filtered
        against answers given meanwhile. Returns the new order.
        """
        with self._lock:
            front = list(self._items[: self.hold])
            exclude = self._exclusions(front)
            k = max(self.batch, self.ahead - len(front))
        new = self._fetch(k, exclude)
        with self._lock:
            labeled = self._labeled_mask()
            # the front as it is now: answers given during the fetch took items off it, and
            # the page already shows the next ones: those stay where they are
            kept = list(self._items[: self.hold])
            seen = set(kept) | self._answered | self._skipped
            fresh = [i for i in new if i not in seen and not labeled[i] and self._inside(i)]
            self._items = kept + fresh
            if len(self._items) < self.ahead:
                self.fill()
            return list(self._items)

    def drop_labeled(self) -> list[int]:
        """Remove queued items that got a label elsewhere (another widget); return them."""
        with self._lock:
            labeled = self._labeled_mask()
            gone = [i for i in self._items if labeled[i]]
            if gone:
                self._items = [i for i in self._items if not labeled[i]]
            return gone

    # ---------------------------------------------------------------- answers
    def answer(self, indices: Sequence[int], label: str, *, source: str = "click") -> list[int]:
        """Commit ``label`` for ``indices`` to the store, then take them off the queue.

        The store write happens first: if it raises, the queue is unchanged and the error
        propagates (the caller shows it and the item stays where it was).
        """
        idx = self._as_indices(indices)
        with self._lock:
            self.session.label(np.asarray(idx, dtype=np.int64), label, source=source)
            self._answered.update(idx)
            self._skipped.difference_update(idx)
            self._remove(idx)
            self._actions.append(("label", tuple(idx), source))
            return idx

    def skip(self, indices: Sequence[int]) -> list[int]:
        """Take ``indices`` off the queue without a label (they come back only at the end)."""
        idx = self._as_indices(indices)
        with self._lock:
            self._skipped.update(idx)
            self._remove(idx)
            self._actions.append(("skip", tuple(idx), None))
            return idx

    def undo(self) -> list[int]:
        """Take back the last answer or skip made through this queue.

        An answer is reverted in the store (``Session.undo(source=...)``) after checking
        that the store's last event of that source is this answer; the items go back to
        the front of the queue. Returns the indices brought back ([] if nothing to undo).
        """
        with self._lock:
            if not self._actions:
                return []
            kind, idx, source = self._actions[-1]
            if kind == "label":
                self._check_last_event(idx, source)
                self.session.undo(source=source)
                self._answered.difference_update(idx)
            else:
                self._skipped.difference_update(idx)
            self._actions.pop()
            back = list(idx)
            self._items = back + [i for i in self._items if i not in set(back)]
            return back

    # ---------------------------------------------------------------- helpers
    def _as_indices(self, indices: Sequence[int] | int) -> list[int]:
        """Distinct item indices in the given order (Session.check_indices errors)."""
        idx = self.session.check_indices(indices, unique=False)
        return list(dict.fromkeys(int(i) for i in idx))

    def _remove(self, idx: Iterable[int]) -> None:
        drop = set(idx)
        self._items = [i for i in self._items if i not in drop]

    def _inside(self, i: int) -> bool:
        return self._within is None or bool(self._within[i])

    def _labeled_mask(self) -> np.ndarray:
        return np.asarray(self.session.label_array()) >= 0

    def _exclusions(self, extra: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """(N,) bool mask of items not to fetch, and the unlabeled ones among them."""
        mask = self._labeled_mask().copy()
        more = np.asarray(sorted(self._answered | self._skipped | set(extra)), dtype=np.int64)
        more = more[~mask[more]] if more.size else more
        mask[more] = True
        return mask, more

    def _fetch(self, k: int, exclusions: tuple[np.ndarray, np.ndarray]) -> list[int]:
        """Ask the Session for up to ``k`` items outside ``exclusions`` (see _exclusions)."""
        exclude, extra = exclusions
        within = self._within
        if within is not None:
            exclude = exclude | ~within
        remaining = int((~exclude).sum())
        if remaining == 0:
            return []
        k = min(k, remaining)
        # the Session leaves labeled items out itself: pass only our own exclusions
        options = {} if within is None else {"within": np.flatnonzero(within)}
        got = self.session.next_batch(k, strategy=self.strategy_in_use(), exclude=extra,
                                      **options)
        out: list[int] = []
        seen: set[int] = set()
        for i in np.asarray(got, dtype=np.int64).tolist():
            if not exclude[i] and i not in seen:
                out.append(i)
                seen.add(i)
        return out

    def _check_last_event(self, idx: tuple[int, ...], source: str | None) -> None:
        """Refuse to undo someone else's label: the store's last ``source`` event must be ours."""
        hist = self.session.history()
        if hist is None or len(hist) == 0:
            raise RuntimeError("Nothing to undo: the label store has no history.")
        live = hist[(hist["source"] == source) & (~hist["undone"].astype(bool))]
        if len(live) == 0:
            raise RuntimeError(f"Nothing to undo: no {source!r} label is left in the store.")
        key = "group_id" if "group_id" in live.columns else "event_id"
        last = live[live[key] == live[key].max()]
        ours = {str(self.session.ids[i]) for i in idx}
        if set(map(str, last["item_id"])) != ours:
            raise RuntimeError(
                f"The last {source!r} label in the store was made elsewhere (another widget or "
                "process), so undo here would revert the wrong item. Undo it where it was made, "
                "or call session.undo()."
            )
