"""The quick fine-tuning loop: cached front activations, a trained tail.

The frozen front of the backbone (everything before the first trained block) runs once
per image and augmented view; its output is kept in an
:class:`~dfwidgets.activation_cache.ActivationCache` (on disk, keyed by content hash +
model + resolution + cut + view). An epoch then runs only the tail blocks and the head:
each training item is drawn in one of ``views`` cached views (as is, flipped, shifted),
so augmentation costs nothing per epoch. On CUDA the tail runs under autocast (mixed
precision) with a gradient scaler.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..activation_cache import ActivationCache, activation_key, item_hashes
from .finetune_tail import StageSplit, view_batch

__all__ = ["CachedData", "build_activations", "evaluate_cached", "train_epoch"]


@dataclass
class CachedData:
    """Activations of n items: ``views`` list of (n, F) float16/32 tensors (F = C*H*W + P),
    split back into (n,C,H,W) + (n,P) by :meth:`batch`. ``seconds``: time to build,
    ``computed``: rows the front had to compute (0 when all came from the cache)."""

    views: list[torch.Tensor]
    shape: tuple[int, int, int]
    seconds: float = 0.0
    computed: int = 0
    hits: int = 0
    stacked: torch.Tensor | None = field(default=None, repr=False)

    def batch(self, rows: np.ndarray, view: np.ndarray | int, device: str
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,C,H,W) float32 activations and (B,P) prefix of ``rows`` in ``view``(s)."""
        idx = torch.as_tensor(np.asarray(rows), dtype=torch.long)
        if np.isscalar(view):
            flat = self.views[int(view)][idx]
        else:
            if self.stacked is None:
                self.stacked = torch.stack(self.views)  # (V, n, F), built once
            flat = self.stacked[torch.as_tensor(np.asarray(view), dtype=torch.long), idx]
        flat = flat.to(device=device, dtype=torch.float32)
        c, h, w = self.shape
        n_act = c * h * w
        return flat[:, :n_act].reshape(-1, c, h, w), flat[:, n_act:]


def build_activations(split: StageSplit, images: list, transform: Callable[[Any], torch.Tensor],
                      *, model_key: str, image_size: int, views: int, shift: int, device: str,
                      check_cancel: Callable[[], None], cache_dir: Any = None,
                      use_cache: bool = True, batch_size: int = 128,
                      dtype: str = "float16") -> CachedData:
    """Front activations of ``images`` (n PIL) in ``views`` views, from the cache where
    possible; the missing ones are computed (``transform``: PIL -> (3,S,S)) and stored.
    ``dtype``: float16 (training views) or float32 (exact, for held-out measurement)."""
    t0 = time.perf_counter()
    hashes = item_hashes(images)
    out, computed, hits = [], 0, 0
    tensors: torch.Tensor | None = None
    for v in range(views):
        key = activation_key(model_key, image_size=image_size, cut=split.cut, view=v, dtype=dtype)
        cache = ActivationCache(key, cache_dir=cache_dir, dtype=dtype) if use_cache else None
        found, acts = cache.lookup(hashes) if cache is not None else (np.zeros(len(hashes), bool), None)
        width = int(np.prod(split.activation_shape)) + split.prefix_dim
        if acts is None or acts.shape[1] != width:
            acts, found = np.zeros((len(hashes), width), dtype), np.zeros(len(hashes), bool)
        missing = np.flatnonzero(~found)
        hits += int(found.sum())
        if len(missing):
            if tensors is None:
                tensors = torch.stack([transform(im) for im in images])
            new = []
            for i in range(0, len(missing), batch_size):
                check_cancel()
                rows = missing[i:i + batch_size]
                x = view_batch(tensors[rows].to(device), v, shift=shift)
                act, prefix = split.front(x)
                new.append(torch.cat([act.flatten(1), prefix], 1).float().cpu().numpy().astype(dtype))
            new_acts = np.concatenate(new)
            acts[missing] = new_acts
            computed += len(missing)
            if cache is not None:
                unique, first = np.unique(hashes[missing], return_index=True)
                cache.add(unique, new_acts[first])
        out.append(torch.from_numpy(acts))
    return CachedData(out, tuple(split.activation_shape), time.perf_counter() - t0, computed, hits)


def _logits(split: StageSplit, head: nn.Module, act: torch.Tensor, prefix: torch.Tensor
            ) -> torch.Tensor:
    return head(nn.functional.normalize(split(act, prefix), dim=1))


@torch.no_grad()
def evaluate_cached(split: StageSplit, head: nn.Module, data: CachedData, y: np.ndarray,
                    device: str, *, features: bool = False) -> tuple[float, float] | np.ndarray:
    """Mean cross-entropy and accuracy on view 0 of ``data`` with labels ``y`` (n,); with
    ``features`` the (n, D) L2-normalised features instead."""
    outs = []
    for i in range(0, len(y), 256):
        act, prefix = data.batch(np.arange(i, min(i + 256, len(y))), 0, device)
        f = nn.functional.normalize(split(act, prefix), dim=1)
        outs.append((f if features else head(f)).float().cpu())
    out = torch.cat(outs)
    if features:
        return out.numpy()
    yt = torch.as_tensor(y, dtype=torch.long)
    return float(nn.functional.cross_entropy(out, yt)), float((out.argmax(1) == yt).float().mean())


def train_epoch(split: StageSplit, head: nn.Module, data: CachedData, y: np.ndarray,
                order: list[int], *, opt: torch.optim.Optimizer, batch_size: int, device: str,
                rng: np.random.Generator, label_smoothing: float, scaler: Any,
                check_cancel: Callable[[], None],
                on_batch: Callable[[], None] | None = None) -> tuple[float, float]:
    """One pass over ``order`` (positions into ``y``), each item in a random cached view:
    (mean loss, accuracy)."""
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    n_views = len(data.views)
    losses, correct, seen = [], 0, 0
    cuda = device.startswith("cuda")
    head.train()
    for b in range(0, len(order), batch_size):
        check_cancel()
        ids = np.asarray(order[b:b + batch_size])
        views = rng.integers(0, n_views, len(ids))
        act, prefix = data.batch(ids, views, device)
        yb = torch.as_tensor(y[ids], dtype=torch.long, device=device)
        with torch.autocast("cuda", enabled=cuda):
            logits = _logits(split, head, act, prefix)
            loss = loss_fn(logits.float(), yb)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        losses.append(float(loss.detach()))
        correct += int((logits.argmax(1) == yb).sum())
        seen += len(ids)
        if on_batch:
            on_batch()
    head.eval()
    return float(np.mean(losses)), correct / max(seen, 1)


@dataclass
class CachedRun:
    """Result of :func:`fit_cached`: the model (ExportedModel over the whole backbone),
    epoch ``history`` rows, ``best`` (val_acc, -val_loss, epoch, trained state), whether it
    was cancelled, seconds to build the activations, rows computed / read from the cache,
    the cut block and the activation shape."""

    model: Any
    history: list[dict]
    best: tuple
    cancelled: bool
    cache_seconds: float
    computed: int
    hits: int
    cut: int
    shape: tuple[int, int, int]
    plain_probe: float | None = None


def fit_cached(backbone: nn.Module, head_fn: Callable[[np.ndarray, np.ndarray], nn.Module],
               make_model: Callable[[nn.Module], Any], train: tuple[list, np.ndarray],
               val: tuple[list, np.ndarray], *, transform: Callable[[Any], torch.Tensor],
               model_key: str, image_size: int, blocks: int, epochs: int, batch_size: int,
               lr: float, head_lr: float, weight_decay: float, views: int, shift: int,
               label_smoothing: float, patience: int, sampler: Any, seed: int, device: str,
               use_cache: bool, cache_dir: Any, check_cancel: Callable[[], None],
               on_epoch: Callable[[dict], None] | None,
               on_step: Callable[[int, int], None] | None, refit_head: bool = True
               ) -> CachedRun:
    """LP-FT on cached activations. ``head_fn(features (n,D), y (n,))`` makes the probe
    head; ``make_model(head)`` wraps backbone + head. With ``refit_head`` the head is
    fitted again by ``head_fn`` on the tuned features after every epoch (LP-FT-LP: the
    gradient-trained head over-fits the small training set, the regularised probe does
    not). Raises ``Cancelled`` (via ``check_cancel``) only before the probe exists;
    afterwards a cancel ends the run with the best state so far."""
    from .finetune_parts import BestEpoch, Cancelled
    from .finetune_tail import StageSplit, cut_for_blocks, embedding_columns

    split = StageSplit(backbone, cut_for_blocks(backbone, blocks), image_size=image_size)
    opts = {"model_key": model_key, "image_size": image_size, "shift": shift, "device": device,
            "check_cancel": check_cancel, "cache_dir": cache_dir, "use_cache": use_cache}
    data = build_activations(split, train[0], transform, views=views, **opts)
    vdata = build_activations(split, val[0], transform, views=1, dtype="float32", **opts)
    y, val_y = train[1], val[1]
    feats = evaluate_cached(split, None, data, y, device, features=True)
    head = head_fn(feats, y).to(device)
    plain = None
    if getattr(backbone, "maps", ()):  # the bar to beat: the probe on the plain embedding
        cols = embedding_columns(backbone, image_size=image_size).numpy()
        plain_head = head_fn(_renorm(feats[:, cols]), y).to(device)
        val_feats = evaluate_cached(split, None, vdata, val_y, device, features=True)
        with torch.no_grad():
            pred = plain_head(torch.as_tensor(_renorm(val_feats[:, cols]), device=device))
        plain = float((pred.argmax(1).cpu().numpy() == val_y).mean())
    model = make_model(head)
    tail = [p for m in split.tail_modules() for p in m.parameters()]
    for p in tail:
        p.requires_grad_(True)
    val_loss, val_acc = evaluate_cached(split, head, vdata, val_y, device)
    keeper = BestEpoch(model, {"epoch": 0, "train_loss": np.nan, "train_acc": np.nan,
                               "val_loss": val_loss, "val_acc": val_acc, "seconds": 0.0},
                       patience=patience, on_epoch=on_epoch)
    opt = torch.optim.AdamW([{"params": tail, "lr": lr},
                             {"params": list(head.parameters()), "lr": head_lr}],
                            weight_decay=weight_decay)
    n_batches = int(np.ceil(len(y) / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[lr, head_lr], total_steps=max(n_batches * epochs, 2), pct_start=0.15)
    scaler = torch.amp.GradScaler("cuda") if device.startswith("cuda") else None
    rng = np.random.default_rng(seed)
    done, cancelled = 0, False

    def step() -> None:
        nonlocal done
        sched.step()
        done += 1
        if on_step:
            on_step(done, n_batches * epochs)

    try:
        for epoch in range(1, epochs + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            loss, acc = train_epoch(split, head, data, y, list(sampler), opt=opt,
                                    batch_size=batch_size, device=device, rng=rng,
                                    label_smoothing=label_smoothing, scaler=scaler,
                                    check_cancel=check_cancel, on_batch=step)
            if refit_head:
                tuned = evaluate_cached(split, None, data, y, device, features=True)
                _refit(head, _cancellable(lambda f=tuned: head_fn(f, y), check_cancel))
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            val_loss, val_acc = evaluate_cached(split, head, vdata, val_y, device)
            if keeper.add({"epoch": epoch, "train_loss": loss, "train_acc": acc,
                           "val_loss": val_loss, "val_acc": val_acc, "seconds": seconds,
                           "cpu_seconds": cpu}):
                break
    except Cancelled:
        cancelled = True
    return CachedRun(model, keeper.history, keeper.best, cancelled, data.seconds + vdata.seconds,
                     data.computed + vdata.computed, data.hits + vdata.hits, split.cut,
                     split.activation_shape, plain)


def _renorm(x: np.ndarray) -> np.ndarray:
    """(n, D) rows scaled to unit length."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@torch.no_grad()
def _refit(head: nn.Linear, fitted: nn.Linear) -> None:
    """Copy the weights of ``fitted`` (K, D) into ``head`` in place (the model holds it)."""
    head.weight.copy_(fitted.weight.to(head.weight.device))
    head.bias.copy_(fitted.bias.to(head.bias.device))


def _cancellable(fn: Callable[[], Any], check_cancel: Callable[[], None], *,
                 poll: float = 0.05) -> Any:
    """``fn()`` in a worker thread, checking ``check_cancel`` every ``poll`` s so a cancel
    is answered within a second even while a long probe fit runs (its result is dropped)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["out"] = fn()
        except Exception as exc:  # noqa: BLE001 (re-raised in the caller's thread below)
            box["err"] = exc

    worker = threading.Thread(target=run, name="dfw-refit-head", daemon=True)
    worker.start()
    while worker.is_alive():
        check_cancel()
        worker.join(poll)
    if "err" in box:
        raise box["err"]
    return box["out"]
