"""Decoding images to RGB: files, uint8 arrays, tensors; short reasons for bad files.

Every reader hands out RGB PIL images; alpha is composited on white, palettes expanded,
16-bit and float greys scaled to 8 bits. Failures become one-line reasons (see
:func:`failure_reason`) that :class:`~dfwidgets.data.problems.ProblemLog` records.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import warnings
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "IO_THREADS", "PLACEHOLDER_GREY", "any_to_rgb", "array_to_rgb", "as_uint8_images", "failure_reason",
    "open_rgb", "probe_file", "to_rgb",
]

logger = logging.getLogger(__name__)

#: Colour of the placeholder shown for an item that could not be read.
PLACEHOLDER_GREY = (128, 128, 128)
IO_THREADS = 8  # file reads wait on the disk (or network share), not the CPU

_OPEN_LOCK = threading.Lock()  # warnings.catch_warnings is process-global, not per thread


def failure_reason(exc: BaseException) -> str:
    """A short, user-facing reason for a file that failed with ``exc``."""
    if isinstance(exc, Image.DecompressionBombError):
        return f"decompression bomb: {exc} Raise PIL.Image.MAX_IMAGE_PIXELS if you trust this file."
    if isinstance(exc, FileNotFoundError):
        return "missing: file not found"
    if isinstance(exc, PermissionError):
        return "unreadable: permission denied"
    if isinstance(exc, IsADirectoryError):
        return "unreadable: is a folder, not a file"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image: PIL cannot identify the file format"
    return f"decode failed: {type(exc).__name__}: {exc}"


def _open_quietly(path: str) -> Image.Image:
    """``Image.open`` without PIL's per-file DecompressionBombWarning (over-limit images
    that are below twice the limit still open; larger ones raise DecompressionBombError)."""
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path)


def probe_file(path: str) -> tuple[tuple[int, int] | None, str | None]:
    """Cheap header check: ``((width, height), None)`` when fine, ``(None, reason)`` when not."""
    if not path:
        return None, "missing: no path given"
    try:
        st = os.stat(path)
    except OSError as exc:
        return None, failure_reason(exc)
    if stat.S_ISDIR(st.st_mode):
        return None, "unreadable: is a folder, not a file"
    if st.st_size == 0:
        return None, "empty: zero-byte file"
    try:
        with _open_quietly(path) as img:
            return img.size, None
    except Exception as exc:  # noqa: BLE001 - report, never raise
        return None, failure_reason(exc)


def open_rgb(path: str) -> Image.Image:
    """Fully decode a file to RGB (EXIF rotation applied); raises on any failure."""
    if not path:
        raise FileNotFoundError("no path given")
    if os.path.getsize(path) == 0:
        raise UnidentifiedImageError("zero-byte file")
    with _open_quietly(path) as img:
        img.load()
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # noqa: BLE001 - a bad EXIF block is not worth losing the image
            logger.debug("ignoring bad EXIF orientation in %s", path)
        return to_rgb(img)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB: alpha composited on white, palettes expanded, CMYK converted,
    16-bit / 32-bit / float grey scaled to 8 bits."""
    mode = img.mode
    if mode == "RGB":
        return img.copy() if img.readonly else img
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
        if mode == "RGB":
            return img
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(img).astype(np.float64)
        if mode.startswith("I;16") or (mode == "I" and a.size and a.min() >= 0 and a.max() <= 65535
                                       and a.max() > 255):
            a = a / 257.0
        elif mode == "F" and a.size and a.min() >= 0 and a.max() <= 1:
            a = a * 255.0
        elif a.size and (a.min() < 0 or a.max() > 255):
            lo, hi = float(a.min()), float(a.max())
            a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        grey = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    return img.convert("RGB")


def array_to_rgb(a: np.ndarray) -> Image.Image:
    """One uint8 image ``(H, W)`` / ``(H, W, C)`` -> RGB PIL image."""
    if a.ndim == 2:
        return Image.fromarray(a).convert("RGB")
    c = a.shape[2]
    if c == 3:
        return Image.fromarray(a)
    if c == 1:
        return Image.fromarray(a[:, :, 0]).convert("RGB")
    return to_rgb(Image.fromarray(a))  # (H, W, 4) -> RGBA, composited on white


def as_uint8_images(arr: Any) -> np.ndarray:
    """Validate / convert an image array to uint8 ``(N, H, W)`` or ``(N, H, W, C)``."""
    if hasattr(arr, "detach"):
        arr = arr.detach().cpu().numpy()
    a = np.asarray(arr)
    if a.ndim not in (3, 4):
        raise ValueError(
            f"from_array needs shape (N, H, W) or (N, H, W, C), got {a.shape}; for a single "
            "image use arr[None]."
        )
    if a.shape[0] == 0:
        raise ValueError("from_array got 0 images.")
    if a.ndim == 4 and a.shape[3] not in (1, 3, 4):
        hint = (" It looks channels-first: use arr.transpose(0, 2, 3, 1)."
                if a.shape[1] in (1, 3, 4) else "")
        raise ValueError(f"from_array: the last axis must be 1, 3 or 4 channels, got shape {a.shape}.{hint}")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if np.issubdtype(a.dtype, np.floating):
        lo, hi = (float(np.nanmin(a)), float(np.nanmax(a)))
        if np.isnan(a).any() or lo < 0 or hi > 1:
            raise ValueError(
                f"from_array: float images must hold values in [0, 1] (got min {lo:g}, max {hi:g}"
                f"{', and NaN' if np.isnan(a).any() else ''}); scale them and pass "
                "(arr * 255).round().astype(np.uint8)."
            )
        logger.warning("from_array: float images in [0, 1] were scaled to uint8 0..255.")
        return np.rint(a * 255.0).astype(np.uint8)
    fix = ""
    if np.issubdtype(a.dtype, np.integer) and a.size and a.min() >= 0 and a.max() <= 255:
        fix = " The values fit in 0..255, so arr.astype(np.uint8) works."
    elif np.issubdtype(a.dtype, np.integer):
        fix = " Rescale to 0..255 first, e.g. (arr / arr.max() * 255).astype(np.uint8)."
    raise ValueError(f"from_array needs dtype uint8 (or float in [0, 1]), got {a.dtype}.{fix}")


def any_to_rgb(image: Any) -> Image.Image:
    """PIL image, CHW tensor (float [0, 1] or uint8) or HWC/HW ndarray -> RGB PIL image."""
    if isinstance(image, Image.Image):
        image.load()
        return to_rgb(image)
    is_tensor = hasattr(image, "detach")
    if is_tensor:
        image = image.detach().cpu().numpy()
    a = np.asarray(image)
    if a.ndim == 3 and is_tensor and a.shape[0] in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # CHW -> HWC
    elif a.ndim == 3 and a.shape[-1] not in (1, 3, 4) and a.shape[0] in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (1, 3, 4)):
        raise ValueError(f"cannot read an image of shape {a.shape}; expected HW, HWC or CHW.")
    if np.issubdtype(a.dtype, np.floating):
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0 and hi <= 1:
            a = a * 255.0
        elif hi > lo:  # e.g. normalised tensors: stretch to the visible range
            a = (a - lo) * (255.0 / (hi - lo))
        a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        if a.size and a.min() >= 0 and a.max() <= 255:
            a = a.astype(np.uint8)
        else:
            a = np.clip(np.rint(a.astype(np.float64) / max(float(a.max()), 1.0) * 255), 0, 255).astype(np.uint8)
    return array_to_rgb(np.ascontiguousarray(a))
