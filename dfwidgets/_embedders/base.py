"""What every embedder provides, shared by :mod:`dfwidgets.embed` and the implementations.

Kept apart from ``dfwidgets.embed`` so that embedders never import the module that
loads them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import PIL.Image

if TYPE_CHECKING:
    import torch

__all__ = ["Embedder", "text_unsupported"]


@runtime_checkable
class Embedder(Protocol):
    """What every embedder provides (see docs/architecture.md, "embed.py")."""

    name: str
    cache_key: str
    dim: int
    supports_text: bool
    image_size: int
    module: torch.nn.Module  # (B,3,H,W) preprocessed -> (B,D) unnormalised
    transform: Callable[[PIL.Image.Image], torch.Tensor]  # PIL -> (3,H,W)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """``T`` texts -> ``(T, D)`` float32, L2-normalised (ValueError without a text tower)."""
        ...


def text_unsupported(name: str) -> ValueError:
    """The error for ``embed_text`` on an image-only embedder."""
    return ValueError(
        f"model {name!r} embeds images only and has no text tower. Text embeddings (zero-shot "
        "from class names) need an open_clip model, e.g. embed_text(texts, model='ViT-B-32') "
        "(any name in open_clip.list_models())."
    )
