"""open_clip image + text embedder, with a fast, explanatory failure when its weights
cannot be fetched (no network) and offline use of weights already in the local cache."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

__all__ = ["NAME_PREFIX", "OpenClipEmbedder", "architecture_only", "looks_like_path", "parse_name"]

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = {"ViT-B-32": "laion2b_s34b_b79k"}
RANDOM_INIT = ("random", "none")
CONNECT_TIMEOUT_S = 3.0
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def _import_open_clip():
    try:
        import open_clip
    except ImportError as exc:
        raise ImportError(
            'open_clip models need the "clip" extra: pip install "dfwidgets[clip]" '
            "(or use the offline backbone: model=\"efficientnet_lite0\")"
        ) from exc
    return open_clip


#: prefix of the names OpenClipEmbedder gives itself: ``open_clip:<architecture>/<tag>``
NAME_PREFIX = "open_clip:"


def looks_like_path(value: str) -> bool:
    """True for strings that name a file rather than a pretrained tag or an embedder name
    (``open_clip:ViT-B-32/<tag>`` contains "/" but is a name, not a path)."""
    if value.startswith(NAME_PREFIX) and not os.path.exists(os.path.expanduser(value)):
        return False
    return os.sep in value or value.startswith(("~", ".")) or value.lower().endswith(_CHECKPOINT_SUFFIXES)


def parse_name(name: str) -> tuple[str, str]:
    """``"open_clip:ViT-B-32/laion2b_s34b_b79k"`` -> ``("ViT-B-32", "laion2b_s34b_b79k")``
    (the tag may be "random" or ``file:<name>:<size>:<mtime>``); ValueError otherwise."""
    if not name.startswith(NAME_PREFIX) or "/" not in name:
        raise ValueError(f"{name!r} is not an open_clip embedder name "
                         f"('{NAME_PREFIX}<architecture>/<pretrained tag>').")
    arch, tag = name[len(NAME_PREFIX):].split("/", 1)
    return arch, tag


def architecture_only(name: str, *, device: str = "cpu") -> OpenClipEmbedder:
    """The embedder named ``name`` (``open_clip:<arch>/<tag>``) with randomly initialised
    weights (nothing downloaded): for loading a saved model whose weights are in its file."""
    return OpenClipEmbedder(parse_name(name)[0], pretrained="random", device=device)


def _from_name(model: str, pretrained: str | None) -> tuple[str, str | None]:
    """(architecture, pretrained) for ``model`` given as an embedder name
    (``open_clip:<arch>/<tag>``, what a saved project or model file records) or as an
    architecture. A checkpoint-file tag cannot be found again from its name alone."""
    if not model.startswith(NAME_PREFIX):
        return model, pretrained
    arch, tag = parse_name(model)
    if pretrained is not None and pretrained != tag:
        raise ValueError(f"model={model!r} already names its weights ({tag!r}); drop "
                         f"pretrained={pretrained!r} or pass model={arch!r}.")
    if tag.startswith("file:"):
        raise FileNotFoundError(
            f"{model!r} was made from a local checkpoint file ({tag.split(':')[1]}); its path "
            f"is not saved. Pass the file again: model={arch!r}, "
            "pretrained='/path/to/checkpoint' (or give the embedder object).")
    return arch, tag


def _hub_cache_dir() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover
        return os.path.expanduser("~/.cache/huggingface/hub")


def _reachable(url: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """None if a TCP connection to the url's host succeeds within ``timeout``, else why not."""
    parsed = urlparse(url)
    host = parsed.hostname or url
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    outcome: list[str | None] = []

    def attempt() -> None:  # in a thread: DNS lookups ignore the socket timeout
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except OSError as exc:
            outcome.append(f"{host}:{port} is unreachable ({exc.__class__.__name__}: {exc})")

    worker = threading.Thread(target=attempt, daemon=True, name="dfwidgets-hub-check")
    worker.start()
    worker.join(timeout + 0.5)
    if not outcome:
        return f"{host}:{port} did not answer within {timeout:.0f} s (DNS or connection timeout)"
    return outcome[0]


def _offline_error(model: str, pretrained: str, where: str, why: str) -> ConnectionError:
    return ConnectionError(
        f"Cannot load open_clip model {model!r} (pretrained={pretrained!r}): its weights are "
        f"not in the local cache ({where}) and cannot be downloaded: {why}.\n"
        "Fix it one of these ways:\n"
        f"  * pass a local checkpoint file: dfw.embed(src, model={model!r}, "
        "pretrained='/path/to/open_clip_pytorch_model.bin')\n"
        f"  * copy the checkpoint into the cache folder above on a machine with internet\n"
        "  * use the offline backbone, which ships with dfwidgets and needs no download: "
        "dfw.embed(src, model='efficientnet_lite0')"
    )


def resolve_checkpoint(model: str, pretrained: str | None) -> tuple[str | None, dict]:
    """Decide where the weights come from, without slow network calls.

    Returns ``(checkpoint, cfg)``: a local file path, a pretrained tag open_clip may
    download (the host answered), or None for random init; ``cfg`` is open_clip's
    pretrained config (mean/std/quick_gelu) or {}. Raises ``ConnectionError`` within
    a few seconds when the weights are neither cached nor downloadable.
    """
    open_clip = _import_open_clip()
    if pretrained is not None and pretrained.lower() in RANDOM_INIT:
        return None, {}
    if pretrained is not None and looks_like_path(pretrained):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"open_clip checkpoint file not found: '{path}'. Pass the path of an existing "
                f"checkpoint (e.g. open_clip_pytorch_model.bin for {model!r}), a pretrained tag "
                f"from open_clip.list_pretrained_tags_by_model({model!r}), or use the offline "
                "backbone model='efficientnet_lite0'."
            )
        return str(path.resolve()), {}
    tags = open_clip.list_pretrained_tags_by_model(model)
    if pretrained is None:
        pretrained = DEFAULT_PRETRAINED.get(model) or (tags[0] if tags else None)
        if pretrained is None:
            raise ValueError(
                f"open_clip model {model!r} has no pretrained weights; pass pretrained='random' "
                "for random init or pretrained='/path/to/checkpoint'"
            )
    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not cfg:
        raise ValueError(
            f"open_clip has no pretrained weights {pretrained!r} for model {model!r}; "
            f"choose one of {tags} or pass pretrained='/path/to/checkpoint'"
        )
    if cfg.get("hf_hub"):
        repo_id, filename = os.path.split(cfg["hf_hub"])  # "org/repo/" or "org/repo/file.bin"
        filenames = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        if filename.endswith((".bin", ".pth")):
            filenames.insert(0, filename.rsplit(".", 1)[0] + ".safetensors")
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError as exc:  # pragma: no cover
            raise ImportError('pip install "dfwidgets[clip]" (needs huggingface_hub)') from exc
        for name in filenames:
            cached = try_to_load_from_cache(repo_id, name)
            if isinstance(cached, str) and os.path.isfile(cached):
                log.info("open_clip %s/%s: using cached weights %s", model, pretrained, cached)
                return cached, cfg
        where = f"{_hub_cache_dir()}, repo {repo_id}"
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    else:
        url = cfg.get("url", "")
        cached = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(url))
        if os.path.isfile(cached):
            return cached, cfg
        where, endpoint = cached, url
    why = _reachable(endpoint)
    if why is not None:
        raise _offline_error(model, pretrained, where, why)
    return pretrained, cfg


class OpenClipEmbedder:
    """Any open_clip model: image tower for ``module``, text tower for ``embed_text``.

    ``pretrained``: a tag (default for ViT-B-32: laion2b_s34b_b79k), a local checkpoint
    path, or "random" (random init, seeded, for tests). The weights are located when
    the embedder is created (fails fast offline) and loaded on first use.
    """

    supports_text = True
    VERSION = 1

    def __init__(self, model: str = DEFAULT_MODEL, *, pretrained: str | None = None,
                 device: str = "cpu") -> None:
        open_clip = _import_open_clip()
        model, pretrained = _from_name(model, pretrained)
        if model not in open_clip.list_models():
            raise ValueError(
                f"unknown model {model!r}: not an open_clip architecture (see "
                "open_clip.list_models()), nor 'efficientnet_lite0' or 'pixels'"
            )
        self.model_name = model
        self.device = device
        start = time.perf_counter()
        self.checkpoint, self._cfg = resolve_checkpoint(model, pretrained)
        log.debug("resolved open_clip weights in %.2fs", time.perf_counter() - start)
        if self.checkpoint is None:
            tag = "random"
        elif os.path.isfile(self.checkpoint) and pretrained is not None and looks_like_path(pretrained):
            st = os.stat(self.checkpoint)
            tag = f"file:{Path(self.checkpoint).name}:{st.st_size}:{st.st_mtime_ns}"
        else:
            tag = pretrained or DEFAULT_PRETRAINED.get(model, "")
        self.pretrained = tag
        self.name = f"open_clip:{model}/{tag}"
        size = open_clip.get_model_config(model)["vision_cfg"].get("image_size", 224)
        self.image_size = int(size if isinstance(size, int) else size[0])
        self.dim = int(open_clip.get_model_config(model)["embed_dim"])
        self.cache_key = f"open_clip/v{self.VERSION}/{model}/{tag}/size{self.image_size}/open_clip-preprocess"

    @cached_property
    def _model_and_transform(self) -> tuple[nn.Module, object]:
        open_clip = _import_open_clip()
        cfg = self._cfg
        kwargs = dict(
            image_mean=cfg.get("mean"), image_std=cfg.get("std"),
            image_interpolation=cfg.get("interpolation"), image_resize_mode=cfg.get("resize_mode"),
            force_quick_gelu=bool(cfg.get("quick_gelu", False)),
        )
        if self.checkpoint is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model, _, preprocess = open_clip.create_model_and_transforms(self.model_name, **kwargs)
        else:
            model, _, preprocess = open_clip.create_model_and_transforms(
                self.model_name, pretrained=self.checkpoint, **kwargs
            )
        return model.eval().to(self.device), preprocess

    @property
    def clip_model(self) -> nn.Module:
        """The whole open_clip model (image and text towers)."""
        return self._model_and_transform[0]

    @cached_property
    def module(self) -> nn.Module:
        """(B,3,S,S) preprocessed -> (B,dim) image features (unnormalised)."""
        return _ImageTower(self.clip_model)

    @property
    def transform(self):
        """open_clip's eval preprocessing: PIL image -> (3,S,S)."""
        return self._model_and_transform[1]

    @cached_property
    def tokenizer(self):
        return _import_open_clip().get_tokenizer(self.model_name)

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """texts (T,) -> (T,dim) float32, L2-normalised."""
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("embed_text needs a list of strings")
        model = self.clip_model
        with torch.inference_mode():
            tokens = self.tokenizer(texts).to(self.device)
            feats = model.encode_text(tokens).float()
            feats = nn.functional.normalize(feats, dim=-1)
        return feats.cpu().numpy().astype(np.float32)

    def __repr__(self) -> str:
        return f"OpenClipEmbedder({self.name!r}, dim={self.dim})"


class _ImageTower(nn.Module):
    def __init__(self, clip_model: nn.Module) -> None:
        super().__init__()
        self.clip_model = clip_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.clip_model.encode_image(x)
