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
    ft = FineTuner(lite0, epochs=1, blocks=1, threads=1, progress=False, lr=3e-4, head_lr=1e-3,
                   maps=())  # epoch 0 = the plain probe
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
    ft = FineTuner(lite0, epochs=1, threads=1, progress=False, lr=0.5, head_lr=0.5, maps=())
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
    ft = FineTuner(lite0, epochs=20, views=2, threads=1, progress=False)
    ft.start(images, y, classes=fmnist_train.classes, on_step=lambda done, total: stepped.set())
    assert stepped.wait(600), "training never made a step"
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


# ---------------------------------------------------------------- issue 20: quick path
def test_split_front_and_tail_reproduce_the_backbone(lite0):
    from dfwidgets.learn.finetune_tail import StageSplit, cut_for_blocks

    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        full = lite0.module(x)
        for blocks in (1, 2, 4):
            split = StageSplit(lite0.module, cut_for_blocks(lite0.module, blocks), image_size=64)
            act, prefix = split.front(x)
            assert tuple(act.shape[1:]) == split.activation_shape
            assert torch.allclose(split(act, prefix), full, atol=1e-5)


def _count_front_calls(lite0):
    """Forward hook on the stem: the frozen front runs exactly when it is called."""
    calls = []
    handle = lite0.module.model.conv_stem.register_forward_hook(
        lambda _m, inp, _out: calls.append(len(inp[0])))
    return calls, handle


def test_cache_is_used_the_front_does_not_run_in_epoch_two(lite0, labeled, fmnist_train,
                                                           tmp_path):
    images, y = labeled
    calls, handle = _count_front_calls(lite0)  # deepcopy in fit() copies the hook too
    per_epoch = []
    try:
        ft = FineTuner(lite0, epochs=2, patience=5, views=2, threads=1, progress=False,
                       cache_dir=tmp_path, batch_size=32)
        ft.fit(images[:80], y[:80], classes=fmnist_train.classes,
               on_epoch=lambda row: per_epoch.append(sum(calls)))
        assert list(ft.history_["epoch"]) == [0, 1, 2] and ft.cut_ is not None
        # images ran through the front while the cache was built, never in epochs 1 and 2
        assert per_epoch[0] > 0 and per_epoch[0] == per_epoch[1] == per_epoch[2]
        assert ft.cache_computed_ > 0
        # a second run on the same images reads every activation from disk
        calls.clear()
        ft2 = FineTuner(lite0, epochs=1, views=2, threads=1, progress=False,
                        cache_dir=tmp_path, batch_size=32)
        ft2.fit(images[:80], y[:80], classes=fmnist_train.classes)
        assert sum(calls) <= 1 and ft2.cache_computed_ == 0 and ft2.cache_hits_ > 0
    finally:
        handle.remove()


def test_a_changed_image_gets_new_activations(lite0, labeled, tmp_path):
    from PIL import Image

    from dfwidgets.exported_model import build_transform, describe_transform
    from dfwidgets.learn.finetune_cached import build_activations
    from dfwidgets.learn.finetune_tail import StageSplit, cut_for_blocks

    images = [im.convert("RGB") for im in labeled[0][:6]]
    split = StageSplit(lite0.module, cut_for_blocks(lite0.module, 2), image_size=64)
    tf = build_transform(describe_transform(lite0.transform, image_size=64))
    opts = {"model_key": lite0.cache_key, "image_size": 64, "views": 2, "shift": 4,
            "device": "cpu", "check_cancel": lambda: None, "cache_dir": tmp_path}
    first = build_activations(split, images, tf, **opts)
    assert first.computed == 12 and first.hits == 0
    again = build_activations(split, images, tf, **opts)
    assert again.computed == 0 and again.hits == 12
    assert torch.equal(again.views[1], first.views[1])
    pixels = np.asarray(images[2]).copy()
    pixels[10:20, 10:20] = 255 - pixels[10:20, 10:20]
    changed = [*images[:2], Image.fromarray(pixels), *images[3:]]
    third = build_activations(split, changed, tf, **opts)
    assert third.computed == 2 and third.hits == 10  # one image x two views recomputed
    assert not torch.equal(third.views[0][2], first.views[0][2])
    assert torch.equal(third.views[0][[0, 1, 3, 4, 5]], first.views[0][[0, 1, 3, 4, 5]])


def test_exported_model_reproduces_the_measured_accuracy_in_a_fresh_process(
        lite0, labeled, held_out, fmnist_train, tmp_path):
    import json
    import subprocess
    import sys

    images, y = labeled
    val_images, val_y = held_out[0][:80], held_out[1][:80]
    ft = FineTuner(lite0, epochs=1, views=2, threads=1, progress=False, cache_dir=tmp_path,
                   batch_size=32, lr=1e-4, head_lr=1e-4)
    ft.fit(images[:120], y[:120], classes=fmnist_train.classes, val=(val_images, val_y))
    measured = float(ft.history_["val_acc"][ft.best_epoch_])
    path = ft.model_.save(tmp_path / "model.safetensors")
    files = []
    for i, im in enumerate(val_images):
        files.append(str(tmp_path / f"img{i:03d}.png"))
        im.save(files[-1])
    code = ("import json, sys; from dfwidgets.exported_model import ExportedModel; "
            "m = ExportedModel.load(sys.argv[1], device='cpu'); "
            "print(json.dumps(list(m.predict(json.loads(sys.argv[2])))))")
    out = subprocess.run([sys.executable, "-c", code, str(path), json.dumps(files)],
                         capture_output=True, text=True, timeout=300, check=True)
    pred = json.loads(out.stdout.strip().splitlines()[-1])
    truth = [fmnist_train.classes[i] for i in val_y]
    correct = sum(p == t for p, t in zip(pred, truth))
    assert correct == round(measured * len(truth))  # the same items right, to the item


def test_advice_names_where_finetuning_starts_to_pay():
    from dfwidgets.learn.finetune_advice import finetune_advice, pays_from

    runs = [{"n_labels": 500, "held_out_probe": 0.80, "held_out_finetune": 0.79},
            {"n_labels": 2000, "held_out_probe": 0.85, "held_out_finetune": 0.88},
            {"n_labels": 10000, "held_out_probe": 0.87, "held_out_finetune": 0.91}]
    assert pays_from([(r["n_labels"], r["held_out_probe"], r["held_out_finetune"])
                      for r in runs]) == 2000
    small = finetune_advice(300, runs)
    assert small["pays"] is False and small["from_labels"] == 2000
    assert "With 300 labels fine-tuning has not beaten the probe" in small["text"]
    assert "around 2,000 labels" in small["text"]
    assert finetune_advice(5000, runs)["pays"] is True
    never = finetune_advice(300, runs[:1], reference=())
    assert never["pays"] is False and "has not beaten" in never["text"]
    # below the smallest measured count, where it already paid: said as not measured
    below = finetune_advice(100, reference=((500, 0.80, 0.84), (2000, 0.85, 0.88)))
    assert below["pays"] is None and below["from_labels"] == 500
    assert "not measured" in below["text"] and "below 500 labels" in below["text"]
    assert "84.0% vs 80.0%" in below["text"]


def test_cancel_while_the_cache_is_built_stops_within_a_second(lite0, labeled, fmnist_train,
                                                                tmp_path):
    images, y = labeled
    started = threading.Event()
    handle = lite0.module.model.conv_stem.register_forward_hook(
        lambda *_a: started.set())
    try:
        ft = FineTuner(lite0, epochs=5, views=4, threads=1, progress=False, cache_dir=tmp_path)
        ft.start(images, y, classes=fmnist_train.classes)
        assert started.wait(600), "the front never ran"
        t0 = time.perf_counter()
        ft.cancel()
        assert ft.wait(timeout=5)
        elapsed = time.perf_counter() - t0
    finally:
        handle.remove()
    assert elapsed < 1.0, f"cancel took {elapsed:.2f} s"
    assert ft.cancelled_ and ft.error_ is None and ft.model_ is None
    assert "cancelled before" in ft.verdict_


def test_best_epoch_keeps_the_best_weights_and_stops_after_patience():
    from dfwidgets.learn.finetune_parts import BestEpoch

    model = torch.nn.Linear(2, 2)
    seen = []
    keeper = BestEpoch(model, {"epoch": 0, "val_acc": 0.5, "val_loss": 1.0}, patience=2,
                       on_epoch=seen.append)
    with torch.no_grad():
        model.weight.fill_(1.0)
    assert not keeper.add({"epoch": 1, "val_acc": 0.7, "val_loss": 0.8})  # better: kept
    with torch.no_grad():
        model.weight.fill_(2.0)
    # same accuracy, higher loss: not better
    assert not keeper.add({"epoch": 2, "val_acc": 0.7, "val_loss": 0.9})
    assert keeper.add({"epoch": 3, "val_acc": 0.6, "val_loss": 0.7})  # 2nd miss: stop
    assert keeper.best[2] == 1 and keeper.best[0] == 0.7
    assert torch.equal(keeper.best[3]["weight"], torch.ones(2, 2))
    assert [r["epoch"] for r in seen] == [0, 1, 2, 3] == [r["epoch"] for r in keeper.history]


def test_the_head_on_stage_maps_is_measured_against_the_plain_probe(lite0, labeled, held_out,
                                                                    fmnist_train, tmp_path):
    from dfwidgets.learn.finetune_tail import StageSplit, cut_for_blocks, embedding_columns
    from dfwidgets.learn.linear_probe import LinearProbe

    images, y = labeled[0][:120], labeled[1][:120]
    val_images, val_y = held_out[0][:80], held_out[1][:80]
    ft = FineTuner(lite0, epochs=1, views=1, threads=1, progress=False, cache_dir=tmp_path,
                   maps=(2, 3))
    ft.fit(images, y, classes=fmnist_train.classes, val=(val_images, val_y))
    assert ft.model_.architecture["maps"] == [2, 3]
    # the bar is the Trainer's probe: a LinearProbe on the plain embedding
    x = torch.stack([lite0.transform(im) for im in images + val_images])
    with torch.no_grad():
        emb = torch.nn.functional.normalize(lite0.module(x), dim=1).numpy()
    probe = LinearProbe(classes=list(range(10))).fit(emb[:120], y)
    plain = float((probe.predict(emb[120:]) == val_y).mean())
    assert ft.probe_accuracy_ == pytest.approx(plain, abs=2 / 80)
    assert ft.head_probe_accuracy_ == pytest.approx(ft.history_["val_acc"][0], abs=1e-9)
    assert ft.improved_ == (ft.best_accuracy_ > ft.probe_accuracy_)
    # with maps the features are wider; their pooled columns are the embedding itself
    with torch.no_grad():
        wide = ft.model_.backbone(x[:4])
        cols = embedding_columns(ft.model_.backbone, image_size=64)
        split = StageSplit(ft.model_.backbone, cut_for_blocks(ft.model_.backbone, 2),
                           image_size=64)
        assert torch.allclose(split(*split.front(x[:4])), wide, atol=1e-5)
    assert wide.shape[1] == len(cols) > 512 and int(cols.sum()) == 512
    assert lite0.module.maps == () and lite0.module(x[:2]).shape[1] == 512  # embedder unchanged


def test_a_slow_head_refit_does_not_delay_cancel():
    from dfwidgets.learn.finetune_cached import _cancellable
    from dfwidgets.learn.finetune_parts import Cancelled

    stop = threading.Event()

    def check() -> None:
        if stop.is_set():
            raise Cancelled()

    assert _cancellable(lambda: 41 + 1, check) == 42  # the fit's result comes back
    threading.Timer(0.2, stop.set).start()
    t0 = time.perf_counter()
    with pytest.raises(Cancelled):
        _cancellable(lambda: time.sleep(3), check)  # a probe fit that takes seconds
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(ZeroDivisionError):  # errors of the fit reach the caller
        _cancellable(lambda: 1 / 0, lambda: None)
