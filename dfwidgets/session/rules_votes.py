"""How each kind of rule votes over a Session's items (helpers of ``session/rules.py``).

A rule is a JSON dict ``{"name", "kind", "label", "enabled", "params"}``; its votes are
(N,) int64 codes into ``session.classes`` or -1 (abstain). Audit items are never used as
examples or neighbours here, and ``Rules.weak_labels`` never labels them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..learn import weak_supervision as ws

if TYPE_CHECKING:
    from .session import Session

__all__ = ["REGION_AGREE", "FunctionRun", "RuleItem", "held_out_votes",
           "region_backed", "region_check", "region_status", "rule_votes"]

log = logging.getLogger(__name__)

MAX_ERRORS_KEPT = 20  # items with a failure kept per function rule (all are counted)


@dataclass(frozen=True)
class RuleItem:
    """What a function rule sees of one item: ``index``, ``id``, ``path`` (None unless
    the source has files), ``label`` (hand label or None); ``image`` loads it (PIL)."""

    index: int
    id: str
    path: str | None
    label: str | None
    _source: Any = None

    @property
    def image(self) -> Any:
        """The item's image (PIL), loaded on use."""
        return self._source[self.index]


@dataclass
class FunctionRun:
    """Votes of a function rule and the items it failed on (index, id, error)."""

    votes: np.ndarray
    errors: list[tuple[int, str, str]]
    n_errors: int


def _codes_of(session: Session) -> dict[str, int]:
    return {c: k for k, c in enumerate(session.classes)}


def _sources(session: Session) -> np.ndarray:
    """(M,) int64 hand-labeled items that are not audit items."""
    return np.flatnonzero((session.label_array() >= 0) & ~session.audit_mask())


def rule_votes(session: Session, rule: dict[str, Any], functions: dict[str, Any],
               runs: dict[str, FunctionRun]) -> np.ndarray:
    """(N,) int64 votes of ``rule`` now (-1 = abstain); a rule whose class is gone or
    whose function is not attached abstains everywhere."""
    n = len(session.ids)
    codes = _codes_of(session)
    kind, p = rule["kind"], rule.get("params", {})
    label = rule.get("label")
    out = np.full(n, ws.ABSTAIN, np.int64)
    if label is not None and label not in codes:
        return out
    code = codes.get(label, -1)
    if kind == "region":
        idx = session._labels.known_indices(p.get("ids", []))
        if region_checked(session, idx, code):
            out[idx] = code
        return out
    if kind == "examples":
        return example_rule_votes(session, code, threshold=float(p.get("threshold", 0.8)))
    if kind == "prompt":
        return ws.prompt_votes(session.embeddings, np.asarray(p["vector"], np.float32), code,
                               top=float(p.get("top", 0.05)))
    if kind == "neighbours":
        return neighbour_rule_votes(session, k=int(p.get("k", 10)))
    if kind == "function":
        run = runs.get(rule["name"])
        if run is None and rule["name"] in functions:
            run = runs[rule["name"]] = run_function(session, functions[rule["name"]], label)
        return out if run is None else run.votes
    raise ValueError(f"unknown rule kind {kind!r}")


#: a region abstains when the hand labels inside it (not audit items) disagree with its
#: name: fewer than this share of them have its class. A region with no hand labels inside
#: votes: the user's word is all there is.
REGION_AGREE = 0.5


def region_check(session: Session, idx: np.ndarray, code: int) -> tuple[int, int]:
    """(hand labels inside the region items ``idx`` with class ``code``, all hand labels
    inside), audit items left out."""
    inside = session.label_array()[idx][~session.audit_mask()[idx]]
    inside = inside[inside >= 0]
    return int((inside == code).sum()), len(inside)


def region_backed(agree: int, n: int) -> bool:
    """True unless the ``n`` hand labels inside a region disagree with its class (only
    ``agree`` of them have it: not more than ``REGION_AGREE`` of them)."""
    return n == 0 or agree > REGION_AGREE * n


def region_status(agree: int, n: int, label: str) -> str:
    """Why a region abstains ("" while it votes), for ``summary()``."""
    if region_backed(agree, n):
        return ""
    return (f"abstains: only {agree} of {n} hand labels inside say {label!r}; it votes "
            f"again when more than {REGION_AGREE:.0%} of them do")


def region_checked(session: Session, idx: np.ndarray, code: int) -> bool:
    """True if the region's own hand labels back its class (see REGION_AGREE)."""
    return region_backed(*region_check(session, idx, code))


def example_rule_votes(session: Session, code: int, *, threshold: float) -> np.ndarray:
    """Votes ``code`` where the most similar example (hand-labeled items that are not
    audit items, plus the class examples kept in ``session.examples``) is of that class
    and at least ``threshold`` similar (cosine after removing the mean embedding)."""
    X = session.embeddings
    mean = X.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
    src = _sources(session)
    vecs = [X[src]]
    ex_codes = [session.label_array()[src]]
    codes = _codes_of(session)
    for name in session.examples.all():
        if name in codes:
            v = session.examples.vectors(name)
            vecs.append(v)
            ex_codes.append(np.full(len(v), codes[name], np.int64))
    E = ws.centred_rows(np.concatenate(vecs), mean)
    return ws.example_votes(X, mean, E, np.concatenate(ex_codes), code, threshold=threshold)


def neighbour_rule_votes(session: Session, *, k: int) -> np.ndarray:
    """Hand labels (not audit) spread over the ``k``-nearest-neighbour graph of the
    whitened pool (label spreading, Zhou et al. 2004: learn/label_spreading.py; whitening:
    learn/whitening.py); each item reached votes its top class (the labeled items their
    own)."""
    from ..learn.label_spreading import spread_labels

    n = len(session.ids)
    src = _sources(session)
    if len(src) == 0 or n < 2:
        return np.full(n, ws.ABSTAIN, np.int64)
    table = session._neighbours.whitened_table(k=k)  # built once per Session
    scores = spread_labels(table, src, session.label_array()[src], len(session.classes))
    return np.where(scores.sum(axis=1) > 0, scores.argmax(axis=1), ws.ABSTAIN).astype(np.int64)


def run_function(session: Session, fn: Any, label: str | None) -> FunctionRun:
    """Call ``fn(item)`` for every item: True -> ``label``; a class name -> that class
    (rules without a label); False / None -> abstain. An item it fails on (an exception or
    an unknown class) is skipped and reported; never fatal."""
    n = len(session.ids)
    codes = _codes_of(session)
    classes = session.classes
    hand = session.label_array()
    paths = getattr(session.source, "paths", None)
    votes = np.full(n, ws.ABSTAIN, np.int64)
    errors: list[tuple[int, str, str]] = []
    n_errors = 0
    for i in range(n):
        item = RuleItem(i, str(session.ids[i]), None if paths is None else str(paths[i]),
                        classes[hand[i]] if hand[i] >= 0 else None, session.source)
        try:
            value = fn(item)
            if value is None or value is False:
                continue
            if isinstance(value, str):
                if value not in codes:
                    raise ValueError(f"returned {value!r}, which is not a class "
                                     f"({', '.join(classes)})")
                votes[i] = codes[value]
            elif isinstance(value, (bool, np.bool_, int, np.integer)) and label is not None:
                if value:
                    votes[i] = codes[label]
            else:
                raise ValueError(f"returned {value!r}; return True/False (the rule has a "
                                 "class) or a class name")
        except Exception as exc:  # noqa: BLE001 - a user's function: report, skip the item
            n_errors += 1
            if len(errors) < MAX_ERRORS_KEPT:
                errors.append((i, str(session.ids[i]), f"{type(exc).__name__}: {exc}"))
    if n_errors:
        log.warning("rule function failed on %d of %d items (first: item %s, %s); those "
                    "items were skipped", n_errors, n, errors[0][1], errors[0][2])
    return FunctionRun(votes, errors, n_errors)



def held_out_votes(session: Session, rules: list[dict[str, Any]], L: np.ndarray) -> np.ndarray:
    """(N, R) copy of the votes ``L`` of ``rules`` for scoring on the hand labels: a
    rule is never scored on its own source labels. On hand-labeled (not audit) items an
    examples rule votes by the nearest *other* example (leave one out); the neighbours
    rule abstains there (each such item is a source of it; held-out spreading would cost
    one spread per fold at every refresh: score it on audit items instead)."""
    L = np.array(L, np.int64, copy=True)
    src = _sources(session)
    names = _codes_of(session)
    codes = session.label_array()[src]
    X, sim = session.embeddings, None
    for j, r in enumerate(rules):
        if r["kind"] == "neighbours":
            L[src, j] = ws.ABSTAIN
        elif r["kind"] == "examples" and r.get("label") in names and len(src):
            if sim is None:  # (M, M + E) similarities of the sources to the other examples
                mean = X.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
                kept = [(names[c], session.examples.vectors(c)) for c in session.examples.all()
                        if c in names]
                E = np.concatenate([X[src]] + [v for _, v in kept])
                ex_codes = np.concatenate([codes] + [np.full(len(v), k) for k, v in kept])
                sim = ws.centred_rows(X[src], mean) @ ws.centred_rows(E, mean).T
                sim[np.arange(len(src)), np.arange(len(src))] = -np.inf
                nearest, best = ex_codes[sim.argmax(axis=1)], sim.max(axis=1)
            code = names[r["label"]]
            hit = (nearest == code) & (best >= float(r["params"].get("threshold", 0.8)))
            L[src, j] = np.where(hit, code, ws.ABSTAIN)
    return L
