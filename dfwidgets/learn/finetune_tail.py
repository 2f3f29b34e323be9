"""Split a pooled-stages backbone at a block boundary: a frozen front run once per image
(its output is cached) and a trainable tail run every epoch.

Works on modules shaped like the offline backbone's ``PooledStages`` (attributes ``model``
with ``conv_stem``, ``bn1``, ``blocks``, ``feature_info``; ``stages``; ``balance``): the
embedding is the concatenation of average-pooled stage outputs, so the stages that end
before the cut contribute fixed pooled vectors (the "prefix", cached with the activation)
and the tail computes the rest. ``tail(front(x)) == backbone(x)`` up to float rounding.
Other backbones (open_clip ViTs) are not split: :func:`splittable` says so and the
FineTuner falls back to running the whole network on images.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["StageSplit", "cut_for_blocks", "embedding_columns", "splittable", "view_batch"]


def splittable(module: nn.Module) -> bool:
    """True when ``module`` is a pooled-stages backbone that :class:`StageSplit` can cut."""
    m = getattr(module, "model", None)
    return (all(hasattr(m, a) for a in ("conv_stem", "bn1", "blocks", "feature_info"))
            and hasattr(module, "stages") and hasattr(module, "balance")
            and "head" not in tuple(module.stages))


def _stage_ends(module: nn.Module) -> list[int]:
    """Block index where each feature stage ends (timm feature_info order)."""
    return [int(info["module"].split(".")[1]) for info in module.model.feature_info
            if "blocks" in info["module"]]


def embedding_columns(module: nn.Module, *, image_size: int) -> torch.Tensor:
    """(D,) bool: which feature columns of a pooled-stages ``module`` (with ``maps``) are
    the pooled embedding itself (the probe's features); the others are stage maps.
    From timm's feature_info (channels, reduction; a stage map is ceil(S / reduction) on
    a side), without running the network."""
    info = [i for i in module.model.feature_info if "blocks" in i["module"]]
    maps = getattr(module, "maps", ())
    cols: list[bool] = []
    for s in (int(s) for s in module.stages):
        c, side = int(info[s]["num_chs"]), -(-int(image_size) // int(info[s]["reduction"]))
        cols += [True] * c + ([False] * (c * side * side) if s in maps else [])
    return torch.tensor(cols)


def cut_for_blocks(module: nn.Module, blocks: int) -> int:
    """Index of the first trained block when the last ``blocks`` blocks that feed the
    features are trained (blocks after the last pooled stage are never used)."""
    last = _stage_ends(module)[max(int(s) for s in module.stages)]
    return max(0, last + 1 - int(blocks))


class StageSplit(nn.Module):
    """The backbone cut before block ``cut``: ``front`` (frozen) and ``tail`` (trained).

    Shares the modules of ``backbone`` (training the tail trains the backbone itself, so
    the exported backbone carries the new weights). ``activation_shape`` is (C, H, W) at
    the cut for ``image_size`` inputs; ``prefix_dim`` the width of the frozen pooled part.
    """

    def __init__(self, backbone: nn.Module, cut: int, *, image_size: int) -> None:
        super().__init__()
        if not splittable(backbone):
            raise ValueError(f"{type(backbone).__name__} cannot be split into cached front "
                             "and trained tail; fine-tune it on images (cache=False).")
        self.backbone = backbone
        self.cut = int(cut)
        ends = _stage_ends(backbone)
        self._stage_of_block = {b: i for i, b in enumerate(ends)}
        self._stages = tuple(int(s) for s in backbone.stages)
        self._last = ends[max(self._stages)]
        if not 0 <= self.cut <= self._last:
            raise ValueError(f"cut must be in [0, {self._last}] (got {cut}).")
        self._front_stages = [s for s in self._stages if ends[s] < self.cut]
        with torch.no_grad():
            dev = next(backbone.parameters()).device
            act, prefix = self.front(torch.zeros(1, 3, image_size, image_size, device=dev))
        self.activation_shape = tuple(act.shape[1:])
        self.prefix_dim = int(prefix.shape[1])

    def tail_modules(self) -> list[nn.Module]:
        """The trained blocks (``cut`` .. last used block)."""
        return list(self.backbone.model.blocks)[self.cut:self._last + 1]

    @torch.no_grad()
    def front(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,3,S,S) -> activation at the cut (B,C,H,W) and frozen pooled prefix (B,P)."""
        m = self.backbone.model
        x = m.bn1(m.conv_stem(x))
        pooled = {}
        for b, block in enumerate(m.blocks):
            if b >= self.cut:
                break
            x = block(x)
            stage = self._stage_of_block.get(b)
            if stage in self._front_stages:
                pooled[stage] = self._pool(x, stage)
        empty = x.new_zeros((x.shape[0], 0))
        return x, torch.cat([pooled[s] for s in self._front_stages], 1) if pooled else empty

    def _pool(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        """The stage's part of the features: pooled vector, then its map if in ``maps``."""
        parts = [x.mean(dim=(2, 3))]
        if stage in getattr(self.backbone, "maps", ()):
            parts.append(x.flatten(1))
        if self.backbone.balance:
            parts = [nn.functional.normalize(p, dim=1) for p in parts]
        return torch.cat(parts, 1)

    def forward(self, act: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Activation at the cut (B,C,H,W) + prefix (B,P) -> backbone features (B,D)."""
        m = self.backbone.model
        x = act
        parts = [prefix] if prefix.shape[1] else []
        for b in range(self.cut, self._last + 1):
            x = m.blocks[b](x)
            stage = self._stage_of_block.get(b)
            if stage is not None and stage in self._stages:
                parts.append(self._pool(x, stage))
        return torch.cat(parts, dim=1)


def view_batch(x: torch.Tensor, view: int, *, shift: int) -> torch.Tensor:
    """Deterministic augmented view ``view`` of preprocessed images x (B,3,S,S):
    0 = as is, 1 = horizontal flip, 2.. = shifts by ``shift`` pixels (edge-padded) in the
    four diagonal directions, alternating with flipped copies."""
    if view == 0:
        return x
    flip = view % 2 == 1
    out = x.flip(-1) if flip else x
    k = (view - 2) // 2 if view >= 2 else -1
    if k >= 0:
        dy, dx = [(1, 1), (-1, -1), (1, -1), (-1, 1)][k % 4]
        s = shift * (1 + k // 4)
        pad = nn.functional.pad(out, (s, s, s, s), mode="replicate")
        side_h, side_w = x.shape[2], x.shape[3]
        top, left = s + dy * s, s + dx * s
        out = pad[:, :, top:top + side_h, left:left + side_w]
    return out
