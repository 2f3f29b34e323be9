"""Fine-tune the last blocks of an embedder's backbone on labeled images.

``FineTuner`` is sklearn-shaped (``fit`` returns ``self``, learned attributes end in
``_``) and also runs in a background thread (``start`` / ``cancel`` / ``wait``).
Recipe (LP-FT: linear probe first, then fine-tune, which keeps pretrained features
from being distorted by a random head):

1. hold out a stratified share of the labels (or use the given validation items);
2. fit a logistic-regression head on the frozen, L2-normalised features (the probe;
   on the cached path the features also hold the unpooled maps of ``maps`` stages, and
   the bar to beat stays the probe on the plain embedding);
3. unfreeze the last ``blocks`` blocks of the backbone (plus what follows them, e.g. the
   final conv / layer norm), keep BatchNorm statistics frozen, and train with
   RandomResizedCrop (+ horizontal flips where sensible), class-balanced sampling, AdamW;
4. after every epoch (cached path, ``refit_head``) fit the probe head again on the tuned
   features, measure accuracy on the held-out labels, keep the best epoch (epoch 0 = the
   probe) and stop after ``patience`` epochs without improvement.

Cancellation is checked between batches and before every backbone block, so
``cancel()`` stops training within a fraction of a second even with large inputs.
The pieces (split, augmentation, backbone tail, head, verdict) are in
:mod:`dfwidgets.learn.finetune_parts`; this module runs the loop.
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

from ..exported_model import ExportedModel, describe_transform
from .finetune_cached import fit_cached
from .finetune_images import fit_images
from .finetune_parts import (
    Cancelled,
    as_pil_list,
    class_sampler,
    encode_labels,
    eval_transform,
    find_tail,
    head_from_coef,
    probe_head,
    stratified_split,
    train_transform,
    verdict,
)
from .finetune_tail import splittable

logger = logging.getLogger(__name__)

# find_tail, probe_head, head_from_coef and Cancelled live in finetune_parts; they stay
# importable from here (the public path).
__all__ = ["Cancelled", "FineTuner", "find_tail", "head_from_coef", "probe_head"]

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
        cache: for backbones that :func:`~dfwidgets.learn.finetune_tail.splittable` (the
            offline efficientnet_lite0), run the frozen front once per image and view and
            keep its activations on disk (``cache_dir``: default the dfwidgets cache);
            epochs then train only the tail (see :mod:`.finetune_cached`). ``use_disk``
            False keeps them in memory only.
        views: cached augmented views per image (as is, flipped, shifted by ``shift`` px).
        label_smoothing: cross-entropy label smoothing of the cached recipe.
        gpu_blocks: blocks to train on CUDA (default ``blocks + 2``), with mixed precision.
        maps: cached path only: stages whose unpooled output maps the head also reads
            (flattened, L2-normalised, next to the pooled embedding). Pooling loses where
            things are; on Fashion-MNIST the maps of stages 2 and 3 are worth +3.6 points
            (benchmarks/RESULTS.md, "Fine-tuning recipes tried"). ``()``: the plain embedding.
        refit_head: cached path only: after every epoch fit the probe head again on the
            tuned features (LP-FT-LP) instead of keeping the gradient-trained head, which
            over-fits a few thousand labels.

    Learned attributes: ``model_`` (ExportedModel), ``classes_``, ``history_`` (DataFrame
    epoch, train_loss, train_acc, val_loss, val_acc, seconds (training only)), ``probe_accuracy_`` (held-out
    accuracy of the probe head, epoch 0), ``best_epoch_``, ``best_accuracy_``,
    ``improved_`` (fine-tuning beat the probe on the held-out labels), ``n_val_``,
    ``cancelled_``, ``error_``, ``seconds_``, ``blocks_`` (names of the trained blocks),
    ``head_probe_accuracy_`` (held-out accuracy of epoch 0: the probe head on all features,
    maps included; ``probe_accuracy_`` is the plain embedding's probe, the bar to beat),
    ``verdict_`` (one sentence: which model was kept and why, with the held-out numbers).
    """

    def __init__(
        self,
        embedder: Any = "efficientnet_lite0",
        *,
        blocks: int = 1,
        epochs: int = 8,
        batch_size: int = 32,
        lr: float = 3e-4,
        head_lr: float = 3e-4,
        weight_decay: float = 1e-4,
        crop_scale: tuple[float, float] = (0.8, 1.0),
        hflip: bool = True,
        balanced: bool = True,
        patience: int = 2,
        holdout: float = 0.2,
        probe_c: float | None = None,
        threads: int | None = None,
        device: str | None = None,
        random_state: int = 0,
        progress: bool = True,
        cache: bool = True,
        use_disk: bool = True,
        cache_dir: Any = None,
        views: int = 2,
        shift: int = 4,
        label_smoothing: float = 0.1,
        gpu_blocks: int | None = None,
        maps: Sequence[int] = (2, 3),
        refit_head: bool = True,
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
        self.cache, self.use_disk, self.cache_dir = cache, use_disk, cache_dir
        self.views, self.shift, self.label_smoothing = views, shift, label_smoothing
        self.gpu_blocks = gpu_blocks
        self.maps = tuple(maps)
        self.refit_head = refit_head
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

    def _fit(self, images: Any, y: Any, *, classes: Sequence[str] | None,
             val: tuple[Any, Any] | None, on_epoch: Callable[[dict], None] | None,
             on_step: Callable[[int, int], None] | None) -> None:

        from .._config import select_device

        pil = as_pil_list(images)
        y_idx, self.classes_ = encode_labels(y, classes)
        if len(pil) != len(y_idx):
            raise ValueError(f"Got {len(pil)} images but {len(y_idx)} labels; pass one label per image.")
        k = len(self.classes_)
        present = np.unique(y_idx)
        if len(present) < 2:
            raise ValueError("Fine-tuning needs labeled images of at least 2 classes.")
        rng = np.random.default_rng(self.random_state)
        if val is None:
            tr_idx, va_idx = stratified_split(y_idx, self.holdout, rng)
            val_pil = [pil[i] for i in va_idx]
            val_y = y_idx[va_idx]
            pil = [pil[i] for i in tr_idx]
            y_idx = y_idx[tr_idx]
            self.val_indices_ = va_idx
        else:
            val_pil = as_pil_list(val[0])
            val_y, _ = encode_labels(val[1], self.classes_)
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
        eval_tf = eval_transform(prep)

        backbone.eval()
        for p in backbone.parameters():
            p.requires_grad_(False)
        blocks = self.blocks
        if device.startswith("cuda"):
            blocks = self.gpu_blocks or self.blocks + 2
        self.cache_seconds_, self.cut_, self._plain_probe = 0.0, None, None
        self.cache_computed_ = self.cache_hits_ = 0
        cached = self.cache and splittable(backbone)
        if cached and self.maps:
            backbone.maps = tuple(int(m) for m in self.maps)  # PooledStages: head reads maps
        if not cached:
            self.blocks_, tail = find_tail(backbone, blocks)
        hooks = [m.register_forward_pre_hook(self._check_cancel)
                 for m in backbone.modules() if m is not backbone]
        try:
            if cached:
                run = self._run_cached(backbone, embedder, prep, eval_tf, blocks, device,
                                       (pil, y_idx), (val_pil, val_y), on_epoch, on_step)
                self.cache_seconds_, self.cut_ = run.cache_seconds, run.cut
                self.cache_computed_, self.cache_hits_ = run.computed, run.hits
                self._plain_probe = run.plain_probe
                self.blocks_ = [f"model.blocks.{b}" for b in range(run.cut, run.cut + blocks)]
                run.model.architecture.update(blocks=self.blocks_, cut=run.cut,
                                              maps=list(getattr(backbone, "maps", ())))
            else:
                train_tf = train_transform(prep, crop_scale=tuple(self.crop_scale),
                                           hflip=self.hflip)
                run = fit_images(
                    backbone, tail, lambda f, y: probe_head(f, y, k, c=self.probe_c),
                    lambda head: ExportedModel(
                        backbone, head, classes=self.classes_, preprocessing=prep,
                        architecture={"embedder": getattr(embedder, "name", str(self.embedder)),
                                      "mode": "finetune", "blocks": self.blocks_}).to(device),
                    (pil, y_idx), (val_pil, val_y), eval_tf=eval_tf, train_tf=train_tf,
                    epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                    head_lr=self.head_lr, weight_decay=self.weight_decay,
                    patience=self.patience, balanced=self.balanced, seed=self.random_state,
                    device=device, progress=self.progress, check_cancel=self._check_cancel,
                    on_epoch=on_epoch, on_step=on_step)
        except Cancelled:
            logger.info("fine-tuning cancelled before the first epoch")
            self._cancelled_early()
            return
        finally:
            for h in hooks:
                h.remove()
        self.cancelled_ = run.cancelled
        self._finish(run.model, run.history, run.best)

    def _cancelled_early(self) -> None:
        import pandas as pd

        self.cancelled_, self.model_, self.history_ = True, None, pd.DataFrame()
        self.verdict_ = "Training was cancelled before a model was trained."

    def _run_cached(self, backbone: nn.Module, embedder: Any, prep: dict, eval_tf: Any,
                    blocks: int, device: str, train: tuple, val: tuple,
                    on_epoch: Callable[[dict], None] | None,
                    on_step: Callable[[int, int], None] | None) -> Any:
        """The quick path: cached front activations, trained tail (finetune_cached)."""
        k = len(self.classes_)
        sampler = class_sampler(train[1], k, balanced=self.balanced,
                                generator=torch.Generator().manual_seed(self.random_state))
        torch.manual_seed(self.random_state)
        arch = {"embedder": getattr(embedder, "name", str(self.embedder)), "mode": "finetune"}
        return fit_cached(
            backbone, lambda f, y: probe_head(f, y, k, c=self.probe_c),
            lambda head: ExportedModel(backbone, head, classes=self.classes_,
                                       preprocessing=prep, architecture=arch).to(device),
            train, val, transform=eval_tf, image_size=int(embedder.image_size),
            model_key=str(getattr(embedder, "cache_key", arch["embedder"]))
            + "".join(f"/map{m}" for m in getattr(backbone, "maps", ())), blocks=blocks,
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, head_lr=self.head_lr,
            weight_decay=self.weight_decay, views=max(1, self.views if self.hflip else 1),
            shift=self.shift, label_smoothing=self.label_smoothing, patience=self.patience,
            sampler=sampler, seed=self.random_state, device=device, use_cache=self.use_disk,
            cache_dir=self.cache_dir, check_cancel=self._check_cancel, on_epoch=on_epoch,
            on_step=on_step, refit_head=self.refit_head)

    def _finish(self, model: nn.Module, history: list[dict], best: tuple) -> None:
        """Load the best epoch's weights, freeze, and write the learned attributes."""
        import pandas as pd

        model.load_state_dict(best[3], strict=False)
        for p in model.parameters():
            p.requires_grad_(False)
        model.eval()
        self.history_ = pd.DataFrame(history)
        self.head_probe_accuracy_ = float(history[0]["val_acc"])
        plain = self._plain_probe  # the plain embedding's probe (None: epoch 0 is it)
        self.probe_accuracy_ = self.head_probe_accuracy_ if plain is None else float(plain)
        self.best_accuracy_ = float(best[0])
        self.best_epoch_ = int(best[2])
        self.improved_ = ((self.best_epoch_ > 0 or plain is not None)
                          and self.best_accuracy_ > self.probe_accuracy_)
        self.model_ = model
        self.verdict_ = verdict(self.history_, n_val=self.n_val_, probe_accuracy=self.probe_accuracy_,
                                best_epoch=self.best_epoch_, improved=self.improved_,
                                cancelled=self.cancelled_, best_accuracy=self.best_accuracy_)

    def _check_cancel(self, *args: Any) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def predict_proba(self, images: Any) -> np.ndarray:
        """(N,K) float32 probabilities from the fitted model."""
        return self.model_.predict_proba(images)

    def predict(self, images: Any) -> np.ndarray:
        """(N,) predicted class names."""
        return self.model_.predict(images)
