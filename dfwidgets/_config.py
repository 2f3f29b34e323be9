"""Package-wide settings: where caches live, which device to use."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "select_device"]


def cache_dir(override: str | os.PathLike | None = None, *, sub: str | None = None) -> Path:
    """Return (and create) the dfwidgets cache folder.

    Order: the ``override`` argument, then ``$DFW_CACHE_DIR``, then the user's cache
    dir (``platformdirs.user_cache_dir("dfwidgets")``). ``sub`` appends a sub-folder.
    """
    if override is not None:
        base = Path(override)
    elif os.environ.get("DFW_CACHE_DIR"):
        base = Path(os.environ["DFW_CACHE_DIR"])
    else:
        import platformdirs

        base = Path(platformdirs.user_cache_dir("dfwidgets"))
    path = base / sub if sub else base
    path.mkdir(parents=True, exist_ok=True)
    return path


def select_device(device: str | None = None) -> str:
    """Pick a torch device string: the given one, else cuda > mps > cpu."""
    if device is not None:
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"
