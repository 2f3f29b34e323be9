"""Stand-in for ``rfc3987_syntax`` in the processes of a Ray that dfwidgets starts.

``import ray`` imports jsonschema, which imports ``rfc3987_syntax`` (when installed, e.g. by
Jupyter) and that builds an Earley parser for RFC 3987 at import: ~70% of ``import ray``.
Every Ray process (agents, workers) imports Ray before any user code runs, so
:func:`dfwidgets.embed_ray_import.start_local_ray` puts this folder first on the
``PYTHONPATH`` of the processes it starts: this module loads the real package (found
further down ``sys.path``) on the first IRI check, with the same answers.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _real() -> Any:
    """The real ``rfc3987_syntax`` (imported once, replacing this stand-in)."""
    current = sys.modules.get(__name__)
    if current is not None and not getattr(current, "_dfwidgets_stand_in", False):
        return current
    saved = list(sys.path)
    sys.modules.pop(__name__, None)
    sys.path[:] = [p for p in saved if os.path.abspath(p or os.curdir) != _HERE]
    try:
        return importlib.import_module(__name__)
    finally:
        sys.path[:] = saved


def is_valid_syntax(term: str, value: str) -> bool:
    """Is ``value`` valid for the RFC 3987 rule ``term``: the real package answers."""
    return bool(_real().is_valid_syntax(term, value))


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(_real(), name)


_dfwidgets_stand_in = True
