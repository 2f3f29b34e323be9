"""One-shot and zero-shot label proposals over a Session, and the class examples behind them.

A *proposal* is a label and a confidence for every unlabeled item, from

* ``method="prototype"``: :class:`~dfwidgets.learn.models.PrototypeClassifier` fitted on
  the class examples (labeled items, plus uploaded images and text prompts kept as
  examples; hard negatives from the store push prototypes away), or
* ``method="zero-shot"``: :class:`~dfwidgets.learn.models.ZeroShotClassifier` from class
  prompts (CLIP models only).

Nothing is written until :func:`commit_proposal`, which labels only items above a
confidence threshold that are *still* unlabeled (no label is ever overwritten), as one
store event with source ``"prototype"`` / ``"zero-shot"``, undoable by source.

Class examples that are not dataset items (an uploaded image, a text prompt) live in the
store's metadata (key ``"class_examples"``), so a reopened Session still has them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "METHODS",
    "add_example",
    "class_examples",
    "clear_examples",
    "commit_proposal",
    "embed_query_image",
    "example_vectors",
    "proposal_samples",
    "propose",
    "summarize_proposal",
]

log = logging.getLogger(__name__)

#: proposal method -> LabelStore source of the committed labels
METHODS = {"prototype": "prototype", "zero-shot": "zero-shot"}
EXAMPLES_META = "class_examples"
_IMAGE_ONLY = ("efficientnet_lite0", "pixels")


# ====================================================================== embedders
def session_embedder(session: Any) -> Any:
    """The Embedder that made ``session.embeddings`` (raises ValueError if unknown)."""
    emb = getattr(session, "_embedder", None)
    if emb not in (None, False):
        return emb
    name = getattr(session, "model_name", None)
    if not name:
        raise ValueError(
            "This Session does not know which model made its embeddings, so it cannot embed "
            "a new image or text. Open it with the model named, e.g. "
            "Session.open(path, source=src, embeddings=emb, model='efficientnet_lite0')."
        )
    from ..embed import get_embedder

    return get_embedder(name)


def _text_embedder(session: Any) -> Any:
    """The session's embedder if it embeds text; else a ValueError naming the fix."""
    name = getattr(session, "model_name", None)
    if name in _IMAGE_ONLY:
        emb = None
    else:
        emb = session_embedder(session)
    if emb is None or not getattr(emb, "supports_text", False):
        shown = name or getattr(emb, "name", "this model")
        raise ValueError(
            f"Text prompts need a model that embeds text (CLIP), but this Session's embeddings "
            f"come from {shown!r}, which embeds images only. Open a Session with a CLIP "
            "model, e.g. Session.open(path, source=src, model='ViT-B-32') "
            "(pip install \"dfwidgets[clip]\"), or give one example image per class and "
            "use method='prototype'."
        )
    return emb


def supports_text(session: Any) -> tuple[bool, str]:
    """(True, "") if text prompts work for this session, else (False, why) for the UI."""
    try:
        _text_embedder(session)
    except (ValueError, ImportError, ConnectionError, OSError) as exc:
        return False, str(exc)
    return True, ""


def embed_query_image(session: Any, image: Any) -> np.ndarray:
    """Embed one image from outside the dataset (path, PIL image, uint8 array or encoded
    bytes) with the session's model -> (D,) float32 unit vector. ValueError if unreadable."""
    import io

    from PIL import Image, UnidentifiedImageError

    from ..embed import embed_images

    if isinstance(image, (bytes, bytearray, memoryview)):
        try:
            with Image.open(io.BytesIO(bytes(image))) as f:
                image = f.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise ValueError(
                f"The file is not an image that can be read ({exc}); use a PNG, JPEG, WebP "
                "or BMP file."
            ) from exc
    elif isinstance(image, (str, os.PathLike)) and not os.path.isfile(image):
        raise ValueError(f"No image file at {str(image)!r}; check the path.")
    vec = embed_images([image], model=session_embedder(session))[0].astype(np.float32)
    if vec.shape[0] != session.embeddings.shape[1]:
        raise ValueError(
            f"The image embedding has {vec.shape[0]} dims but the session's embeddings have "
            f"{session.embeddings.shape[1]}: the session's model does not match its embeddings."
        )
    return vec / max(float(np.linalg.norm(vec)), 1e-12)


# ====================================================================== class examples
def class_examples(session: Any) -> dict[str, list[dict[str, Any]]]:
    """Examples kept per class: ``{class: [{"kind": "item", "index": i}, {"kind": "image",
    "name": ..., "vector": [...]}, {"kind": "text", "text": ..., "vector": [...]}]}``.
    Item examples are the class's labeled items (newest first is not implied)."""
    stored = session.store.get_meta(EXAMPLES_META) or {}
    out: dict[str, list[dict[str, Any]]] = {}
    for name, items in stored.items():
        rows = []
        for ex in items:
            if ex.get("kind") == "item":
                idx = session.indices_of([ex["id"]]) if ex["id"] in session._index_of else []
                if len(idx):
                    rows.append({"kind": "item", "index": int(idx[0]), "id": ex["id"]})
            else:
                rows.append(dict(ex))
        out[name] = rows
    return out


def add_example(
    session: Any,
    label: str,
    *,
    index: int | None = None,
    image: Any = None,
    text: str | None = None,
    replace: bool = False,
    label_item: bool = True,
) -> dict[str, Any]:
    """Make an item (also labeled ``label``, source "click", unless ``label_item=False``),
    an outside image, or a text prompt an example of class ``label``. Exactly one of
    ``index`` / ``image`` / ``text``. ``replace=True`` drops the class's earlier examples
    first. Returns the stored example."""
    given = [x is not None for x in (index, image, text)]
    if sum(given) != 1:
        raise ValueError("Give exactly one of index=, image= or text= for the example.")
    if not isinstance(label, str) or not label.strip():
        raise ValueError("label must be a class name (a non-empty string).")
    if index is not None:
        idx = session._check_indices([index])
        if label_item:
            session.label(idx, label, source="click")
        else:
            session.add_class(label)
        example = {"kind": "item", "id": str(session.ids[int(idx[0])])}
    elif image is not None:
        vec = embed_query_image(session, image)
        name = os.path.basename(str(image)) if isinstance(image, (str, os.PathLike)) else "image"
        example = {"kind": "image", "name": name, "vector": vec.round(6).tolist()}
        session.add_class(label)
    else:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("text must be a non-empty prompt, e.g. 'a photo of a sneaker'.")
        vec = _text_embedder(session).embed_text([text.strip()])[0]
        example = {"kind": "text", "text": text.strip(),
                   "vector": np.asarray(vec, np.float32).round(6).tolist()}
        session.add_class(label)
    stored = session.store.get_meta(EXAMPLES_META) or {}
    kept = [] if replace else [e for e in stored.get(label, []) if e != example]
    stored[label] = kept + [example]
    session.store.set_meta(EXAMPLES_META, stored)
    return example


def clear_examples(session: Any, label: str | None = None) -> None:
    """Forget the kept examples of ``label`` (all classes if None); labels stay."""
    stored = session.store.get_meta(EXAMPLES_META) or {}
    if label is None:
        stored = {}
    else:
        stored.pop(label, None)
    session.store.set_meta(EXAMPLES_META, stored or None)


def example_vectors(session: Any, label: str) -> np.ndarray:
    """(E, D) float32 unit vectors of the kept examples of ``label`` (items, images, text)."""
    rows = []
    for ex in class_examples(session).get(label, []):
        if ex["kind"] == "item":
            rows.append(session.embeddings[ex["index"]])
        else:
            rows.append(np.asarray(ex["vector"], np.float32))
    if not rows:
        return np.zeros((0, session.embeddings.shape[1]), np.float32)
    x = np.stack(rows).astype(np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# ====================================================================== proposals
def _prototype_training(session: Any, examples: Mapping[str, Any] | None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(X (M, D), y (M,)) for the prototypes: given examples, else labels + kept examples."""
    if examples is not None:
        if not isinstance(examples, Mapping):
            raise TypeError("examples must be a dict {class name: item index or list of "
                            "indices}, e.g. {'Sneaker': 123, 'Bag': [5, 9]}.")
        xs, ys = [], []
        for name, idx in examples.items():
            idx = session._check_indices(np.atleast_1d(idx))
            xs.append(session.embeddings[idx])
            ys += [str(name)] * len(idx)
        return np.concatenate(xs) if xs else np.zeros((0, 0), np.float32), np.asarray(ys, object)
    codes = session.label_array()
    classes = np.asarray(session.classes + [None], dtype=object)
    labeled = np.flatnonzero(codes >= 0)
    xs = [session.embeddings[labeled]]
    ys = list(classes[codes[labeled]])
    for name, kept in class_examples(session).items():
        for e in kept:
            if e["kind"] != "item":
                xs.append(np.asarray(e["vector"], np.float32)[None, :])
            elif codes[e["index"]] < 0:  # an unlabeled item example (e.g. a map selection)
                xs.append(session.embeddings[e["index"]][None, :])
            else:
                continue
            ys.append(name)
    return np.concatenate(xs).astype(np.float32), np.asarray(ys, dtype=object)


def propose(
    session: Any,
    *,
    method: str = "prototype",
    prompts: Mapping[str, str | Sequence[str]] | None = None,
    examples: Mapping[str, Any] | None = None,
    templates: Sequence[str] | None = None,
) -> pd.DataFrame:
    """A proposed label for every unlabeled item: DataFrame[index, label, confidence],
    most confident first (``attrs``: method, source, classes). Also kept as
    ``session.proposal_`` for :func:`commit_proposal`. Nothing is written.

    ``method="prototype"``: nearest class mean of ``examples`` ({class: index or indices});
    by default of every labeled item plus kept image/text examples, with the store's hard
    negatives. ``method="zero-shot"``: CLIP similarity to ``prompts`` ({class: prompt or
    prompts}; default: ``templates`` filled with each class name).
    """
    from .models import IMAGENET_TEMPLATES, PrototypeClassifier, ZeroShotClassifier

    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}; got {method!r}.")
    codes = session.label_array()
    pool = np.flatnonzero(codes < 0)
    if method == "zero-shot":
        if examples is not None:
            raise ValueError("examples= is for method='prototype'; zero-shot uses prompts=.")
        text = _text_embedder(session)
        classes = list(prompts) if prompts else session.classes
        if len(classes) < 2:
            raise ValueError(
                f"Zero-shot needs at least 2 classes to choose between; got {classes}. Add "
                "classes (session.add_class) or pass prompts={'Sneaker': 'a photo of a "
                "sneaker', 'Bag': 'a photo of a bag'}."
            )
        model = ZeroShotClassifier(classes, text_embedder=text, prompts=prompts,
                                   templates=tuple(templates or IMAGENET_TEMPLATES)).fit()
    else:
        if prompts is not None:
            raise ValueError("prompts= is for method='zero-shot'; prototypes use examples=.")
        X, y = _prototype_training(session, examples)
        present = sorted(set(y.tolist()))
        if len(present) < 2:
            raise ValueError(
                f"Prototypes need examples of at least 2 classes; got {present or 'none'}. "
                "Give one example per class (VisualSearch, session.label, or "
                "examples={'Sneaker': 12, 'Bag': 40})."
            )
        model = PrototypeClassifier()
        neg = session.store.negatives()
        neg = neg[neg["item_id"].isin(session._index_of) & neg["label"].isin(present)]
        if examples is None and len(neg):
            model.fit(X, y, X_negative=session.embeddings[session.indices_of(neg["item_id"])],
                      y_negative=neg["label"].to_numpy(dtype=object))
        else:
            model.fit(X, y)
    probs = model.predict_proba(session.embeddings[pool]) if len(pool) else np.zeros((0, 1))
    names = np.asarray([str(c) for c in model.classes_], dtype=object)
    best = probs.argmax(axis=1) if len(pool) else np.zeros(0, np.int64)
    frame = pd.DataFrame({
        "index": pool.astype(np.int64),
        "label": names[best] if len(pool) else np.array([], dtype=object),
        "confidence": probs.max(axis=1).astype(np.float32) if len(pool) else np.zeros(0, np.float32),
    })
    frame = frame.sort_values(["confidence", "index"], ascending=[False, True],
                              kind="stable").reset_index(drop=True)
    frame.attrs.update(method=method, source=METHODS[method], classes=list(names))
    session.proposal_ = frame
    log.info("%s proposal: %d items, %d classes", method, len(frame), len(names))
    return frame


def summarize_proposal(proposal: pd.DataFrame, *, min_confidence: float = 0.9) -> pd.DataFrame:
    """Per class: DataFrame[label, proposed, above_threshold, median_confidence] (the counts
    a commit at ``min_confidence`` would write), largest first."""
    _check_threshold(min_confidence)
    classes = proposal.attrs.get("classes") or sorted(proposal["label"].unique())
    g = proposal.groupby("label")["confidence"]
    out = pd.DataFrame({"label": classes})
    out["proposed"] = out["label"].map(g.size()).fillna(0).astype(int)
    above = proposal[proposal["confidence"] >= min_confidence].groupby("label").size()
    out["above_threshold"] = out["label"].map(above).fillna(0).astype(int)
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
    ``per_class`` items whose confidence is closest to it (at or below it when possible):
    DataFrame[label, level, index, confidence]."""
    rows = []
    for name, grp in proposal.groupby("label", sort=False):
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


def commit_proposal(
    session: Any,
    proposal: pd.DataFrame | None = None,
    *,
    min_confidence: float = 0.9,
    labels: Sequence[str] | None = None,
) -> int:
    """Write the proposed labels with confidence >= ``min_confidence`` (only for classes in
    ``labels`` if given) as one event with source "prototype" / "zero-shot". Items labeled
    since the proposal are skipped, never overwritten. Returns the items written; undo with
    ``session.undo(source=...)``."""
    _check_threshold(min_confidence)
    proposal = proposal if proposal is not None else getattr(session, "proposal_", None)
    if proposal is None:
        raise ValueError("There is no proposal yet: call session.propose(method=...) first.")
    source = proposal.attrs.get("source")
    if source not in METHODS.values():
        raise ValueError("This DataFrame is not a proposal from propose(); its attrs lack the "
                         "source. Call session.propose(...) again.")
    pick = proposal[proposal["confidence"] >= min_confidence]
    if labels is not None:
        unknown = set(labels) - set(proposal.attrs.get("classes", []))
        if unknown:
            raise ValueError(f"labels {sorted(unknown)} are not classes of this proposal "
                             f"({proposal.attrs.get('classes')}).")
        pick = pick[pick["label"].isin(list(labels))]
    idx = pick["index"].to_numpy(dtype=np.int64)
    still_free = session.label_array()[idx] < 0
    skipped = int((~still_free).sum())
    if skipped:
        log.info("commit_proposal: %d items were labeled since the proposal; kept", skipped)
    idx, names = idx[still_free], pick["label"].to_numpy(dtype=object)[still_free]
    if len(idx) == 0:
        return 0
    return session.label_many(idx, [str(n) for n in names], source=source)


def _check_threshold(value: float) -> None:
    if not isinstance(value, (int, float, np.floating)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"min_confidence must be a number between 0 and 1; got {value!r}.")
