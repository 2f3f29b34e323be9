"""Helpers shared by the widgets (no public class here)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import traitlets

STATIC = Path(__file__).resolve().parent.parent / "static"


def bundle(name: str) -> Path:
    """Path of the built ES module for widget ``name`` (js/src/<name>.js)."""
    path = STATIC / f"{name}.js"
    if not path.exists():
        raise FileNotFoundError(
            f"The JS bundle {path} is missing. Build it with: cd js && npm ci && npm run build"
        )
    return path


def resolve_session(session_or_source: Any, embeddings: np.ndarray | None = None, **kwargs: Any):
    """Return the given Session, or a throwaway Session (temp folder) over (source, embeddings)."""
    from ..session import Session

    if isinstance(session_or_source, Session):
        if embeddings is not None:
            raise TypeError("Pass either a Session, or a source and its embeddings, not both.")
        return session_or_source
    folder = tempfile.mkdtemp(prefix="dfw_session_")
    return Session.open(folder, source=session_or_source, embeddings=embeddings, **kwargs)


class Buffer(traitlets.Bytes):
    """A ``bytes`` trait for binary arrays synced with the page (float32/uint32/uint8).

    ipywidgets hands buffers coming from the browser to Python as ``memoryview``; plain
    ``traitlets.Bytes`` would reject them, silently dropping the update.
    """

    def validate(self, obj: Any, value: Any) -> bytes:
        if isinstance(value, (memoryview, bytearray)):
            value = bytes(value)
        return super().validate(obj, value)
