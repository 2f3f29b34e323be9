"""FineTuner on real Fashion-MNIST images with the offline efficientnet_lite0 backbone:
fine-tuning changes the model, the verdict is honest when it is worse than the probe,
Cancel stops within a second, bad input gets clear errors."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

import dfwidgets as dfw
from dfwidgets.learn.finetune import FineTuner, find_tail


@pytest.fixture(scope="module")
def lite0():
    return dfw.get_embedder("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="module")
def labeled(fmnist_train):
    rng = np.random.default_rng(1)
    idx = np.sort(rng.choice(len(fmnist_train), 300, replace=False))
    return [fmnist_train[i] for i in idx], fmnist_train.labels[idx]


@pytest.fixture(scope="module")
def held_out(fmnist_test):
    idx = np.arange(200)
    return [fmnist_test[i] for i in idx], fmnist_test.labels[idx]


def test_find_tail_picks_the_last_blocks_of_efficientnet(lite0):
    names, params = find_tail(lite0.module, 1)
    assert names == ["model.blocks.6"]
    names2, params2 = find_tail(lite0.module, 2)
    assert names2 == ["model.blocks.5", "model.blocks.6"]
    assert sum(p.numel() for p in params2) > sum(p.numel() for p in params)
    with pytest.raises(ValueError, match="mode='probe'"):
        find_tail(lite0.module, 0)


def _val_accuracy(model, images, y) -> float:
    return float((model.predict_proba(images).argmax(1) == y).mean())


@pytest.mark.slow
def test_finetune_changes_the_model_and_keeps_the_better(lite0, labeled, held_out, fmnist_train):
    images, y = labeled
    before = {n: p.detach().clone() for n, p in lite0.module.named_parameters()}
    ft = FineTuner(lite0, epochs=1, blocks=1, threads=1, progress=False, lr=3e-4, head_lr=1e-3)
    ft.fit(images, y, classes=fmnist_train.classes, val=held_out)
    hist = ft.history_
    assert list(hist["epoch"]) == [0, 1] and ft.n_val_ == 200
    # the probe start (epoch 0) is a real classifier on 10 classes
    assert ft.probe_accuracy_ > 0.6
    # one epoch of fine-tuning moves held-out loss and accuracy measurably
    assert abs(hist["val_loss"][1] - hist["val_loss"][0]) > 1e-3
    # the embedder itself is untouched (the tuner works on a copy)
    for n, p in lite0.module.named_parameters():
        assert torch.equal(p, before[n]), n
    # the kept model is the better one, and its accuracy is what the history says
    kept = _val_accuracy(ft.model_, *held_out)
    assert kept == pytest.approx(max(hist["val_acc"]), abs=1e-6)
    assert ft.improved_ == (hist["val_acc"][1] > hist["val_acc"][0])
    assert ("kept the fine-tuned" in ft.verdict_) == ft.improved_


@pytest.mark.slow
def test_verdict_is_honest_when_finetuning_is_worse(lite0, labeled, held_out, fmnist_train):
    images, y = labeled
    # a learning rate far too high wrecks the features: fine-tuning must lose to the probe
    ft = FineTuner(lite0, epochs=1, threads=1, progress=False, lr=0.5, head_lr=0.5)
    ft.fit(images[:120], y[:120], classes=fmnist_train.classes, val=held_out)
    hist = ft.history_
    assert hist["val_acc"][1] < hist["val_acc"][0]
    assert not ft.improved_ and ft.best_epoch_ == 0
    assert "kept the linear probe" in ft.verdict_ and "worse" in ft.verdict_
    assert _val_accuracy(ft.model_, *held_out) == pytest.approx(ft.probe_accuracy_, abs=1e-6)


@pytest.mark.slow
def test_cancel_stops_within_a_second(lite0, labeled, fmnist_train):
    images, y = labeled
    stepped = threading.Event()
    ft = FineTuner(lite0, epochs=20, threads=1, progress=False)
    ft.start(images, y, classes=fmnist_train.classes, on_step=lambda done, total: stepped.set())
    assert stepped.wait(120), "training never made a step"
    assert ft.running
    t0 = time.perf_counter()
    ft.cancel()
    assert ft.wait(timeout=5)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0, f"cancel took {elapsed:.2f} s"
    assert ft.cancelled_ and ft.error_ is None
    assert len(ft.history_) < 21 and "cancelled" in ft.verdict_
    assert ft.model_.predict(images[:3]).shape == (3,)  # best weights so far still usable


def test_bad_input_gets_clear_errors(lite0, labeled, fmnist_train):
    images, y = labeled
    with pytest.raises(ValueError, match="one label per image"):
        FineTuner(lite0, progress=False).fit(images[:5], y[:4], classes=fmnist_train.classes)
    with pytest.raises(ValueError, match="at least 2 classes"):
        FineTuner(lite0, progress=False).fit(images[:3], np.zeros(3, dtype=np.int64),
                                             classes=fmnist_train.classes)
    with pytest.raises(ValueError, match="not among the classes"):
        FineTuner(lite0, progress=False).fit(images[:2], ["cat", "Bag"], classes=fmnist_train.classes)


@pytest.mark.slow
def test_open_clip_image_tower_trains_its_last_block_only(fmnist_train):
    pytest.importorskip("open_clip")
    # random-init ViT-B-32 (the LAION weights cannot be downloaded here): structure only
    clip = dfw.get_embedder("ViT-B-32", pretrained="random", device="cpu")
    names, _ = find_tail(clip.module, 1)
    assert names == ["clip_model.visual.transformer.resblocks.11"]
    images = [fmnist_train[i] for i in range(12)]
    y = fmnist_train.labels[:12] % 2
    ft = FineTuner(clip, epochs=1, batch_size=4, threads=1, progress=False, holdout=0.34)
    ft.fit(images, y, classes=["even", "odd"])
    trained = {n for n, p in ft.model_.named_parameters() if p.requires_grad}
    assert not trained  # the returned model is frozen
    tuned = [n for n, p in ft.model_.backbone.named_parameters()
             if not torch.equal(p, dict(clip.module.named_parameters())[n])]
    assert tuned and all(n.startswith(("clip_model.visual.transformer.resblocks.11.",
                                       "clip_model.visual.ln_post", "clip_model.visual.proj"))
                         for n in tuned), tuned[:5]
    assert any(n.startswith("clip_model.visual.transformer.resblocks.11.") for n in tuned)
