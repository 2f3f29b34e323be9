"""Shared eval preprocessing: resize the short side, centre-crop, scale to float."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import PIL.Image

if TYPE_CHECKING:
    import torch

__all__ = ["ResizeToTensor"]


class ResizeToTensor:
    """PIL image -> (C,S,S) float tensor; also a vectorised path for uint8 arrays.

    The short side is resized to ``size`` (bilinear), the long side centre-cropped, and
    values mapped to ``(x/255 - mean) / std``. ``grey=True`` keeps one channel.
    """

    def __init__(self, size: int, *, mean: float, std: float, grey: bool = False) -> None:
        self.size = int(size)
        self.mean = float(mean)
        self.std = float(std)
        self.grey = grey

    def __call__(self, image: PIL.Image.Image) -> torch.Tensor:
        image = image.convert("L" if self.grey else "RGB")
        w, h = image.size
        scale = self.size / min(w, h)
        nw, nh = max(self.size, round(w * scale)), max(self.size, round(h * scale))
        if (nw, nh) != (w, h):
            image = image.resize((nw, nh), PIL.Image.Resampling.BILINEAR)
        left, top = (nw - self.size) // 2, (nh - self.size) // 2
        if (nw, nh) != (self.size, self.size):
            image = image.crop((left, top, left + self.size, top + self.size))
        arr = np.asarray(image, dtype=np.uint8)
        arr = arr[:, :, None] if arr.ndim == 2 else arr
        import torch

        x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float()
        return (x / 255.0 - self.mean) / self.std

    def batch_from_uint8(self, arr: np.ndarray) -> torch.Tensor:
        """uint8 (B,H,W) or (B,H,W,C) -> (B,C',S,S) float, same result as ``__call__``
        up to interpolation rounding (bilinear, half-pixel centres like PIL)."""
        import torch
        from torch.nn import functional as F

        arr = np.ascontiguousarray(arr)
        x = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
        if x.ndim == 3:
            x = x[:, None]
        else:
            x = x.permute(0, 3, 1, 2)
        channels = x.shape[1]
        if channels == 4:
            x = x[:, :3]
        x = x.float()
        if self.grey and x.shape[1] == 3:
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x * weights).sum(1, keepdim=True)
        elif not self.grey and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        h, w = x.shape[2:]
        scale = self.size / min(w, h)
        nw, nh = max(self.size, round(w * scale)), max(self.size, round(h * scale))
        if (nh, nw) != (h, w):
            x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False,
                              antialias=nh < h or nw < w)
            x = x.round().clamp(0, 255)  # match PIL's uint8 output
        top, left = (nh - self.size) // 2, (nw - self.size) // 2
        x = x[:, :, top : top + self.size, left : left + self.size]
        return (x / 255.0 - self.mean) / self.std
