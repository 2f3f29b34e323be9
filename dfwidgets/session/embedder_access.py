"""The embedder behind a Session's embeddings: the ONE place that loads it, decides whether
it reads text, and embeds things from outside the dataset (an uploaded image, text prompts).

The Session's zero-shot prior (``text_embedder``), ``supports_text``, ``embed_image`` and
``embed_text`` all go through :class:`EmbedderAccess`.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["IMAGE_ONLY", "EmbedderAccess", "reads_text"]

log = logging.getLogger(__name__)

#: embedder names known to embed images only (never loaded just to ask about text)
IMAGE_ONLY = ("efficientnet_lite0", "pixels")


def reads_text(embedder: Any) -> bool:
    """True if ``embedder`` has a text tower (``supports_text``, e.g. CLIP)."""
    return embedder is not None and bool(getattr(embedder, "supports_text", False))


def _with_hint(exc: Exception, name: str) -> Exception:
    """``exc`` with the way out for a project whose embedder cannot be rebuilt by name (a
    custom embedder object, a checkpoint file): give the object again."""
    hint = (f" This project's embeddings were made by {name!r}: to embed text or new images, "
            "reopen it with that embedder, Session.open(path, model=<the embedder object>).")
    try:
        return type(exc)(f"{exc}{hint}")
    except Exception:  # noqa: BLE001 - an exception type that takes other arguments
        return exc


class EmbedderAccess:
    """Lazy access to the model that made the embeddings.

    ``name``: the embedder name saved with the project (None if unknown); ``dim``: D of the
    project's embeddings; ``given``: an Embedder object the caller passed to Session.open.
    A failed load is remembered (and raised again) so a fit loop does not retry it.
    """

    def __init__(self, name: str | None, *, dim: int, given: Any = None) -> None:
        self.name = name
        self.dim = int(dim)
        self._embedder: Any = given
        self._error: BaseException | None = None
        self._warned = False
        self._lock = threading.Lock()

    def embedder(self) -> Any:
        """The Embedder (loaded on first use), None when the model is unknown. Raises the
        load error (ImportError, ConnectionError, OSError...) when it cannot be loaded."""
        with self._lock:
            if self._embedder is not None:
                return self._embedder
            if not self.name:
                return None
            if self._error is not None:
                raise self._error
            from ..embed import get_embedder

            try:
                self._embedder = get_embedder(self.name)
            except Exception as exc:
                self._error = _with_hint(exc, self.name)
                raise self._error from exc
            return self._embedder

    def _image_only_by_name(self) -> bool:
        return self._embedder is None and self.name in IMAGE_ONLY

    def text_embedder(self) -> Any:
        """The embedder if it reads text and loads, else None (a load failure is logged
        once): the zero-shot prior from class names uses it."""
        if self._image_only_by_name() or (self._embedder is None and not self.name):
            return None
        try:
            emb = self.embedder()
        except Exception as exc:  # noqa: BLE001 - any load failure: no zero-shot
            if not self._warned:
                self._warned = True
                log.warning("zero-shot off: cannot load embedder %r (%s)", self.name, exc)
            return None
        return emb if reads_text(emb) else None

    def _required(self) -> Any:
        emb = self.embedder()
        if emb is None:
            raise ValueError(
                "This Session does not know which model made its embeddings, so it cannot "
                "embed a new image or text. Open it with the model named, e.g. "
                "Session.open(path, source=src, embeddings=emb, model='efficientnet_lite0')."
            )
        return emb

    def _text_required(self) -> Any:
        emb = None if self._image_only_by_name() else self._required()
        if not reads_text(emb):
            shown = self.name or getattr(emb, "name", "this model")
            raise ValueError(
                f"Text prompts need a model that embeds text (CLIP), but this Session's "
                f"embeddings come from {shown!r}, which embeds images only. Open a Session "
                "with a CLIP model, e.g. Session.open(path, source=src, model='ViT-B-32') "
                "(pip install \"dfwidgets[clip]\"), or give one example image per class and "
                "use method='prototype'."
            )
        return emb

    def supports_text(self) -> tuple[bool, str]:
        """(True, "") if text prompts work, else (False, why and how to fix it)."""
        try:
            self._text_required()
        except (ValueError, ImportError, ConnectionError, OSError) as exc:
            return False, str(exc)
        return True, ""

    def embed_text(self, texts: str | Sequence[str]) -> np.ndarray:
        """(T, D) float32 unit rows for ``texts``; ValueError naming the fix when the
        embedder has no text tower or a text is empty."""
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items or not all(isinstance(t, str) and t.strip() for t in items):
            raise ValueError("texts must be non-empty prompts, e.g. ['a photo of a sneaker'].")
        emb = self._text_required()
        vec = np.asarray(emb.embed_text([t.strip() for t in items]), dtype=np.float32)
        return self._unit_rows(vec, what="text")

    def embed_image(self, image: Any) -> np.ndarray:
        """(D,) float32 unit vector of one image from outside the dataset (path, PIL image,
        uint8 array or encoded bytes). ValueError if it cannot be read."""
        from PIL import Image, UnidentifiedImageError

        from ..embed import embed_images

        if isinstance(image, (bytes, bytearray, memoryview)):
            try:
                with Image.open(io.BytesIO(bytes(image))) as f:
                    image = f.convert("RGB")
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                raise ValueError(
                    f"The file is not an image that can be read ({exc}); use a PNG, JPEG, "
                    "WebP or BMP file."
                ) from exc
        elif isinstance(image, (str, os.PathLike)) and not os.path.isfile(image):
            raise ValueError(f"No image file at {str(image)!r}; check the path.")
        vec = embed_images([image], model=self._required())
        return self._unit_rows(np.asarray(vec, dtype=np.float32), what="image")[0]

    def _unit_rows(self, vec: np.ndarray, *, what: str) -> np.ndarray:
        if vec.ndim != 2 or vec.shape[1] != self.dim:
            raise ValueError(
                f"The {what} embedding has {vec.shape[-1]} dims but the session's embeddings "
                f"have {self.dim}: the session's model does not match its embeddings."
            )
        return vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
