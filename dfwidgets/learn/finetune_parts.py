"""The pieces fine-tuning is built from: images and labels in, the held-out split,
augmentation, the backbone blocks to train, the linear head, and the closing verdict.

Pure functions over arrays, tensors and modules; :class:`~dfwidgets.learn.finetune.FineTuner`
runs the training loop with them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..exported_model import _open_image, build_transform

__all__ = [
    "BestEpoch", "Cancelled", "as_pil_list", "class_sampler", "encode_labels", "eval_transform", "find_tail",
    "head_from_coef", "loss_and_accuracy", "normalised_features", "probe_head",
    "stratified_split", "train_transform", "trainable_state", "verdict",
]

_BLOCK_CONTAINERS = ("blocks", "resblocks", "layers", "stages")


class Cancelled(Exception):
    """Raised inside the training loop when the cancel event is set."""


def find_tail(module: nn.Module, n_blocks: int) -> tuple[list[str], list[nn.Parameter]]:
    """Names of the last ``n_blocks`` blocks of ``module`` and the parameters to train.

    The block container is the largest ``Sequential``/``ModuleList`` named ``blocks``,
    ``resblocks``, ``layers`` or ``stages`` (timm EfficientNet: ``blocks``, one entry per
    stage; open_clip ViT: ``transformer.resblocks``). Every parameter registered after the
    container (final conv, norm, projection) is trained too.
    """
    if n_blocks < 1:
        raise ValueError(f"blocks must be >= 1 (got {n_blocks}); use mode='probe' for none.")
    best: tuple[int, str, nn.Module] | None = None
    for name, sub in module.named_modules():
        if name.rsplit(".", 1)[-1] in _BLOCK_CONTAINERS and isinstance(
            sub, (nn.Sequential, nn.ModuleList)
        ) and len(sub) >= 2:
            size = sum(p.numel() for p in sub.parameters())
            if best is None or size > best[0]:
                best = (size, name, sub)
    if best is None:
        raise ValueError(
            f"Cannot find the blocks of {type(module).__name__} to fine-tune (looked for a "
            f"Sequential/ModuleList named one of {_BLOCK_CONTAINERS}); use mode='probe'."
        )
    _, cname, container = best
    n = min(n_blocks, len(container))
    block_names = [f"{cname}.{i}" for i in range(len(container) - n, len(container))]
    prefix = tuple(b + "." for b in block_names)
    order = list(module.named_parameters())
    last_inside = max(i for i, (name, _) in enumerate(order) if name.startswith(cname + "."))
    params = [p for i, (name, p) in enumerate(order) if name.startswith(prefix) or i > last_inside]
    return block_names, params


def as_pil_list(images: Any) -> list:
    """ImageSource, paths or PIL images (n items, or one) -> list of n RGB PIL images."""
    from PIL import Image

    from ..data import ImageSource

    if isinstance(images, ImageSource):
        return [images[i].convert("RGB") for i in range(len(images))]
    if isinstance(images, (str, Image.Image)):
        images = [images]
    return [_open_image(im) for im in images]


def encode_labels(y: Any, classes: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    """Labels ``(n,)`` (indices into ``classes`` or class names) -> int64 ``(n,)`` and names."""
    arr = np.asarray(y)
    if arr.dtype.kind in "iu":
        if classes is None:
            classes = [str(c) for c in range(int(arr.max()) + 1)] if len(arr) else []
        if len(arr) and (arr.min() < 0 or arr.max() >= len(classes)):
            raise ValueError(f"Label indices must be in [0, {len(classes)}); got {arr.min()}..{arr.max()}.")
        return arr.astype(np.int64), [str(c) for c in classes]
    names = [str(v) for v in arr.tolist()]
    if classes is None:
        classes = sorted(set(names))
    lookup = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(names) - set(lookup))
    if unknown:
        raise ValueError(f"Labels {unknown[:5]} are not among the classes {list(classes)}.")
    return np.asarray([lookup[n] for n in names], dtype=np.int64), [str(c) for c in classes]


def stratified_split(y: np.ndarray, share: float, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) positions into ``y`` ``(n,)``; each class keeps >= 1 training item,
    and holds out round(share * count) items when it has >= 2."""
    tr, va = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_va = round(share * len(idx)) if len(idx) >= 2 else 0
        n_va = min(n_va, len(idx) - 1)
        va.extend(idx[:n_va])
        tr.extend(idx[n_va:])
    return np.sort(np.asarray(tr, dtype=np.int64)), np.sort(np.asarray(va, dtype=np.int64))


def class_sampler(y: np.ndarray, k: int, *, balanced: bool, generator: torch.Generator
                  ) -> torch.utils.data.WeightedRandomSampler:
    """Draws ``n`` positions into ``y`` ``(n,)`` with replacement; with ``balanced`` each of
    the ``k`` classes is equally likely per draw."""
    weights = 1.0 / np.bincount(y, minlength=k)[y] if balanced else np.ones(len(y))
    return torch.utils.data.WeightedRandomSampler(
        torch.as_tensor(weights, dtype=torch.double), num_samples=len(y), replacement=True,
        generator=generator)


def eval_transform(prep: dict) -> Callable[[Any], torch.Tensor]:
    """The embedder's own preprocessing (PIL -> (3, S, S)) described by ``prep``."""
    return build_transform(prep)


def train_transform(prep: dict, *, crop_scale: tuple[float, float], hflip: bool
                    ) -> Callable[[Any], torch.Tensor]:
    """Augmentation for training: RandomResizedCrop to the model's side (+ flips), then
    the embedder's normalisation; PIL -> (3, S, S)."""
    from torchvision import transforms as T

    size = prep.get("crop") or prep.get("resize") or prep["image_size"]
    side = int(size[0] if isinstance(size, (list, tuple)) else size)
    steps: list[Any] = [
        T.RandomResizedCrop(side, scale=tuple(crop_scale), ratio=(0.9, 1.1), antialias=True,
                            interpolation=T.InterpolationMode(prep["interpolation"]))
    ]
    if hflip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize(prep["mean"], prep["std"])]
    return T.Compose(steps)


def probe_head(features: np.ndarray, y: np.ndarray, k: int, *, c: float | None = None) -> nn.Linear:
    """Linear(D,K) from the project's LinearProbe (softmax regression) on (n,D) features
    with labels y (n,) in [0,K); classes without labels get zero weights."""
    from .linear_probe import LinearProbe

    probe = LinearProbe(classes=list(range(k)), **({} if c is None else {"C": c}))
    probe.fit(np.asarray(features, dtype=np.float32), np.asarray(y, dtype=np.int64))
    return head_from_coef(probe.coef_, probe.intercept_)


def head_from_coef(coef: np.ndarray, intercept: np.ndarray) -> nn.Linear:
    """nn.Linear with weight ``coef`` (K,D) and bias ``intercept`` (K,)."""
    head = nn.Linear(coef.shape[1], coef.shape[0])
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(np.asarray(coef), dtype=torch.float32))
        head.bias.copy_(torch.as_tensor(np.asarray(intercept), dtype=torch.float32))
    return head


@torch.no_grad()
def normalised_features(backbone: nn.Module, x: torch.Tensor, device: str) -> np.ndarray:
    """``(n, D)`` L2-normalised backbone features of the preprocessed images ``x`` (n, 3, S, S)."""
    out = []
    for i in range(0, len(x), 64):
        f = backbone(x[i:i + 64].to(device)).flatten(1)
        out.append(nn.functional.normalize(f, dim=1).cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def loss_and_accuracy(model: nn.Module, x: torch.Tensor, y: np.ndarray, device: str
                      ) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on images ``x`` (n, 3, S, S), labels ``y`` (n,)."""
    logits = torch.cat([model(x[i:i + 64].to(device)).cpu() for i in range(0, len(x), 64)])
    yt = torch.as_tensor(y, dtype=torch.long)
    loss = float(nn.functional.cross_entropy(logits, yt))
    return loss, float((logits.argmax(1) == yt).float().mean())


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of the tensors of ``model`` that are being trained (``requires_grad``)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {n: t.detach().clone() for n, t in model.state_dict().items() if n in names}


class BestEpoch:
    """Early-stopping bookkeeping shared by the training loops: the epoch ``history``
    (rows passed to ``on_epoch`` too), the best epoch by held-out (accuracy, -loss) with
    copies of its trained tensors (epoch 0 = the probe head), and when to stop
    (``patience`` epochs in a row without improvement)."""

    def __init__(self, model: nn.Module, first: dict, *, patience: int,
                 on_epoch: Callable[[dict], None] | None = None) -> None:
        self.model, self.patience, self.on_epoch = model, int(patience), on_epoch
        self.history: list[dict] = []
        self.stale = 0
        self.best: tuple = (first["val_acc"], -first["val_loss"], int(first["epoch"]),
                            trainable_state(model))
        self._record(first)

    def _record(self, row: dict) -> None:
        self.history.append(row)
        if self.on_epoch:
            self.on_epoch(row)

    def add(self, row: dict) -> bool:
        """Record an epoch row (keys epoch, val_acc, val_loss, ...); True when training
        should stop."""
        self._record(row)
        if (row["val_acc"], -row["val_loss"]) > self.best[:2]:
            self.best = (row["val_acc"], -row["val_loss"], int(row["epoch"]),
                         trainable_state(self.model))
            self.stale = 0
            return False
        self.stale += 1
        return self.stale >= self.patience


def verdict(history: pd.DataFrame, *, n_val: int, probe_accuracy: float, best_epoch: int,
            improved: bool, cancelled: bool, best_accuracy: float | None = None) -> str:
    """One honest sentence on which model was kept and why, from the epoch ``history``
    (column ``val_acc``; row 0 = the probe) and the held-out numbers."""
    from .evaluate import wilson_interval

    n, probe = n_val, probe_accuracy
    tuned = history["val_acc"].iloc[1:]
    prefix = f"Training was cancelled after {len(tuned)} epoch(s). " if cancelled else ""
    if tuned.empty:
        return prefix + (f"No fine-tuning epoch finished; kept the linear probe "
                         f"({probe:.1%} on {n} held-out labels).")
    top = float(tuned.max())
    if improved and best_accuracy is not None:
        top = float(best_accuracy)
    lo_p, hi_p = wilson_interval(round(probe * n), n)
    lo_t, hi_t = wilson_interval(round(top * n), n)
    noise = (f" The difference is within the noise of {n} held-out labels (95% intervals "
             f"{lo_p:.0%}-{hi_p:.0%} vs {lo_t:.0%}-{hi_t:.0%}).")
    overlap = lo_t <= hi_p and lo_p <= hi_t
    if improved:
        which = (": its head on the stage maps, before any block was trained"
                 if best_epoch == 0 else "")
        return prefix + (f"Fine-tuning reached {top:.1%} on {n} held-out labels vs "
                         f"{probe:.1%} for the linear probe: kept the fine-tuned model "
                         f"(epoch {best_epoch}{which}).") + (noise if overlap else "")
    how = "worse" if top < probe else "no better"
    return prefix + (f"Fine-tuning reached at best {top:.1%} on {n} held-out labels vs "
                     f"{probe:.1%} for the linear probe: kept the linear probe "
                     f"(fine-tuning was {how}).") + (noise if overlap else "")
