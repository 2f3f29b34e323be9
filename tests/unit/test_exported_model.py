"""ExportedModel: predictions on paths / PIL / arrays, one-file safetensors round trip,
refusal of pickled files, and agreement with the embedding pipeline (offline backbone)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import dfwidgets as dfw
from dfwidgets.exported_model import ExportedModel, describe_transform


@pytest.fixture(scope="module")
def lite0():
    return dfw.get_embedder("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="module")
def images(fmnist_test):
    return [fmnist_test[i] for i in range(12)]


@pytest.fixture(scope="module")
def model(lite0, fmnist_test):
    torch.manual_seed(0)
    head = nn.Linear(lite0.dim, len(fmnist_test.classes))
    return ExportedModel(
        lite0.module, head, classes=fmnist_test.classes,
        preprocessing=describe_transform(lite0.transform, image_size=lite0.image_size),
        architecture={"embedder": lite0.name, "mode": "probe"},
    )


def test_features_match_the_embedding_cache_pipeline(lite0, model, fmnist_test):
    sub = fmnist_test.subset(np.arange(8))
    cached = dfw.embed(sub, model=lite0, cache=False, progress=False)
    x = torch.stack([model.transform(sub[i]) for i in range(8)])
    with torch.no_grad():
        feats = model.features(x).numpy()
    assert feats.shape == cached.shape
    # embed() resizes uint8 arrays in torch, the exported model with PIL: rounding only
    cosine = (feats * cached).sum(1)
    assert cosine.min() > 0.999, cosine
    np.testing.assert_allclose(feats, cached, atol=5e-3)


def test_save_load_gives_identical_predictions_on_paths_and_pil(model, images, tmp_path):
    paths = []
    for i, im in enumerate(images):
        p = tmp_path / f"img{i}.png"
        im.save(p)
        paths.append(str(p))
    before = model.predict_proba(images)
    assert before.shape == (12, 10) and before.dtype == np.float32
    np.testing.assert_allclose(before.sum(1), 1.0, atol=1e-5)
    saved = model.save(tmp_path / "model")
    assert saved.suffix == ".safetensors" and saved.exists()
    loaded = ExportedModel.load(saved)
    assert loaded.classes == model.classes and loaded.preprocessing == model.preprocessing
    np.testing.assert_array_equal(loaded.predict_proba(images), before)
    np.testing.assert_array_equal(loaded.predict_proba(paths), before)  # PNG is lossless
    assert list(loaded.predict(paths)) == list(model.predict(images))
    frame = loaded.predict_frame(paths, progress=False)
    assert list(frame.columns[:3]) == ["item", "prediction", "confidence"]
    assert frame["item"].tolist() == paths and len(frame) == 12
    np.testing.assert_allclose(frame[[f"p_{c}" for c in model.classes]].to_numpy(), before)


class _Evil:
    """Unpickling this object writes a marker file: code execution on load."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("name", ["evil.pt", "evil.safetensors"])
def test_pickled_model_file_is_refused_without_running_its_code(tmp_path, name):
    marker = tmp_path / "pwned"
    path = tmp_path / name
    torch.save({"head.weight": torch.zeros(2, 3), "payload": _Evil(str(marker))}, path)
    with pytest.raises(ValueError, match="pickle") as err:
        ExportedModel.load(path)
    assert "safetensors" in str(err.value)
    assert not marker.exists()


def test_foreign_safetensors_and_bad_inputs_get_clear_errors(model, tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(other))
    with pytest.raises(ValueError, match="not a dfwidgets model"):
        ExportedModel.load(other)
    with pytest.raises(FileNotFoundError, match="nope.png"):
        model.predict([str(tmp_path / "nope.png")])
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ValueError, match="Cannot read"):
        model.predict([str(tmp_path / "text.png")])
    with pytest.raises(TypeError, match="paths, PIL images"):
        model.predict([3.5])
    with pytest.raises(ValueError, match="one name per head output"):
        ExportedModel(model.backbone, nn.Linear(4, 3), classes=["a", "b"],
                      preprocessing=model.preprocessing, architecture=model.architecture)
