"""Rules of a Session (``session.rules``): weak supervision as votes on every item.

::

    r = session.rules
    r.add_region(session.selection, "Sneaker")      # a lasso: "mostly sneakers here"
    r.add_examples("Bag", threshold=0.8)            # like a labeled example of Bag
    r.add_prompt("a photo of a handbag", "Bag")     # CLIP models only
    r.add_neighbours(k=10)                          # hand labels spread over the whitened kNN graph
    r.add_function(lambda item: "boot" in item.path, "Ankle boot", name="filename says boot")
    r.summary(); r.disable("filename says boot"); r.remove(...); r.undo()
    probs, abstain = session.weak_labels()          # (N, K) + (N,) from the label model

Rules are kept in the store's metadata (key ``"rules"``, JSON, with an undo stack), so a
reopened Session has them. A function rule is kept by its name and source text for the
reader only: code is never run from the project file; after reopening, call
``add_function`` again with the same name to re-attach it (until then it abstains and
``summary()`` says so). Audit items are never weak-labeled, so the estimate stays honest.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import threading
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..learn import weak_supervision as ws
from . import rules_votes as rv

if TYPE_CHECKING:
    from .session import Session

__all__ = ["RULES_META", "Rules", "weak_labels"]

log = logging.getLogger(__name__)

RULES_META = "rules"
KINDS = ("region", "examples", "prompt", "neighbours", "function")
MAX_UNDO = 50
#: weak labels are trained on when their top probability is at least this
MIN_CONFIDENCE = 0.8
#: weak labels weigh together at most this x the hand labels (weak_supervision.py, seeds 3-5,
#: 30 / 100 labels, whitened graph: 10 beat 3 by 0.4-0.9 points on 6 of 6; 30 ~ 10; raw: 3)
WEAK_SHARE = 10.0
#: weak labels only where the enabled neighbours rule votes (AGREE_NEIGHBOURS); where it
#: votes another class than the label model: its class (NEIGHBOURS_DECIDE; spreading was
#: right 2-18x as often as the label model there, raw graph, Fashion-MNIST; +0.4) or none
AGREE_NEIGHBOURS, NEIGHBOURS_DECIDE = True, True
#: weak labels weigh alike, or by the label model's top probability (worse on Fashion-MNIST)
WEIGHT_BY_PROBABILITY = False
#: per-class cut: the most confident share of each class's weak labels is trained on
CLASS_SHARE: float | None = 1.0  # (None: MIN_CONFIDENCE); 1.0 beat 0.25/0.5/0.75


class Rules:
    """The rules of ``session`` (kept in the store), their votes and the weak labels."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self._lock = threading.RLock()
        self._functions: dict[str, Any] = {}
        self._runs: dict[str, rv.FunctionRun] = {}
        self._cache: tuple[Any, Any] | None = None  # (key, (L, names))
        self._weak_cache: tuple[Any, Any] | None = None
        self.n_weak_trained = 0  # weak items in the last training set (curve field "weak")
        missing = [r["name"] for r in self.all() if r["kind"] == "function"]
        if missing:
            warnings.warn(
                f"{len(missing)} function rule(s) need re-adding ({', '.join(map(repr, missing))}):"
                " code is never run from the project file. Call session.rules.add_function(fn,"
                " label, name=...) with the same name to use them again; until then they "
                "abstain.", UserWarning, stacklevel=3)

    # ------------------------------------------------------------------ storage
    def _state(self) -> dict[str, Any]:
        return dict(self._s.store.get_meta(RULES_META) or {})

    def all(self) -> list[dict[str, Any]]:
        """The rules (JSON dicts: name, kind, label, enabled, params), oldest first."""
        return [dict(r) for r in self._state().get("rules", [])]

    names = property(lambda self: [r["name"] for r in self.all()], doc="Rule names.")

    def _write(self, rules: list[dict[str, Any]], *, undoable: bool = True,
               **extra: Any) -> None:
        with self._lock:
            state = self._state()
            if undoable:
                state["undo"] = (state.get("undo", []) + [state.get("rules", [])])[-MAX_UNDO:]
            state["rules"] = rules
            state.update(extra)
            self._s.store.set_meta(RULES_META, state)
            self._cache = self._weak_cache = None
        self._s._emit("rules_changed", self.names)

    def _add(self, kind: str, label: str | None, params: dict[str, Any],
             name: str | None, default: str, *, before: Any = None) -> str:
        if label is not None:
            label = self._check_class(label)
        rules = self.all()
        taken = {r["name"] for r in rules}
        if name is not None:
            name = str(name).strip()
            if not name:
                raise ValueError("name must be a non-empty string.")
            if name in taken:
                raise ValueError(f"There is already a rule {name!r}; pick another name or "
                                 f"remove it first (session.rules.remove({name!r})).")
        else:
            name, k = default, 2
            while name in taken:
                name, k = f"{default} ({k})", k + 1
        rules.append({"name": name, "kind": kind, "label": label, "enabled": True,
                      "params": params})
        if before is not None:
            before(name)
        self._write(rules)
        return name

    def _check_class(self, label: Any) -> str:
        classes = self._s.classes
        if not isinstance(label, str) or label not in classes:
            raise ValueError(f"Unknown class {label!r}; classes are {', '.join(classes) or 'none yet'}."
                             f" Add it first with session.add_class({label!r}).")
        return label

    # ------------------------------------------------------------------ adding rules
    def add_region(self, indices: Any, label: str, *, name: str | None = None) -> str:
        """Items ``indices`` (e.g. ``session.selection``) vote ``label``, unless the hand
        labels inside disagree (see rules_votes.REGION_AGREE: then it abstains and ``summary()`` says
        why). Returns the name."""
        empty = indices is None or (not isinstance(indices, np.ndarray) or indices.dtype != bool) \
            and len(np.atleast_1d(np.asarray(indices))) == 0
        idx = np.empty(0, np.int64) if empty else self._s.check_indices(indices)
        if len(idx) == 0:
            raise ValueError("The selection is empty: draw a lasso on the map (or pass "
                             "item indices) before adding a region rule.")
        ids = [str(i) for i in self._s.ids[idx]]
        return self._add("region", label, {"ids": ids}, name,
                         f"region: {label} ({len(ids):,} items)")

    def add_examples(self, label: str, *, threshold: float = 0.8, name: str | None = None) -> str:
        """Items whose most similar example (hand labels and kept class examples) is of
        ``label`` and at least ``threshold`` similar (cosine after removing the mean
        embedding: 0 unrelated, 1 the same) vote ``label``."""
        if not -1.0 <= float(threshold) <= 1.0:
            raise ValueError(f"threshold must be a similarity in [-1, 1], e.g. 0.8; got {threshold}.")
        self._check_class(label)
        return self._add("examples", label, {"threshold": float(threshold)}, name,
                         f"like examples of {label} (>= {threshold:g})")

    def add_prompt(self, text: str, label: str, *, top: float = 0.05,
                   name: str | None = None) -> str:
        """The ``top`` share of items most similar to the text prompt vote ``label``
        (models that read text, e.g. CLIP; a clear ValueError otherwise)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text must be a prompt, e.g. 'a photo of a handbag'.")
        if not 0.0 < float(top) < 1.0:
            raise ValueError(f"top must be a share in (0, 1), e.g. 0.05; got {top}.")
        self._check_class(label)
        ok, why = self._s.supports_text()
        if not ok:
            raise ValueError(f"Prompt rules need a model that reads text: {why}")
        vec = np.asarray(self._s.embed_text([text.strip()])[0], np.float32)
        return self._add("prompt", label, {"text": text.strip(), "top": float(top),
                                           "vector": vec.round(6).tolist()},
                         name, f"prompt: {text.strip()!r} -> {label}")

    def add_neighbours(self, *, k: int = 10, name: str | None = None) -> str:
        """The hand labels spread over the ``k``-nearest-neighbour graph (label spreading,
        Zhou et al. 2004): every item they reach votes its most likely class."""
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, e.g. 10; got {k!r}.")
        return self._add("neighbours", None, {"k": int(k)}, name, f"{k} nearest neighbours")

    def add_function(self, fn: Any, label: str | None = None, *, name: str | None = None) -> str:
        """``fn(item)`` votes per item (item: index, id, path, label, image): True ->
        ``label``, a class name -> that class, False/None -> abstain. Items it fails on are
        skipped and reported (``errors(name)``). The same ``name`` as a kept rule
        re-attaches it (after reopening the project)."""
        if not callable(fn):
            raise TypeError(f"fn must be a function of one item; got {type(fn).__name__}.")
        name = str(name or getattr(fn, "__name__", "") or "function").strip()
        if name == "<lambda>":
            name = "function"
        kept = {r["name"]: r for r in self.all()}
        if name in kept and kept[name]["kind"] == "function":
            if kept[name].get("label") != label:
                raise ValueError(f"Rule {name!r} votes {kept[name].get('label')!r}; remove "
                                 "it first to change its class.")
            self._attach(name, fn, label)
            self._write(self.all(), undoable=False)
            return name
        if label is not None:
            self._check_class(label)
        try:
            source = inspect.getsource(fn).strip()
        except (OSError, TypeError):
            source = None
        run = rv.run_function(self._s, fn, label)
        return self._add("function", label, {"source": source}, name, "function",
                         before=lambda final: self._attach(final, fn, label, run))

    def _attach(self, name: str, fn: Any, label: str | None,
                run: rv.FunctionRun | None = None) -> None:
        run = rv.run_function(self._s, fn, label) if run is None else run
        with self._lock:
            self._functions[name] = fn
            self._runs[name] = run
            self._cache = self._weak_cache = None

    # ------------------------------------------------------------------ changing rules
    def _find(self, rules: list[dict[str, Any]], name: str) -> dict[str, Any]:
        for r in rules:
            if r["name"] == name:
                return r
        raise KeyError(f"No rule {name!r}; rules are {', '.join(map(repr, self.names)) or 'none'}.")

    def enable(self, name: str, on: bool = True) -> None:
        """Switch rule ``name`` on (``on=False``: off); undoable."""
        rules = self.all()
        self._find(rules, name)["enabled"] = bool(on)
        self._write(rules)

    def disable(self, name: str) -> None:
        """Switch rule ``name`` off (it stays kept); undoable."""
        self.enable(name, False)

    def remove(self, name: str) -> None:
        """Remove rule ``name``; undoable."""
        rules = self.all()
        self._find(rules, name)
        self._write([r for r in rules if r["name"] != name])

    def undo(self) -> bool:
        """Undo the last add / remove / switch; False if there is nothing to undo."""
        with self._lock:
            state = self._state()
            stack = state.get("undo", [])
            if not stack:
                return False
            self._write(stack[-1], undoable=False, undo=stack[:-1])
        return True

    train_with_weak = property(
        lambda self: bool(self._state().get("train_with_weak", False)),
        lambda self, on: self._write(self.all(), undoable=False, train_with_weak=bool(on)),
        doc="Every fit (also background ones) adds confident weak labels; set by "
            "session.fit(weak=...).")

    # ------------------------------------------------------------------ votes, weak labels
    def _key(self) -> Any:
        return (self._s.version, tuple(sorted(self._runs)), tuple(self._s.classes))

    def votes(self) -> tuple[np.ndarray, list[str]]:
        """(L (N, R) int64 codes into ``session.classes``, -1 abstain; names (R,)) of the
        enabled rules."""
        with self._lock:
            key = self._key()
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1]
            rules = [r for r in self.all() if r.get("enabled", True)]
            cols = [rv.rule_votes(self._s, r, self._functions, self._runs) for r in rules]
            L = (np.stack(cols, axis=1) if cols
                 else np.full((len(self._s.ids), 0), ws.ABSTAIN, np.int64))
            self._cache = (key, (L, [r["name"] for r in rules]))
            return self._cache[1]

    def errors(self, name: str) -> pd.DataFrame:
        """Items function rule ``name`` failed on (first 20): DataFrame[index, item_id, error]."""
        self._find(self.all(), name)
        run = self._runs.get(name)
        rows = [] if run is None else run.errors
        return pd.DataFrame(rows, columns=["index", "item_id", "error"])

    def weak_labels(self, *, method: str = "label_model") -> tuple[np.ndarray, np.ndarray]:
        """(probs (N, K) float32 over ``session.classes``, abstain (N,) bool): the label model's (or
        "majority" vote's) combination of the enabled rules, fit on items with no hand label (rules
        made from them vote them right); abstain where no rule votes and on audit items."""
        with self._lock:
            key = (self._key(), method)
            if self._weak_cache is not None and self._weak_cache[0] == key:
                return tuple(a.copy() for a in self._weak_cache[1])  # type: ignore[return-value]
            L, _ = self.votes()
            K = len(self._s.classes)
            audit = self._s.audit_mask()
            hand = self._s.label_array()
            if K < 2:
                raise ValueError("Weak labels need at least 2 classes; add classes first.")
            balance = ws.class_balance(hand[(hand >= 0) & ~audit], K)
            model = ws.WeakLabelModel(cardinality=K, method=method, class_balance=balance)
            probs = model.fit(L[hand < 0] if (hand < 0).any() else L).predict_proba(L)
            abstain = ~model.covered(L) | audit
            self._weak_cache = (key, (probs, abstain))
            return probs.copy(), abstain.copy()

    def use_in_fit(self, weak: bool | None) -> None:
        """Remember whether fits add weak labels (``session.fit(weak=...)``; None: keep)."""
        if weak is not None and bool(weak) != self.train_with_weak:
            self.train_with_weak = bool(weak)

    def weak_training_set(self, idx: np.ndarray, y: np.ndarray, weight: np.ndarray, *,
                          force: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hand-label training set (idx, y, weight) + confident weak labels of unlabeled,
        non-audit items (if ``train_with_weak`` or ``force``) as AGREE_NEIGHBOURS / NEIGHBOURS_DECIDE
        say: weight 1 (or the top probability), together <= WEAK_SHARE x the hand labels."""
        self.n_weak_trained = 0
        if not (force or self.train_with_weak) or not self.all():
            return idx, y, weight
        probs, abstain = self.weak_labels()
        eligible = ~abstain & (self._s.label_array() < 0) & ~self._s.excluded_mask()
        if CLASS_SHARE is not None:
            w_idx, w_y, w_conf = ws.confident_by_class(probs, eligible, share=CLASS_SHARE)
        else:
            w_idx, w_y, w_conf = ws.confident_weak(probs, eligible, threshold=MIN_CONFIDENCE)
        L, names = self.votes()
        kinds = {r["name"]: r["kind"] for r in self.all()}
        nb = [j for j, n in enumerate(names) if AGREE_NEIGHBOURS and kinds.get(n) == "neighbours"]
        if nb:  # the (first enabled) neighbours rule's class, or none where it disagrees
            vote = L[w_idx, nb[0]]
            keep = (vote == w_y) | (NEIGHBOURS_DECIDE & (vote >= 0))
            w_idx, w_y, w_conf = w_idx[keep], vote[keep], w_conf[keep]
        if len(w_idx) == 0:
            return idx, y, weight
        w_conf = w_conf if WEIGHT_BY_PROBABILITY else np.ones_like(w_conf)
        scale = min(1.0, WEAK_SHARE * float(weight.sum()) / float(w_conf.sum()))
        self.n_weak_trained = len(w_idx)
        return (np.concatenate([idx, w_idx]), np.concatenate([y, w_y]),
                np.concatenate([weight, (w_conf * scale).astype(np.float32)]))

    # ------------------------------------------------------------------ summary
    def summary(self) -> pd.DataFrame:
        """Per rule: DataFrame[rule, kind, label, enabled, coverage, overlaps, conflicts,
        accuracy_labeled, n_labeled, accuracy_audit, n_audit, status]. On hand labels
        no rule is scored on its own sources (rules_votes.held_out_votes: examples rules
        leave the item out, the neighbours rule is not scored). Shares are of all N items."""
        rules = self.all()
        cols = ["rule", "kind", "label", "enabled", "coverage", "overlaps", "conflicts",
                "accuracy_labeled", "n_labeled", "accuracy_audit", "n_audit", "status"]
        if not rules:
            return pd.DataFrame(columns=cols)
        with self._lock:
            L_on, on_names = self.votes()
            all_cols = [L_on[:, on_names.index(r["name"])] if r["name"] in on_names else
                        rv.rule_votes(self._s, r, self._functions, self._runs) for r in rules]
        L = np.stack(all_cols, axis=1)
        hand, audit = self._s.label_array(), self._s.audit_mask()
        K = max(len(self._s.classes), 1)
        train_truth = np.where(~audit, hand, -1)
        audit_truth = np.where(audit, hand, -1)
        a = ws.rule_stats(L, K, train_truth, names=[r["name"] for r in rules])
        b = ws.rule_stats(L, K, audit_truth)
        h = ws.rule_stats(rv.held_out_votes(self._s, rules, L), K, train_truth)  # not own sources
        out = pd.DataFrame({
            "rule": a["rule"], "kind": [r["kind"] for r in rules],
            "label": [r.get("label") for r in rules],
            "enabled": [bool(r.get("enabled", True)) for r in rules],
            "coverage": a["coverage"], "overlaps": a["overlaps"], "conflicts": a["conflicts"],
            "accuracy_labeled": h["accuracy"], "n_labeled": h["checked"],
            "accuracy_audit": b["accuracy"], "n_audit": b["checked"],
            "status": [self._status(r) for r in rules]})
        return out[cols]

    def _status(self, rule: dict[str, Any]) -> str:
        label = rule.get("label")
        if label is not None and label not in self._s.classes:
            return f"class {label!r} no longer exists: this rule abstains"
        if rule["kind"] == "region" and label in self._s.classes:
            agree, n = rv.region_check(self._s, self._s._labels.known_indices(
                rule["params"].get("ids", [])), self._s.classes.index(label))
            if rv.region_status(agree, n, label):
                return rv.region_status(agree, n, label)
        if rule["kind"] == "function":
            if rule["name"] not in self._functions:
                return (f"not attached: call session.rules.add_function(fn, {label!r}, "
                        f"name={rule['name']!r}) to use it (code is never run from the project)")
            run = self._runs.get(rule["name"])
            if run is not None and run.n_errors:
                first = run.errors[0]
                return (f"failed on {run.n_errors:,} items (skipped), e.g. item {first[1]}: "
                        f"{first[2]}")
        return "ok" if rule.get("enabled", True) else "off"

    def fingerprint(self) -> str:
        """A short hash of the enabled rules (for records)."""
        on = [r for r in self.all() if r.get("enabled", True)]
        return hashlib.blake2b(json.dumps(on, sort_keys=True).encode(), digest_size=6).hexdigest()


def weak_labels(session: Session, *, method: str = "label_model") -> tuple[np.ndarray, np.ndarray]:
    """(probs (N, K) float32 over ``session.classes``, abstain (N,) bool) from the enabled
    rules (:meth:`Rules.weak_labels`); ``method`` "label_model" (Snorkel) or "majority"."""
    return session.rules.weak_labels(method=method)
