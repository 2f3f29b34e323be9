"""Fine-tune the last blocks of an embedder's backbone on labeled images.

``FineTuner`` is sklearn-shaped (``fit`` returns ``self``, learned attributes end in
``_``) and also runs in a background thread (``start`` / ``cancel`` / ``wait``).
Recipe (LP-FT: linear probe first, then fine-tune, which keeps pretrained features
from being distorted by a random head):

1. hold out a stratified share of the labels (or use the given validation items);
2. fit a logistic-regression head on the frozen, L2-normalised features (the probe);
3. unfreeze the last ``blocks`` blocks of the backbone (plus what follows them, e.g. the
   final conv / layer norm), keep BatchNorm statistics frozen, and train with
   RandomResizedCrop (+ horizontal flips where sensible), class-balanced sampling, AdamW;
4. after every epoch measure accuracy on the held-out labels; keep the best epoch
   (epoch 0 = the probe) and stop after ``patience`` epochs without improvement.

Cancellation is checked between batches and before every backbone block, so
``cancel()`` stops training within a fraction of a second even with large inputs.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..exported_model import ExportedModel, _open_image, describe_transform

logger = logging.getLogger(__name__)

__all__ = ["FineTuner"]

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


class FineTuner:
    """Fine-tune the last blocks of an embedder's backbone with a linear head.

    Args:
        embedder: an Embedder or a name for ``get_embedder`` (default the offline
            ``"efficientnet_lite0"``). Its module is copied; the embedder is not changed.
        blocks: how many of the last backbone blocks to train.
        epochs: maximum number of epochs.
        batch_size: images per step (small on CPU keeps Cancel responsive).
        lr: learning rate of the backbone blocks; ``head_lr`` of the head.
        weight_decay: AdamW weight decay.
        crop_scale: RandomResizedCrop area range.
        hflip: random horizontal flips (turn off for text, digits, asymmetric scenes).
        balanced: class-balanced sampling (each class equally likely per draw).
        patience: epochs without held-out improvement before stopping.
        holdout: share of the labels held out for early stopping when no validation
            items are given (at least one per class is kept for training).
        probe_c: ``C`` of the LinearProbe that initialises the head (None: its default).
        threads: torch threads during ``fit`` (None leaves the setting alone).
        device: torch device (default: cuda > mps > cpu).
        random_state: seed for the split, sampling and augmentation.
        progress: show a tqdm bar per epoch.

    Learned attributes: ``model_`` (ExportedModel), ``classes_``, ``history_`` (DataFrame
    epoch, train_loss, train_acc, val_loss, val_acc, seconds (training only)), ``probe_accuracy_`` (held-out
    accuracy of the probe head, epoch 0), ``best_epoch_``, ``best_accuracy_``,
    ``improved_`` (fine-tuning beat the probe on the held-out labels), ``n_val_``,
    ``cancelled_``, ``error_``, ``seconds_``, ``blocks_`` (names of the trained blocks),
    ``verdict_`` (one sentence: which model was kept and why, with the held-out numbers).
    """

    def __init__(
        self,
        embedder: Any = "efficientnet_lite0",
        *,
        blocks: int = 1,
        epochs: int = 3,
        batch_size: int = 16,
        lr: float = 3e-4,
        head_lr: float = 3e-4,
        weight_decay: float = 1e-4,
        crop_scale: tuple[float, float] = (0.8, 1.0),
        hflip: bool = True,
        balanced: bool = True,
        patience: int = 1,
        holdout: float = 0.2,
        probe_c: float | None = None,
        threads: int | None = None,
        device: str | None = None,
        random_state: int = 0,
        progress: bool = True,
    ) -> None:
        self.embedder = embedder
        self.blocks = blocks
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.head_lr = head_lr
        self.weight_decay = weight_decay
        self.crop_scale = crop_scale
        self.hflip = hflip
        self.balanced = balanced
        self.patience = patience
        self.holdout = holdout
        self.probe_c = probe_c
        self.threads = threads
        self.device = device
        self.random_state = random_state
        self.progress = progress
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ background
    def start(self, images: Any, y: Any, **kwargs: Any) -> threading.Thread:
        """Run :meth:`fit` in a daemon thread; errors land in ``error_``."""
        if self.running:
            raise RuntimeError("This FineTuner is already training; cancel() or wait() first.")
        self._cancel.clear()
        self.error_ = None

        def run() -> None:
            try:
                self.fit(images, y, **kwargs)
            except Exception as exc:  # reported to the caller through error_
                logger.exception("fine-tuning failed")
                self.error_ = exc

        self._thread = threading.Thread(target=run, name="dfw-finetune", daemon=True)
        self._thread.start()
        return self._thread

    def cancel(self) -> None:
        """Ask the training loop to stop (it stops before the next block or batch)."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background run; True when it has finished."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        """True while a background run is going."""
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        images: Any,
        y: Any,
        *,
        classes: Sequence[str] | None = None,
        val: tuple[Any, Any] | None = None,
        on_epoch: Callable[[dict], None] | None = None,
        on_step: Callable[[int, int], None] | None = None,
    ) -> FineTuner:
        """Fine-tune on ``images`` (ImageSource, paths or PIL images; n items) with labels
        ``y`` (n,) (class indices into ``classes`` or class names).

        ``val``: optional (images, labels) for early stopping instead of a held-out share.
        ``on_epoch(row)`` gets each history row; ``on_step(done, total)`` each batch.
        Cancel with :meth:`cancel` (from another thread): the best weights so far are kept.
        """
        t0 = time.perf_counter()
        if threading.current_thread() is not self._thread:
            self._cancel.clear()  # a direct call; start() clears before its thread runs
        self.cancelled_ = False
        self.error_ = None
        old_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(int(self.threads))
        try:
            self._fit(images, y, classes=classes, val=val, on_epoch=on_epoch, on_step=on_step)
        finally:
            if self.threads:
                torch.set_num_threads(old_threads)
            self.seconds_ = time.perf_counter() - t0
        return self

    def _fit(self, images, y, *, classes, val, on_epoch, on_step) -> None:
        import pandas as pd
        from torchvision import transforms as T
        from tqdm.auto import tqdm

        from .._config import select_device

        pil = _as_pil_list(images)
        y_idx, self.classes_ = _encode_labels(y, classes)
        if len(pil) != len(y_idx):
            raise ValueError(f"Got {len(pil)} images but {len(y_idx)} labels; pass one label per image.")
        k = len(self.classes_)
        present = np.unique(y_idx)
        if len(present) < 2:
            raise ValueError("Fine-tuning needs labeled images of at least 2 classes.")
        rng = np.random.default_rng(self.random_state)
        if val is None:
            tr_idx, va_idx = _stratified_split(y_idx, self.holdout, rng)
            val_pil = [pil[i] for i in va_idx]
            val_y = y_idx[va_idx]
            pil = [pil[i] for i in tr_idx]
            y_idx = y_idx[tr_idx]
            self.val_indices_ = va_idx
        else:
            val_pil = _as_pil_list(val[0])
            val_y, _ = _encode_labels(val[1], self.classes_)
            self.val_indices_ = None
        if len(val_y) == 0:
            raise ValueError("No labels are left for the held-out check; label more images.")
        self.n_train_, self.n_val_ = len(y_idx), len(val_y)

        embedder = self.embedder
        if isinstance(embedder, str):
            from ..embed import get_embedder

            embedder = get_embedder(embedder)
        device = select_device(self.device)
        backbone = copy.deepcopy(embedder.module).to(device)
        prep = describe_transform(embedder.transform, image_size=int(embedder.image_size))
        eval_tf = _build_eval(prep)
        side = _output_side(prep)
        steps: list[Any] = [
            T.RandomResizedCrop(side, scale=tuple(self.crop_scale), ratio=(0.9, 1.1), antialias=True,
                                interpolation=T.InterpolationMode(prep["interpolation"]))
        ]
        if self.hflip:
            steps.append(T.RandomHorizontalFlip())
        steps += [T.ToTensor(), T.Normalize(prep["mean"], prep["std"])]
        train_tf = T.Compose(steps)

        backbone.eval()
        for p in backbone.parameters():
            p.requires_grad_(False)
        self.blocks_, tail = find_tail(backbone, self.blocks)
        for p in tail:
            p.requires_grad_(True)
        hooks = [
            m.register_forward_pre_hook(self._check_cancel)
            for m in backbone.modules() if m is not backbone
        ]

        gen = torch.Generator().manual_seed(self.random_state)
        torch.manual_seed(self.random_state)
        try:
            x_eval_train = [eval_tf(im) for im in pil]
            x_val = torch.stack([eval_tf(im) for im in val_pil])
            # 1. probe head on frozen features (LP-FT)
            feats = self._features(backbone, torch.stack(x_eval_train), device)
            head = probe_head(feats, y_idx, k, c=self.probe_c).to(device)
            model = ExportedModel(
                backbone, head, classes=self.classes_, preprocessing=prep,
                architecture={"embedder": getattr(embedder, "name", str(self.embedder)),
                              "mode": "finetune", "blocks": self.blocks_},
            ).to(device)
            val_loss, val_acc = self._evaluate(model, x_val, val_y, device)
            self.probe_accuracy_ = val_acc
            history = [dict(epoch=0, train_loss=np.nan, train_acc=np.nan, val_loss=val_loss,
                            val_acc=val_acc, seconds=0.0)]
            if on_epoch:
                on_epoch(history[0])
            best = (val_acc, -val_loss, 0, _trainable_state(model))
            params = [{"params": tail, "lr": self.lr},
                      {"params": list(head.parameters()), "lr": self.head_lr}]
            opt = torch.optim.AdamW(params, weight_decay=self.weight_decay)
            weights = 1.0 / np.bincount(y_idx, minlength=k)[y_idx]
            if not self.balanced:
                weights = np.ones(len(y_idx))
            sampler = torch.utils.data.WeightedRandomSampler(
                torch.as_tensor(weights, dtype=torch.double), num_samples=len(y_idx),
                replacement=True, generator=gen)
            n_batches = int(np.ceil(len(y_idx) / self.batch_size))
            total_steps = n_batches * self.epochs
            done_steps = 0
            stale = 0
            loss_fn = nn.CrossEntropyLoss()
            for epoch in range(1, self.epochs + 1):
                te = time.perf_counter()
                order = list(sampler)
                losses, correct, seen = [], 0, 0
                head.train()
                bar = tqdm(total=n_batches, desc=f"fine-tune epoch {epoch}/{self.epochs}",
                           disable=not self.progress, leave=False)
                try:
                    for b in range(n_batches):
                        self._check_cancel()
                        ids = order[b * self.batch_size:(b + 1) * self.batch_size]
                        xb = torch.stack([train_tf(pil[i]) for i in ids]).to(device)
                        yb = torch.as_tensor(y_idx[ids], dtype=torch.long, device=device)
                        logits = model(xb)
                        loss = loss_fn(logits, yb)
                        self._check_cancel()
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        if epoch == 1 and b == 0:
                            tail = self._prune_unused(tail, backbone)
                        opt.step()
                        losses.append(float(loss.detach()))
                        correct += int((logits.argmax(1) == yb).sum())
                        seen += len(ids)
                        done_steps += 1
                        bar.update(1)
                        if on_step:
                            on_step(done_steps, total_steps)
                finally:
                    bar.close()
                head.eval()
                train_seconds = time.perf_counter() - te
                val_loss, val_acc = self._evaluate(model, x_val, val_y, device)
                row = dict(epoch=epoch, train_loss=float(np.mean(losses)), train_acc=correct / seen,
                           val_loss=val_loss, val_acc=val_acc, seconds=train_seconds)
                history.append(row)
                logger.info("epoch %d: %s", epoch, row)
                if on_epoch:
                    on_epoch(row)
                if (val_acc, -val_loss) > best[:2]:
                    best = (val_acc, -val_loss, epoch, _trainable_state(model))
                    stale = 0
                else:
                    stale += 1
                    if stale >= self.patience:
                        break
        except Cancelled:
            self.cancelled_ = True
            logger.info("fine-tuning cancelled")
            if "history" not in locals():
                self.model_ = None
                self.history_ = pd.DataFrame()
                self.verdict_ = "Training was cancelled before a model was trained."
                return
        finally:
            for h in hooks:
                h.remove()
        model.load_state_dict(best[3], strict=False)
        for p in model.parameters():
            p.requires_grad_(False)
        model.eval()
        self.history_ = pd.DataFrame(history)
        self.best_accuracy_ = float(best[0])
        self.best_epoch_ = int(best[2])
        self.improved_ = self.best_epoch_ > 0 and self.best_accuracy_ > self.probe_accuracy_
        self.model_ = model
        self.verdict_ = self._verdict()

    def _verdict(self) -> str:
        """One honest sentence on which model was kept and why."""
        from .evaluate import wilson_interval

        n = self.n_val_
        probe = self.probe_accuracy_
        tuned = self.history_["val_acc"].iloc[1:]
        prefix = ""
        if self.cancelled_:
            prefix = f"Training was cancelled after {len(tuned)} epoch(s). "
        if tuned.empty:
            return prefix + (f"No fine-tuning epoch finished; kept the linear probe "
                             f"({probe:.1%} on {n} held-out labels).")
        top = float(tuned.max())
        lo_p, hi_p = wilson_interval(round(probe * n), n)
        lo_t, hi_t = wilson_interval(round(top * n), n)
        noise = (f" The difference is within the noise of {n} held-out labels (95% intervals "
                 f"{lo_p:.0%}-{hi_p:.0%} vs {lo_t:.0%}-{hi_t:.0%}).")
        overlap = lo_t <= hi_p and lo_p <= hi_t
        if self.improved_:
            return prefix + (f"Fine-tuning reached {top:.1%} on {n} held-out labels vs "
                             f"{probe:.1%} for the linear probe: kept the fine-tuned model "
                             f"(epoch {self.best_epoch_}).") + (noise if overlap else "")
        how = "worse" if top < probe else "no better"
        return prefix + (f"Fine-tuning reached at best {top:.1%} on {n} held-out labels vs "
                         f"{probe:.1%} for the linear probe: kept the linear probe "
                         f"(fine-tuning was {how}).") + (noise if overlap else "")

    def _prune_unused(self, tail: list[nn.Parameter], backbone: nn.Module) -> list[nn.Parameter]:
        """Freeze tail parameters that got no gradient (e.g. an unused classifier)."""
        used = [p for p in tail if p.grad is not None]
        if not used:
            raise RuntimeError(
                f"The blocks {self.blocks_} do not reach the features of "
                f"{type(backbone).__name__}; fine-tuning would change nothing.")
        for p in tail:
            if p.grad is None:
                p.requires_grad_(False)
        return used

    def _check_cancel(self, *args: Any) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    @torch.no_grad()
    def _features(self, backbone: nn.Module, x: torch.Tensor, device: str) -> np.ndarray:
        out = []
        for i in range(0, len(x), 64):
            f = backbone(x[i:i + 64].to(device)).flatten(1)
            out.append(nn.functional.normalize(f, dim=1).cpu())
        return torch.cat(out).numpy()

    @torch.no_grad()
    def _evaluate(self, model: ExportedModel, x: torch.Tensor, y: np.ndarray, device: str
                  ) -> tuple[float, float]:
        logits = torch.cat([model(x[i:i + 64].to(device)).cpu() for i in range(0, len(x), 64)])
        yt = torch.as_tensor(y, dtype=torch.long)
        loss = float(nn.functional.cross_entropy(logits, yt))
        return loss, float((logits.argmax(1) == yt).float().mean())

    def predict_proba(self, images: Any) -> np.ndarray:
        """(N,K) float32 probabilities from the fitted model."""
        return self.model_.predict_proba(images)

    def predict(self, images: Any) -> np.ndarray:
        """(N,) predicted class names."""
        return self.model_.predict(images)


# ---------------------------------------------------------------------- helpers
def _as_pil_list(images: Any) -> list:
    from PIL import Image

    from ..data import ImageSource

    if isinstance(images, ImageSource):
        return [images[i].convert("RGB") for i in range(len(images))]
    if isinstance(images, (str, Image.Image)):
        images = [images]
    return [_open_image(im) for im in images]


def _encode_labels(y: Any, classes: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
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


def _stratified_split(y: np.ndarray, share: float, rng: np.random.Generator
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) positions; each class keeps >= 1 training item, and holds out
    round(share * count) items when it has >= 2."""
    tr, va = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_va = int(round(share * len(idx))) if len(idx) >= 2 else 0
        n_va = min(n_va, len(idx) - 1)
        va.extend(idx[:n_va])
        tr.extend(idx[n_va:])
    return np.sort(np.asarray(tr, dtype=np.int64)), np.sort(np.asarray(va, dtype=np.int64))


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


def _trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {n: t.detach().clone() for n, t in model.state_dict().items() if n in names}


def _build_eval(prep: dict):
    from ..exported_model import build_transform

    return build_transform(prep)


def _output_side(prep: dict) -> int:
    size = prep.get("crop") or prep.get("resize") or prep["image_size"]
    return int(size[0] if isinstance(size, (list, tuple)) else size)
