"""ExportedModel: a trained classifier (backbone + linear head) usable outside the widgets.

The model is a plain ``torch.nn.Module``: ``forward(x (B,3,H,W)) -> logits (B,K)``. It
carries its class names and a JSON description of its preprocessing, predicts on paths,
PIL images or an ``ImageSource``, and saves to / loads from ONE ``.safetensors`` file
(weights as tensors, everything else as JSON metadata). Pickled files are refused,
because unpickling can run arbitrary code.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["ExportedModel"]

FORMAT = "dfwidgets.ExportedModel"
FORMAT_VERSION = 1

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos")


def _interpolation_name(value: Any) -> str:
    """Name of a torchvision InterpolationMode / PIL resample constant."""
    name = getattr(value, "value", value)
    if isinstance(name, str) and name.lower() in _INTERPOLATIONS:
        return name.lower()
    pil_codes = {0: "nearest", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming", 1: "lanczos"}
    if isinstance(name, int) and name in pil_codes:
        return pil_codes[name]
    return "bilinear"


def _size_value(size: Any) -> int | list[int]:
    if isinstance(size, (list, tuple)):
        return int(size[0]) if len(size) == 1 else [int(s) for s in size]
    return int(size)


def describe_transform(transform: Any, *, image_size: int) -> dict:
    """JSON description of an eval transform (torchvision ``Compose`` of Resize / CenterCrop /
    ToTensor / Normalize), checked to reproduce ``transform`` on a test image.

    Raises ``ValueError`` naming the step that cannot be described.
    """
    from PIL import Image

    if all(hasattr(transform, a) for a in ("size", "mean", "std")) and not hasattr(
        transform, "transforms"
    ):
        # dfwidgets' own eval preprocessing (_embedders._preprocess.ResizeToTensor)
        desc: dict[str, Any] = {
            "kind": "resize_to_tensor",
            "resize": int(transform.size),
            "crop": int(transform.size),
            "interpolation": "bilinear",
            "mean": [float(transform.mean)] * 3,
            "std": [float(transform.std)] * 3,
            "grey": bool(getattr(transform, "grey", False)),
            "image_size": int(image_size),
        }
        steps = [transform]
    else:
        steps = list(getattr(transform, "transforms", [transform]))
        desc = {
            "kind": "torchvision",
            "resize": None,
            "crop": None,
            "interpolation": "bilinear",
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
            "image_size": int(image_size),
        }
    for step in steps:
        kind = type(step).__name__
        if kind == "Resize":
            desc["resize"] = _size_value(step.size)
            desc["interpolation"] = _interpolation_name(step.interpolation)
        elif kind == "CenterCrop":
            desc["crop"] = _size_value(step.size)
        elif kind == "Normalize":
            desc["mean"] = [float(v) for v in step.mean]
            desc["std"] = [float(v) for v in step.std]
    rebuilt = build_transform(desc)
    rng = np.random.default_rng(0)
    probe = Image.fromarray(rng.integers(0, 256, size=(37, 45, 3), dtype=np.uint8))
    expected = transform(probe)
    got = rebuilt(probe)
    if tuple(expected.shape) != tuple(got.shape) or not torch.allclose(expected, got, atol=1e-4):
        raise ValueError(
            "Cannot describe the embedder's preprocessing as resize/crop/normalize "
            f"(steps: {[type(s).__name__ for s in steps]}); the exported model could not "
            "reproduce it after loading. Use an embedder whose transform is a torchvision "
            "Compose of Resize, CenterCrop, ToTensor and Normalize."
        )
    return desc


def build_transform(desc: dict):
    """torchvision transform (PIL -> float tensor (3,H,W)) from a preprocessing description."""
    from torchvision import transforms as T

    if desc.get("kind") == "resize_to_tensor":
        from ._embedders._preprocess import ResizeToTensor

        return ResizeToTensor(
            desc["resize"], mean=desc["mean"][0], std=desc["std"][0], grey=desc.get("grey", False)
        )
    mode = T.InterpolationMode(desc.get("interpolation", "bilinear"))
    steps: list[Any] = [T.Lambda(_to_rgb)]
    if desc.get("resize") is not None:
        steps.append(T.Resize(desc["resize"], interpolation=mode))
    if desc.get("crop") is not None:
        steps.append(T.CenterCrop(desc["crop"]))
    steps += [T.ToTensor(), T.Normalize(desc["mean"], desc["std"])]
    return T.Compose(steps)


def _to_rgb(image):
    return image if image.mode == "RGB" else image.convert("RGB")


def _open_image(item: Any):
    """PIL RGB image from a path or a PIL image; a clear error otherwise."""
    from PIL import Image

    if isinstance(item, Image.Image):
        return _to_rgb(item)
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"Image file not found: {path}")
        try:
            with Image.open(path) as img:
                return _to_rgb(img.copy())
        except Exception as exc:  # PIL raises several types for bad files
            raise ValueError(f"Cannot read {path} as an image: {exc}") from exc
    if isinstance(item, np.ndarray):
        arr = item
        if arr.dtype != np.uint8:
            raise ValueError(f"Image arrays must be uint8 (H,W) or (H,W,3); got dtype {arr.dtype}.")
        return _to_rgb(Image.fromarray(arr))
    raise TypeError(
        f"Cannot predict on a {type(item).__name__}: pass image paths, PIL images, "
        "uint8 arrays or an ImageSource."
    )


class ExportedModel(nn.Module):
    """Backbone + linear head, with class names and preprocessing.

    ``forward(x)``: preprocessed images (B,3,H,W) -> logits (B,K). The head sees the
    L2-normalised backbone features, the same features the embedding cache holds, so a
    linear probe fitted on cached embeddings is exported without change.

    Args:
        backbone: module mapping (B,3,H,W) -> (B,D).
        head: ``nn.Linear(D, K)``.
        classes: K class names, in head-output order.
        preprocessing: description from :func:`describe_transform` (resize, crop,
            interpolation, mean, std, image_size).
        architecture: how to rebuild the backbone on load, e.g.
            ``{"embedder": "efficientnet_lite0"}``; also free-form facts (mode, blocks tuned).
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Linear,
        *,
        classes: Sequence[str],
        preprocessing: dict,
        architecture: dict,
    ) -> None:
        super().__init__()
        if head.out_features != len(classes):
            raise ValueError(
                f"The head has {head.out_features} outputs but {len(classes)} class names were "
                "given; pass one name per head output."
            )
        self.backbone = backbone
        self.head = head
        self.classes = [str(c) for c in classes]
        self.preprocessing = dict(preprocessing)
        self.architecture = dict(architecture)
        self.transform = build_transform(self.preprocessing)
        self.eval()

    # ------------------------------------------------------------------ forward
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) -> L2-normalised features (B,D)."""
        return nn.functional.normalize(self.backbone(x).flatten(1), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) -> logits (B,K)."""
        return self.head(self.features(x))

    # ------------------------------------------------------------------ predict
    def _iter_images(self, images: Any) -> tuple[int, Iterable[Any]]:
        from .data import ImageSource

        if isinstance(images, ImageSource):
            return len(images), (images[i] for i in range(len(images)))
        from PIL import Image

        if isinstance(images, (str, os.PathLike, Image.Image)):
            images = [images]
        images = list(images)
        return len(images), iter(images)

    @torch.no_grad()
    def predict_proba(
        self, images: Any, *, batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        """Class probabilities (N,K) float32 for image paths, PIL images, uint8 arrays or
        an ImageSource."""
        from tqdm.auto import tqdm

        n, items = self._iter_images(images)
        device = next(self.parameters()).device
        out = np.zeros((n, len(self.classes)), dtype=np.float32)
        was_training = self.training
        self.eval()
        batch: list[torch.Tensor] = []
        start = 0
        bar = tqdm(total=n, desc="predict", disable=not progress, leave=False)
        try:
            for item in items:
                batch.append(self.transform(_open_image(item)))
                if len(batch) == batch_size:
                    out[start : start + len(batch)] = self._probs(torch.stack(batch).to(device))
                    start += len(batch)
                    bar.update(len(batch))
                    batch = []
            if batch:
                out[start : start + len(batch)] = self._probs(torch.stack(batch).to(device))
                bar.update(len(batch))
        finally:
            bar.close()
            self.train(was_training)
        return out

    def _probs(self, x: torch.Tensor) -> np.ndarray:
        return torch.softmax(self(x), dim=1).float().cpu().numpy()

    def predict(self, images: Any, *, batch_size: int = 64) -> np.ndarray:
        """Predicted class names (N,) dtype object."""
        probs = self.predict_proba(images, batch_size=batch_size)
        return np.asarray(self.classes, dtype=object)[probs.argmax(1)]

    def predict_frame(
        self, images: Any, *, ids: Sequence[str] | None = None, batch_size: int = 64,
        progress: bool = True,
    ):
        """Predictions as a DataFrame: ``item`` (id, path or position), ``prediction``,
        ``confidence`` and one ``p_<class>`` column per class."""
        from .data import ImageSource

        probs = self.predict_proba(images, batch_size=batch_size, progress=progress)
        if ids is None:
            if isinstance(images, ImageSource):
                ids = list(images.ids)
            elif isinstance(images, (list, tuple)) and all(
                isinstance(i, (str, os.PathLike)) for i in images
            ):
                ids = [str(i) for i in images]
            else:
                ids = list(range(len(probs)))
        return frame_from_probs(probs, self.classes, ids)

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | os.PathLike) -> Path:
        """Write weights + metadata to one ``.safetensors`` file; returns the path."""
        from safetensors.torch import save_file

        path = Path(path)
        if path.suffix != ".safetensors":
            path = path.with_suffix(path.suffix + ".safetensors") if path.suffix else path.with_suffix(".safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        meta = {
            "format": FORMAT,
            "format_version": str(FORMAT_VERSION),
            "classes": json.dumps(self.classes),
            "preprocessing": json.dumps(self.preprocessing),
            "architecture": json.dumps(self.architecture),
        }
        save_file(state, str(path), metadata=meta)
        logger.info("saved %s (%d tensors)", path, len(state))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str | None = None) -> ExportedModel:
        """Load a model written by :meth:`save`. Refuses pickled files (``torch.save``)."""
        from safetensors import safe_open

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"Model file not found: {path}")
        _check_safetensors_header(path)
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise ValueError(
                    f"{path} is a safetensors file but not a dfwidgets model (no "
                    f"'{FORMAT}' metadata); save models with ExportedModel.save()."
                )
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        classes = json.loads(meta["classes"])
        preprocessing = json.loads(meta["preprocessing"])
        architecture = json.loads(meta["architecture"])
        backbone = build_backbone(architecture)
        weight = state["head.weight"]
        head = nn.Linear(weight.shape[1], weight.shape[0])
        model = cls(
            backbone, head, classes=classes, preprocessing=preprocessing, architecture=architecture
        )
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{path} does not match the '{architecture.get('embedder')}' backbone: "
                f"missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]}."
            )
        from ._config import select_device

        return model.to(select_device(device)).eval()

    def extra_repr(self) -> str:
        return f"classes={self.classes}, embedder={self.architecture.get('embedder')!r}"


def frame_from_probs(probs: np.ndarray, classes: Sequence[str], ids: Sequence[Any]):
    """DataFrame[item, prediction, confidence, p_<class>...] from (N,K) probabilities."""
    import pandas as pd

    probs = np.asarray(probs, dtype=np.float32)
    names = np.asarray(list(classes), dtype=object)
    frame = pd.DataFrame(
        {
            "item": list(ids),
            "prediction": names[probs.argmax(1)] if len(probs) else np.array([], dtype=object),
            "confidence": probs.max(1) if len(probs) else np.array([], dtype=np.float32),
        }
    )
    for k, name in enumerate(classes):
        frame[f"p_{name}"] = probs[:, k]
    return frame


def _check_safetensors_header(path: Path) -> None:
    """Raise a clear error unless ``path`` starts like a safetensors file."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    pickled = head[:2] == b"PK" or head[:1] == b"\x80"
    ok = len(head) == 9 and head[8:9] == b"{"
    if pickled or not ok:
        what = "a pickle (torch.save) file" if pickled else "not a safetensors file"
        raise ValueError(
            f"Refusing to load {path}: it is {what}. Pickled model files can run arbitrary "
            "code when loaded, so dfwidgets only loads .safetensors files written by "
            "ExportedModel.save(). If you trust the file, load it yourself with "
            "torch.load(..., weights_only=True) and re-export it."
        )


def build_backbone(architecture: dict) -> nn.Module:
    """Rebuild the backbone module named in ``architecture["embedder"]`` (weights are then
    overwritten from the file)."""
    name = architecture.get("embedder")
    if not name:
        raise ValueError("The model file does not name its embedder; cannot rebuild the backbone.")
    from ._embedders.open_clip import NAME_PREFIX, architecture_only
    from .embed import get_embedder

    try:  # open_clip: the weights come from the file, nothing is downloaded
        embedder = (architecture_only(name) if name.startswith(NAME_PREFIX)
                    else get_embedder(name, device="cpu"))
    except Exception as exc:
        raise RuntimeError(
            f"Cannot rebuild the '{name}' backbone to load this model: {exc}"
        ) from exc
    import copy

    module = copy.deepcopy(embedder.module).cpu()
    if architecture.get("maps"):  # a fine-tuned head that also reads stage maps
        module.maps = tuple(int(m) for m in architecture["maps"])
    return module
