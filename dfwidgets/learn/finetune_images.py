"""The uncached fine-tuning loop: every epoch runs the whole backbone on augmented images.

Used for backbones the quick path cannot split (open_clip ViTs) or with ``cache=False``;
it is also the reference the cached recipe is measured against (benchmarks/train.py).
Augmentation: RandomResizedCrop (+ flips) on the images, every epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .finetune_cached import CachedRun
from .finetune_parts import (
    BestEpoch,
    Cancelled,
    class_sampler,
    loss_and_accuracy,
    normalised_features,
)

__all__ = ["fit_images"]


def _prune_unused(tail: list[nn.Parameter], backbone: nn.Module) -> list[nn.Parameter]:
    """Freeze tail parameters that got no gradient (e.g. an unused classifier)."""
    used = [p for p in tail if p.grad is not None]
    if not used:
        raise RuntimeError(f"The trained blocks do not reach the features of "
                           f"{type(backbone).__name__}; fine-tuning would change nothing.")
    for p in tail:
        if p.grad is None:
            p.requires_grad_(False)
    return used


def fit_images(backbone: nn.Module, tail: list[nn.Parameter],
               head_fn: Callable[[np.ndarray, np.ndarray], nn.Module],
               make_model: Callable[[nn.Module], Any], train: tuple[list, np.ndarray],
               val: tuple[list, np.ndarray], *, eval_tf: Callable, train_tf: Callable,
               epochs: int, batch_size: int, lr: float, head_lr: float, weight_decay: float,
               patience: int, balanced: bool, seed: int, device: str, progress: bool,
               check_cancel: Callable[[], None], on_epoch: Callable[[dict], None] | None,
               on_step: Callable[[int, int], None] | None) -> CachedRun:
    """LP-FT on images (PIL lists ``train``/``val`` with int labels): probe head first,
    then ``tail`` + head with AdamW; best held-out epoch kept. Raises ``Cancelled`` only
    before the probe exists."""
    from tqdm.auto import tqdm

    pil, y = train
    val_pil, val_y = val
    for p in tail:
        p.requires_grad_(True)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x_val = torch.stack([eval_tf(im) for im in val_pil])
    feats = normalised_features(backbone, torch.stack([eval_tf(im) for im in pil]), device)
    head = head_fn(feats, y).to(device)
    model = make_model(head)
    n_classes = head.out_features
    val_loss, val_acc = loss_and_accuracy(model, x_val, val_y, device)
    keeper = BestEpoch(model, {"epoch": 0, "train_loss": np.nan, "train_acc": np.nan,
                               "val_loss": val_loss, "val_acc": val_acc, "seconds": 0.0},
                       patience=patience, on_epoch=on_epoch)
    opt = torch.optim.AdamW([{"params": tail, "lr": lr},
                             {"params": list(head.parameters()), "lr": head_lr}],
                            weight_decay=weight_decay)
    sampler = class_sampler(y, n_classes, balanced=balanced, generator=gen)
    n_batches = int(np.ceil(len(y) / batch_size))
    done, cancelled = 0, False
    loss_fn = nn.CrossEntropyLoss()
    try:
        for epoch in range(1, epochs + 1):
            te = time.perf_counter()
            order = list(sampler)
            losses, correct, seen = [], 0, 0
            head.train()
            bar = tqdm(total=n_batches, desc=f"fine-tune epoch {epoch}/{epochs}",
                       disable=not progress, leave=False)
            try:
                for b in range(n_batches):
                    check_cancel()
                    ids = order[b * batch_size:(b + 1) * batch_size]
                    xb = torch.stack([train_tf(pil[i]) for i in ids]).to(device)
                    yb = torch.as_tensor(y[ids], dtype=torch.long, device=device)
                    logits = model(xb)
                    loss = loss_fn(logits, yb)
                    check_cancel()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if epoch == 1 and b == 0:
                        tail = _prune_unused(tail, backbone)
                    opt.step()
                    losses.append(float(loss.detach()))
                    correct += int((logits.argmax(1) == yb).sum())
                    seen += len(ids)
                    done += 1
                    bar.update(1)
                    if on_step:
                        on_step(done, n_batches * epochs)
            finally:
                bar.close()
            head.eval()
            seconds = time.perf_counter() - te
            val_loss, val_acc = loss_and_accuracy(model, x_val, val_y, device)
            if keeper.add({"epoch": epoch, "train_loss": float(np.mean(losses)),
                           "train_acc": correct / seen, "val_loss": val_loss,
                           "val_acc": val_acc, "seconds": seconds}):
                break
    except Cancelled:
        cancelled = True
    return CachedRun(model, keeper.history, keeper.best, cancelled, 0.0, 0, 0, -1, (0, 0, 0))
