"""Thumbnails packed into PNG sprite sheets (sent to the browser once each), cached on disk.

Sheet ``k`` holds items ``k*per_sheet ... (k+1)*per_sheet - 1`` in a grid of ``per_row``
columns of ``thumb_size`` px cells; item ``i`` sits at column ``(i % per_sheet) % per_row``,
row ``(i % per_sheet) // per_row``. Each thumbnail keeps its aspect ratio, centred in its
cell on a transparent background (RGBA PNG).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ._config import cache_dir as _cache_dir

__all__ = ["SpriteSheets", "ThumbCache", "encode_image", "encode_item"]

log = logging.getLogger(__name__)

_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
_VERSION = "1"


def encode_image(img: Image.Image | np.ndarray, *, size: int | None = None,
                 format: str = "png") -> bytes:
    """Encode an image (PIL or uint8 (H,W[,C]) array) to bytes; ``size`` bounds its
    longest side (aspect ratio kept, small images are upscaled with nearest-neighbour so
    pixels stay crisp)."""
    fmt = _FORMATS.get(format.lower())
    if fmt is None:
        raise ValueError(f"format must be one of {sorted(_FORMATS)}; got {format!r}.")
    if isinstance(img, np.ndarray):
        if img.dtype != np.uint8:
            raise ValueError(f"image arrays must be uint8; got {img.dtype}.")
        img = Image.fromarray(img)
    if size is not None:
        if size <= 0:
            raise ValueError(f"size must be a positive number of pixels; got {size}.")
        img = _fit(img, size)
    if fmt == "JPEG" and img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"optimize": False, "compress_level": 6} if fmt == "PNG" else {}))
    return buf.getvalue()


def encode_item(img: Image.Image | np.ndarray, *, edge: int) -> tuple[bytes, str, tuple[int, int]]:
    """One item's image as the page shows it -> (bytes, mime, (width, height)).

    Small images (longest side <= ``edge // 2``) stay native-size PNG (the page scales
    them up, pixelated); larger ones become a JPEG whose longest side is at most
    ``2 * edge`` (sharp on high-DPI screens). The one image-encoding path of the widgets.
    """
    if isinstance(img, np.ndarray):
        if img.dtype != np.uint8:
            raise ValueError(f"image arrays must be uint8; got {img.dtype}.")
        img = Image.fromarray(img)
    if max(img.size) <= edge // 2:
        buf = io.BytesIO()
        img.save(buf, format="PNG", optimize=False, compress_level=1)
        return buf.getvalue(), "image/png", img.size
    if max(img.size) > 2 * edge:
        img = img.copy()
        img.thumbnail((2 * edge, 2 * edge), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=88)
    return buf.getvalue(), "image/jpeg", img.size


def _fit(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    if new == (w, h):
        return img
    resample = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.LANCZOS
    return img.resize(new, resample)


class SpriteSheets:
    """Thumbnails of an ImageSource packed into PNG sprite sheets, built lazily, cached.

    ``sheet(k) -> bytes`` (PNG, ``per_row*thumb_size`` px wide), ``locate(i) -> (sheet,
    x, y)`` pixel offsets of item ``i``'s cell, ``n_sheets``, ``per_sheet``.
    """

    def __init__(
        self,
        source: Any,
        *,
        thumb_size: int = 32,
        per_row: int = 64,
        rows_per_sheet: int | None = None,
        cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        if not 4 <= int(thumb_size) <= 256:
            raise ValueError(f"thumb_size must be 4..256 px; got {thumb_size}.")
        if not 1 <= int(per_row) <= 256:
            raise ValueError(f"per_row must be 1..256; got {per_row}.")
        self.source = source
        self.thumb_size = int(thumb_size)
        self.per_row = int(per_row)
        self.rows_per_sheet = int(rows_per_sheet or per_row)
        self.cache = cache
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._memory: dict[int, bytes] = {}
        self._folder: Path | None = None

    def __len__(self) -> int:
        return len(self.source)

    @property
    def per_sheet(self) -> int:
        """Thumbnails per sheet."""
        return self.per_row * self.rows_per_sheet

    @property
    def n_sheets(self) -> int:
        """Number of sheets for all items."""
        return -(-len(self.source) // self.per_sheet)

    @property
    def sheet_size(self) -> tuple[int, int]:
        """(width, height) px of a full sheet."""
        return self.per_row * self.thumb_size, self.rows_per_sheet * self.thumb_size

    def meta(self) -> dict:
        """JSON-able description for the browser: thumb_size, per_row, per_sheet, n_sheets."""
        return {
            "thumb_size": self.thumb_size,
            "per_row": self.per_row,
            "per_sheet": self.per_sheet,
            "n_sheets": self.n_sheets,
            "n": len(self.source),
        }

    def locate(self, index: int) -> tuple[int, int, int]:
        """(sheet, x, y): the sheet holding item ``index`` and its cell's top-left pixel."""
        n = len(self.source)
        if not 0 <= int(index) < n:
            raise IndexError(f"item index {index} is out of range 0..{n - 1}.")
        sheet, pos = divmod(int(index), self.per_sheet)
        row, col = divmod(pos, self.per_row)
        return sheet, col * self.thumb_size, row * self.thumb_size

    def _cache_folder(self) -> Path | None:
        if not self.cache:
            return None
        if self._folder is None:
            fp = getattr(self.source, "fingerprint", None)
            if fp is None:
                return None
            h = hashlib.blake2b(
                f"{fp()}|{self.thumb_size}|{self.per_row}|{self.rows_per_sheet}|{_VERSION}".encode(),
                digest_size=12,
            ).hexdigest()
            self._folder = _cache_dir(self.cache_dir, sub=f"thumbs/{h}")
        return self._folder

    def sheet(self, k: int) -> bytes:
        """PNG bytes of sheet ``k`` (built on first use; from the disk cache afterwards)."""
        if not 0 <= int(k) < self.n_sheets:
            raise IndexError(f"sheet {k} is out of range 0..{self.n_sheets - 1}.")
        k = int(k)
        with self._lock:
            if k in self._memory:
                return self._memory[k]
            folder = self._cache_folder()
            path = folder / f"sheet_{k:05d}.png" if folder else None
            if path is not None and path.exists():
                data = path.read_bytes()
            else:
                data = self._build(k)
                if path is not None:
                    tmp = path.with_suffix(".tmp")
                    tmp.write_bytes(data)
                    os.replace(tmp, path)
            if len(self._memory) < 8:  # a few sheets in memory; the disk keeps the rest
                self._memory[k] = data
            return data

    def thumbnail(self, index: int) -> Image.Image:
        """The RGBA thumbnail of item ``index`` (``thumb_size`` square, aspect kept)."""
        return self._thumb(self.source[int(index)])

    def _thumb(self, img: Image.Image) -> Image.Image:
        t = self.thumb_size
        small = _fit(img.convert("RGBA") if img.mode != "RGBA" else img, t)
        cell = Image.new("RGBA", (t, t), (0, 0, 0, 0))
        cell.paste(small, ((t - small.width) // 2, (t - small.height) // 2))
        return cell

    def _build(self, k: int) -> bytes:
        start = k * self.per_sheet
        stop = min(len(self.source), start + self.per_sheet)
        count = stop - start
        rows = -(-count // self.per_row)
        t = self.thumb_size
        sheet = Image.new("RGBA", (self.per_row * t, rows * t), (0, 0, 0, 0))
        arr = getattr(self.source, "array", None)
        for j in range(count):
            i = start + j
            img = Image.fromarray(arr[i]) if arr is not None else self.source[i]
            row, col = divmod(j, self.per_row)
            sheet.paste(self._thumb(img), (col * t, row * t))
        buf = io.BytesIO()
        sheet.save(buf, format="PNG", compress_level=6)
        log.debug("built sprite sheet %d (%d thumbnails, %d bytes)", k, count, buf.tell())
        return buf.getvalue()


def sprite_sheets(source: Any, *, size: int = 64, per_row: int | None = None,
                  cache: bool = True, cache_dir: str | os.PathLike | None = None
                  ) -> tuple[list[bytes], np.ndarray]:
    """Build every sprite sheet of ``source`` at once.

    Returns ``(sheets, positions)``: the PNG bytes of each sheet and an ``(N, 3)`` int32
    array of ``(sheet, x, y)`` per item (top-left pixel of its ``size`` x ``size`` cell).
    Sheets are cached on disk like embeddings (see :class:`SpriteSheets`).
    """
    per_row = per_row or max(1, min(64, 4096 // int(size)))
    sheets = SpriteSheets(source, thumb_size=size, per_row=per_row, cache=cache,
                          cache_dir=cache_dir)
    images = [sheets.sheet(k) for k in range(sheets.n_sheets)]
    positions = np.array([sheets.locate(i) for i in range(len(source))], dtype=np.int32)
    return images, positions.reshape(-1, 3)


Encoded = tuple[bytes, str, tuple[int, int]]


class ThumbCache:
    """Item thumbnails made on demand (only what the page asks for: the hovered or pinned
    item), kept in a least-recently-used cache of at most ``max_items`` entries.

    ``encode(index, edge) -> (bytes, mime, (w, h))`` makes one (e.g.
    ``session.item_image_bytes``). ``requests`` counts calls of :meth:`get`, ``built``
    the thumbnails encoded, ``hits`` those served from the cache.
    """

    def __init__(self, encode: Callable[..., Encoded], *, max_items: int = 4096) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1; got {max_items}.")
        self._encode = encode
        self.max_items = int(max_items)
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[int, int], Encoded] = OrderedDict()
        self.requests = 0
        self.built = 0
        self.hits = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, indices: Sequence[int], *, edge: int) -> list[Encoded | Exception]:
        """One encoded thumbnail per index (``edge`` px longest side), or the exception
        that reading it raised (one unreadable item does not stop the others)."""
        with self._lock:
            self.requests += 1
        return [self._one(int(i), int(edge)) for i in indices]

    def reply(self, indices: Sequence[int], *, edge: int
              ) -> tuple[list[dict[str, Any]], list[bytes], list[int]]:
        """(metas, buffers, missing) for a page's image request: ``{"index", "mime",
        "width", "height"}`` and the bytes of each readable item, the indices of the rest."""
        metas: list[dict[str, Any]] = []
        buffers: list[bytes] = []
        missing: list[int] = []
        for i, got in zip(indices, self.get(indices, edge=edge)):
            if isinstance(got, Exception):
                log.warning("could not encode item %s: %s", i, got)
                missing.append(int(i))
                continue
            data, mime, (w, h) = got
            metas.append({"index": int(i), "mime": mime, "width": w, "height": h})
            buffers.append(data)
        return metas, buffers, missing

    def _one(self, i: int, edge: int) -> Encoded | Exception:
        key = (i, edge)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return hit
        try:
            value = self._encode(i, edge=edge)
        except Exception as exc:  # noqa: BLE001 - reported per item by the caller
            return exc
        with self._lock:
            self.built += 1
            self._items[key] = value
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget every cached thumbnail (e.g. the source changed)."""
        with self._lock:
            self._items.clear()
