"""Embedders and embed(): shapes, norms, cache hit/miss/staleness, the offline backbone's
quality on real Fashion-MNIST, and the fast failure of open_clip without network."""

from __future__ import annotations

import importlib
import socket
import time
import warnings

import numpy as np
import PIL.Image
import pytest

import dfwidgets as dfw
from dfwidgets.data import ImageSource

embed_mod = importlib.import_module("dfwidgets.embed")  # the module (dfw.embed is the function)


@pytest.fixture()
def computed(monkeypatch):
    """Records which item indices embed() actually computes (cache misses)."""
    calls: list[np.ndarray] = []
    real = embed_mod._compute

    def spy(embedder, source, indices, **kwargs):
        calls.append(np.asarray(indices).copy())
        return real(embedder, source, indices, **kwargs)

    monkeypatch.setattr(embed_mod, "_compute", spy)
    return calls


def _small_array(n: int = 12, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 20, 20), dtype=np.uint8)


# ------------------------------------------------------------------ pixels (fast, exact)
def test_pixels_are_the_normalised_flattened_image(tmp_path):
    arr = _small_array(5)
    emb = dfw.embed(ImageSource.from_array(arr), model="pixels", cache_dir=tmp_path, progress=False)
    assert emb.shape == (5, 3 * 32 * 32) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    # reference: PIL bilinear resize to 32x32, RGB, flattened channel-first, L2-normalised
    ref = np.stack([
        np.asarray(PIL.Image.fromarray(a).convert("RGB").resize((32, 32), PIL.Image.BILINEAR),
                   dtype=np.float32).transpose(2, 0, 1).ravel()
        for a in arr
    ])
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    assert np.min(np.sum(emb * ref, axis=1)) > 0.9999


def test_cache_hit_miss_and_changed_image_is_recomputed(tmp_path, computed):
    arr = _small_array(12)
    first = dfw.embed(ImageSource.from_array(arr), model="pixels", cache_dir=tmp_path, progress=False)
    assert [len(c) for c in computed] == [12]

    again = dfw.embed(ImageSource.from_array(arr), model="pixels", cache_dir=tmp_path, progress=False)
    assert len(computed) == 1  # all from disk
    np.testing.assert_array_equal(again, first)

    changed = arr.copy()
    changed[7] = 255 - changed[7]
    new = dfw.embed(ImageSource.from_array(changed), model="pixels", cache_dir=tmp_path, progress=False)
    assert computed[-1].tolist() == [7]  # only the changed image
    assert np.dot(new[7], first[7]) < 0.99  # and its vector is not the stale one
    np.testing.assert_array_equal(np.delete(new, 7, axis=0), np.delete(first, 7, axis=0))

    grown = np.concatenate([arr, _small_array(3, seed=5)])
    dfw.embed(ImageSource.from_array(grown), model="pixels", cache_dir=tmp_path, progress=False)
    assert computed[-1].tolist() == [12, 13, 14]  # only the new items


def test_cache_false_computes_everything_and_writes_nothing(tmp_path, computed):
    arr = _small_array(4)
    dfw.embed(ImageSource.from_array(arr), model="pixels", cache=False, cache_dir=tmp_path, progress=False)
    dfw.embed(ImageSource.from_array(arr), model="pixels", cache=False, cache_dir=tmp_path, progress=False)
    assert [len(c) for c in computed] == [4, 4]
    assert not list((tmp_path).glob("embeddings/*/shard-*"))


def test_files_through_dataloader_workers_match_array_path(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, size=(6, 24, 24, 3), dtype=np.uint8)
    paths = []
    for i, a in enumerate(arr):
        paths.append(str(tmp_path / f"im{i}.png"))
        PIL.Image.fromarray(a).save(paths[-1])
    from_files = dfw.embed(ImageSource.from_paths(paths), model="pixels", batch_size=2,
                           num_workers=2, cache=False, progress=False)
    from_array = dfw.embed(ImageSource.from_array(arr), model="pixels", cache=False, progress=False)
    assert from_files.shape == from_array.shape
    assert np.min(np.sum(from_files * from_array, axis=1)) > 0.9999


def test_bad_file_gives_one_warning_and_a_placeholder_vector(tmp_path):
    good = tmp_path / "good.png"
    PIL.Image.fromarray(_small_array(1)[0]).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src = ImageSource.from_paths([str(good), str(bad)])
        emb = dfw.embed(src, model="pixels", cache_dir=tmp_path / "c", progress=False)
    ours = [w for w in caught if "embed:" in str(w.message)]
    assert len(ours) == 1 and "1 of 2 images" in str(ours[0].message)
    assert emb.shape == (2, 3072)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)


def test_bad_arguments_have_clear_errors():
    with pytest.raises(TypeError, match="ImageSource"):
        dfw.embed({"not": "images"}, model="pixels")
    with pytest.raises(ValueError, match="pretrained"):
        dfw.get_embedder("efficientnet_lite0", pretrained="laion2b_s34b_b79k")
    with pytest.raises(ValueError, match="open_clip.list_models"):
        dfw.get_embedder("no-such-model-xyz")
    with pytest.raises(ValueError, match="batch_size"):
        dfw.embed(_small_array(2), model="pixels", batch_size=0)


def test_text_on_image_only_models_says_which_models_support_text():
    for name in ("efficientnet_lite0", "pixels"):
        with pytest.raises(ValueError, match="open_clip") as info:
            dfw.embed_text(["a photo of a shoe"], model=name)
        assert name in str(info.value) and "ViT-B-32" in str(info.value)


# ------------------------------------------------------------------ the offline backbone
def test_offline_backbone_classifies_a_photo_into_the_right_imagenet_class():
    """Validates the weight mapping: scikit-learn's bundled photo of the Summer Palace."""
    import torch
    from sklearn.datasets import load_sample_image

    from dfwidgets._embedders._preprocess import ResizeToTensor
    from dfwidgets._embedders._lite0_net import load_pretrained_lite0

    model = load_pretrained_lite0()
    x = ResizeToTensor(224, mean=0.5, std=0.5)(PIL.Image.fromarray(load_sample_image("china.jpg")))
    with torch.inference_mode():
        top = model(x[None]).softmax(1)[0].topk(3)
    assert int(top.indices[0]) == 698  # ImageNet "palace"
    assert float(top.values[0]) > 0.25


def test_offline_backbone_shapes_and_array_path_matches_pil_path(fmnist_test):
    src = fmnist_test.subset(np.arange(8))
    emb = dfw.embed(src, model="efficientnet_lite0", progress=False)
    embedder = dfw.get_embedder("efficientnet_lite0")
    assert emb.shape == (8, embedder.dim) == (8, 512) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    queries = dfw.embed_images([src[i] for i in range(8)], model="efficientnet_lite0")
    assert np.min(np.sum(queries * emb, axis=1)) > 0.999
    assert embedder.module(embedder.transform(src[0])[None]).shape == (1, 512)


def test_offline_backbone_nearest_neighbour_is_mostly_same_class(fmnist_test, fmnist_test_emb):
    n = 2000
    emb, y = fmnist_test_emb[:n], fmnist_test.labels[:n]
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)
    accuracy = float(np.mean(y[sims.argmax(1)] == y))
    assert accuracy > 0.75, accuracy  # measured 1-NN leave-one-out on 2000 items: see RESULTS.md


# ------------------------------------------------------------------ open_clip
def _hub_reachable() -> bool:
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=3):
            return True
    except OSError:
        return False


def test_open_clip_without_network_fails_fast_with_the_ways_out(tmp_path, monkeypatch):
    if _hub_reachable():
        pytest.skip("huggingface.co is reachable here; this test checks the offline failure")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # nothing cached
    import open_clip  # noqa: F401  (import time is not what is measured: the network wait is)

    start = time.perf_counter()
    with pytest.raises(ConnectionError) as info:
        dfw.embed(_small_array(2), model="ViT-B-32", cache_dir=tmp_path)
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"took {elapsed:.1f}s"
    message = str(info.value)
    for needed in ("'ViT-B-32'", "laion2b_s34b_b79k", str(tmp_path / "hub"), "pretrained=",
                   "model='efficientnet_lite0'"):
        assert needed in message, needed


def test_open_clip_uses_weights_already_in_the_local_cache_without_network(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from dfwidgets._embedders.open_clip import resolve_checkpoint

    hub = tmp_path / "hub"
    repo = hub / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    weights = snapshot / "open_clip_model.safetensors"
    weights.write_bytes(b"placeholder: only the lookup is tested here")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # any network attempt would raise
    start = time.perf_counter()
    checkpoint, cfg = resolve_checkpoint("ViT-B-32", None)
    assert time.perf_counter() - start < 2
    assert checkpoint == str(weights)
    assert cfg["mean"][0] == pytest.approx(0.4815, abs=1e-3)


def test_open_clip_missing_local_checkpoint_is_a_clear_error(tmp_path):
    missing = tmp_path / "nope" / "open_clip_pytorch_model.bin"
    with pytest.raises(FileNotFoundError) as info:
        dfw.get_embedder("ViT-B-32", pretrained=str(missing))
    assert str(missing) in str(info.value) and "efficientnet_lite0" in str(info.value)
    with pytest.raises(FileNotFoundError):
        dfw.get_embedder(str(missing))


@pytest.mark.slow
def test_open_clip_text_and_image_towers_on_a_random_model(tmp_path):
    """Real open_clip code path (tokenizer, text and image towers) without weights."""
    embedder = dfw.get_embedder("ViT-B-32", pretrained="random")
    texts = ["a photo of a sneaker", "a photo of a shirt", "a photo of a sneaker"]
    txt = dfw.embed_text(texts, model="ViT-B-32", pretrained="random")
    assert txt.shape == (3, embedder.dim) == (3, 512) and txt.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(txt[0], txt[2], atol=1e-5)
    assert float(txt[0] @ txt[1]) < 0.9999
    img = dfw.embed(_small_array(2), model=embedder, cache_dir=tmp_path, progress=False)
    assert img.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, rtol=1e-5)
