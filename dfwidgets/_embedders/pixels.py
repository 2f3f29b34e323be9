"""Raw-pixel baseline embedder: the image at a small size, flattened."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from dfwidgets._embedders._preprocess import ResizeToTensor
from dfwidgets._embedders.base import text_unsupported

if TYPE_CHECKING:
    from torch import nn

__all__ = ["PixelEmbedder"]


class PixelEmbedder:
    """Flattened pixels in [0, 1] at ``image_size`` x ``image_size`` (grey or RGB).

    ``dim`` = S*S (grey) or 3*S*S (RGB). A baseline: no learned features at all.
    """

    supports_text = False
    VERSION = 1

    def __init__(self, *, image_size: int = 32, grey: bool = False, device: str = "cpu") -> None:
        self.image_size = int(image_size)
        self.grey = bool(grey)
        self.device = device
        self.dim = self.image_size**2 * (1 if self.grey else 3)
        self.name = "pixels"
        self.cache_key = (
            f"pixels/v{self.VERSION}/size{self.image_size}/{'grey' if self.grey else 'rgb'}"
            "/resize-bilinear-centercrop/01"
        )
        self.transform = ResizeToTensor(self.image_size, mean=0.0, std=1.0, grey=self.grey)

    @cached_property
    def module(self) -> nn.Module:
        """(B,C,S,S) -> (B, C*S*S)."""
        from torch import nn

        return nn.Flatten().to(self.device)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Not available: pixels have no text tower."""
        raise text_unsupported(self.name)

    def __repr__(self) -> str:
        return f"PixelEmbedder(image_size={self.image_size}, grey={self.grey}, dim={self.dim})"
