"""ZeroShotClassifier: classes named in words, scored against image embeddings (CLIP)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ._checks import check_embeddings

__all__ = ["IMAGENET_TEMPLATES", "ZeroShotClassifier"]

#: The short list of prompt templates OpenAI selected for ImageNet zero-shot
#: (open_clip's ``SIMPLE_IMAGENET_TEMPLATES``), plus the plain "a photo of a {}.".
IMAGENET_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)


def _normalise(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=-1, keepdims=True), 1e-12)


class ZeroShotClassifier(ClassifierMixin, BaseEstimator):
    """Classify image embeddings by similarity to text embeddings of the class names.

    Each class's text vector is the normalised mean of its prompts' embeddings: the
    ``prompts[class]`` the user wrote (a string or a list), else ``templates`` filled with
    the class name. ``p(c | x) = softmax_c(cos(x, text_c) / temperature)``.

    Parameters
    ----------
    classes : the class names (column order).
    text_embedder : a CLIP embedder (``dfwidgets.get_embedder("ViT-B-32")``, anything with
        ``supports_text`` and ``embed_text(list[str]) -> (T, D)``) or a plain callable
        ``list[str] -> (T, D)``. The image embeddings must come from the same model.
    text_embeddings : instead of an embedder, precomputed text vectors: (K, D) (one per
        class), or a mapping class -> (D,) or (T, D).
    templates : prompt templates with one ``{}`` for the class name.
    prompts : per-class prompt overrides, ``{"Sneaker": ["a photo of a sneaker", ...]}``.
    temperature : CLIP's learned logit scale is 100, i.e. temperature 0.01.

    ``fit(X=None, y=None)`` computes ``class_embeddings_`` (K, D) and needs no labels;
    ``predict_proba`` fits on first use.
    """

    def __init__(
        self,
        classes: Sequence[str] | None = None,
        *,
        text_embedder: Any | None = None,
        text_embeddings: Any | None = None,
        templates: Sequence[str] = IMAGENET_TEMPLATES,
        prompts: Mapping[str, str | Sequence[str]] | None = None,
        temperature: float = 0.01,
    ) -> None:
        self.classes = classes
        self.text_embedder = text_embedder
        self.text_embeddings = text_embeddings
        self.templates = templates
        self.prompts = prompts
        self.temperature = temperature

    def prompts_for(self, name: str) -> list[str]:
        """The prompts used for class ``name``."""
        given = (self.prompts or {}).get(name)
        if given is not None:
            out = [given] if isinstance(given, str) else list(given)
            if not out or not all(isinstance(p, str) and p.strip() for p in out):
                raise ValueError(f"prompts[{name!r}] must be a non-empty string or list of strings")
            return out
        if not self.templates:
            raise ValueError("templates is empty; pass at least one template such as 'a photo of a {}.'")
        bad = [t for t in self.templates if "{}" not in t]
        if bad:
            raise ValueError(f"templates need a '{{}}' where the class name goes; got {bad}")
        return [t.format(name) for t in self.templates]

    def fit(self, X: Any = None, y: Any = None) -> ZeroShotClassifier:
        """Embed the prompts of every class; ``X`` and ``y`` are ignored (no labels needed)."""
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0; got {self.temperature}")
        if self.classes is None or len(self.classes) < 2:
            raise ValueError(
                f"ZeroShotClassifier needs at least 2 class names; got {self.classes!r}"
            )
        names = [str(c) for c in self.classes]
        if self.text_embeddings is not None:
            emb = self._from_given(names)
        elif self.text_embedder is not None:
            emb = self._from_embedder(names)
        else:
            raise ValueError(
                "ZeroShotClassifier needs text_embedder= (a CLIP embedder, e.g. "
                "dfwidgets.get_embedder('ViT-B-32')) or text_embeddings= (precomputed vectors)"
            )
        if not np.isfinite(emb).all():
            raise ValueError("text embeddings contain NaN or infinite values")
        self.classes_ = np.asarray(list(self.classes))
        self.class_embeddings_ = _normalise(emb).astype(np.float32)
        self.n_features_in_ = emb.shape[1]
        return self

    def _from_given(self, names: list[str]) -> np.ndarray:
        given = self.text_embeddings
        if isinstance(given, Mapping):
            missing = [n for n in names if n not in given]
            if missing:
                raise ValueError(f"text_embeddings has no vectors for classes {missing}")
            rows = []
            for n in names:
                v = np.asarray(given[n], dtype=np.float32)
                rows.append(_normalise(v.reshape(-1, v.shape[-1])).mean(axis=0))
            return np.stack(rows)
        arr = np.asarray(given, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != len(names):
            raise ValueError(
                f"text_embeddings must have shape (K, D) with K = {len(names)} classes; "
                f"got {arr.shape}"
            )
        return arr

    def _from_embedder(self, names: list[str]) -> np.ndarray:
        emb = self.text_embedder
        if hasattr(emb, "embed_text"):
            if not getattr(emb, "supports_text", True):
                raise ValueError(
                    f"the embedder {getattr(emb, 'name', emb)!r} has no text tower, so it cannot "
                    "do zero-shot; use a CLIP model (dfwidgets.get_embedder('ViT-B-32')) for "
                    "the images and the class names, or label a few examples instead"
                )
            encode: Callable[[list[str]], Any] = emb.embed_text
        elif callable(emb):
            encode = emb
        else:
            raise TypeError(
                "text_embedder must have embed_text(list[str]) or be a callable list[str] -> (T, D)"
            )
        rows = []
        for n in names:
            vecs = np.asarray(encode(self.prompts_for(n)), dtype=np.float32)
            if vecs.ndim != 2:
                raise ValueError(f"text_embedder returned shape {vecs.shape}; expected (T, D)")
            rows.append(_normalise(vecs).mean(axis=0))
        return np.stack(rows)

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, K) float32 probabilities for image embeddings ``X`` (N, D)."""
        if not hasattr(self, "class_embeddings_"):
            self.fit()
        try:
            X = check_embeddings(X, name="X", dim=self.n_features_in_, allow_empty=True)
        except ValueError as exc:
            if np.ndim(X) == 2 and np.shape(X)[1] != self.n_features_in_:
                raise ValueError(
                    f"image embeddings have {np.shape(X)[1]} dims but the text embeddings have "
                    f"{self.n_features_in_}; embed images and class names with the same CLIP "
                    "model"
                ) from exc
            raise
        logits = (_normalise(X) @ self.class_embeddings_.T) / np.float32(self.temperature)
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits.astype(np.float32, copy=False)

    def predict(self, X: Any) -> np.ndarray:
        """Most similar class name per row, (N,)."""
        best = self.predict_proba(X).argmax(axis=1)  # fits first if needed
        return self.classes_[best]
