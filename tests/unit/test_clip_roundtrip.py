"""A saved CLIP model loads back, and a reopened Session keeps its text tower (issue 16
item 8). A tiny randomly initialised open_clip architecture stands in for ViT-B-32 (no
weights can be downloaded here); its embedder name is ``open_clip:<arch>/random``, with
the "/" that ``looks_like_path`` once took for a checkpoint file."""

from __future__ import annotations

import json

import numpy as np
import pytest

open_clip = pytest.importorskip("open_clip")

import dfwidgets as dfw
from dfwidgets._embedders.open_clip import (
    OpenClipEmbedder,
    looks_like_path,
    parse_name,
)
from dfwidgets.exported_model import ExportedModel
from dfwidgets.session import Session

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = "dfw-tiny-clip-test"


@pytest.fixture(scope="module")
def tiny_arch(tmp_path_factory) -> str:
    """A registered open_clip architecture small enough to build in a moment."""
    folder = tmp_path_factory.mktemp("clip_cfg")
    cfg = {"embed_dim": 32,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16,
                          "head_width": 32},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2,
                        "layers": 1}}
    (folder / f"{TINY}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(folder)
    assert TINY in open_clip.list_models()
    return TINY


@pytest.fixture()
def embedder(tiny_arch) -> OpenClipEmbedder:
    return OpenClipEmbedder(tiny_arch, pretrained="random")


def test_embedder_names_are_not_paths(embedder, tiny_arch):
    assert embedder.name == f"open_clip:{tiny_arch}/random"
    assert not looks_like_path(embedder.name)
    assert not looks_like_path("open_clip:ViT-B-32/laion2b_s34b_b79k")
    assert looks_like_path("/models/open_clip_pytorch_model.bin")
    assert looks_like_path("./ckpt.safetensors")
    assert parse_name(embedder.name) == (tiny_arch, "random")
    again = dfw.get_embedder(embedder.name)  # the saved name loads the same model
    texts = ["a photo of a shoe", "a photo of a bag"]
    np.testing.assert_allclose(again.embed_text(texts), embedder.embed_text(texts), atol=1e-6)


def test_file_tag_names_the_fix(tiny_arch):
    with pytest.raises(FileNotFoundError, match="pretrained='/path/to/checkpoint'"):
        dfw.get_embedder(f"open_clip:{tiny_arch}/file:ckpt.bin:123:456")


def test_exported_clip_model_loads_back(tmp_path, embedder, fmnist_test):
    src = fmnist_test.subset(np.arange(40))
    s = Session.open(tmp_path / "proj", source=src, model=embedder, auto_fit=False)
    try:
        names = np.asarray(src.classes, dtype=object)[src.labels]
        s.label_many(np.arange(30), list(names[:30]), source="click")
        s.fit()
        model = s.training.export_probe(embedder)
        assert model.architecture["embedder"] == embedder.name
        path = model.save(tmp_path / "clip_model.safetensors")
        loaded = ExportedModel.load(path, device="cpu")
        images = [src[i] for i in range(30, 40)]
        np.testing.assert_allclose(loaded.predict_proba(images), model.predict_proba(images),
                                   atol=1e-5)
        assert loaded.classes == model.classes
    finally:
        s.close()


def test_reopened_session_keeps_its_text_tower(tmp_path, embedder, fmnist_test):
    src = fmnist_test.subset(np.arange(24))
    s = Session.open(tmp_path / "proj", source=src, model=embedder, auto_fit=False)
    assert s.supports_text() == (True, "")
    before = s.embed_text(["a photo of a sneaker"])
    s.close()
    again = Session.open(tmp_path / "proj", source=src, auto_fit=False)  # no model given
    try:
        ok, why = again.supports_text()
        assert ok, why
        np.testing.assert_allclose(again.embed_text(["a photo of a sneaker"]), before,
                                   atol=1e-6)
        prop = again.propose(method="zero-shot", prompts={"Sneaker": "a sneaker",
                                                          "Bag": "a bag"})
        assert len(prop) == len(src) and set(prop["label"]) <= {"Sneaker", "Bag"}
    finally:
        again.close()
