"""The Session package: one door between the views and the core.

``Session`` (in :mod:`dfwidgets.session.session`) is a thin facade over parts that own
their state; see that module's docstring.
"""

from __future__ import annotations

from .session import MODEL_DIR, MODEL_FILE, MODEL_META_FILE, Session

__all__ = ["MODEL_DIR", "MODEL_FILE", "MODEL_META_FILE", "Session"]
