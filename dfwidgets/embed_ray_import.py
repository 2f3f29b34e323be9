"""Import Ray without paying for jsonschema's RFC 3987 grammar (used by
:mod:`dfwidgets.embed_ray`).

``import ray`` imports jsonschema, whose format checkers import ``rfc3987_syntax`` when it
is installed (it comes with Jupyter); that module builds an Earley parser at import: ~70%
of ``import ray`` (4.5 of 6.0 s on a quiet core here, ``python -X importtime -c "import
ray"``). Ray's own processes (its agents and workers) import Ray before any user code
runs: a Ray started by :func:`start_ray` finds a stand-in for ``rfc3987_syntax`` first on
its ``PYTHONPATH`` (``dfwidgets/_ray_path``) that imports the real one on first use.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Iterator
from typing import Any

__all__ = ["STAND_IN_PATH", "iri_grammar_on_first_use", "stand_in_on_pythonpath", "start_ray"]


@contextlib.contextmanager
def iri_grammar_on_first_use() -> Iterator[None]:
    """While Ray is imported: ``import ray`` imports jsonschema, whose format checkers
    import ``rfc3987_syntax`` when it is installed (it comes with Jupyter), and that module
    builds an Earley parser for RFC 3987 at import: ~70% of ``import ray``.
    Here jsonschema gets a function that imports the real module on its first IRI check
    (same results, the cost moves to first use); the stand-in leaves ``sys.modules``
    afterwards. No-op when jsonschema or rfc3987_syntax is already imported or missing."""
    name = "rfc3987_syntax"
    if (name in sys.modules or "jsonschema" in sys.modules
            or importlib.util.find_spec(name) is None):
        yield
        return
    lazy = types.ModuleType(name, "imports rfc3987_syntax on first use (dfwidgets.embed_ray)")

    def real() -> Any:
        if sys.modules.get(name) is lazy:
            del sys.modules[name]
        return importlib.import_module(name)

    def is_valid_syntax(term: str, value: str) -> bool:
        return real().is_valid_syntax(term, value)

    def other(attr: str) -> Any:  # e.g. the import system's __path__: not a package
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(real(), attr)

    lazy.is_valid_syntax = is_valid_syntax  # type: ignore[attr-defined]
    lazy.__getattr__ = other  # type: ignore[method-assign]
    sys.modules[name] = lazy
    try:
        yield
    finally:
        if sys.modules.get(name) is lazy:
            del sys.modules[name]


STAND_IN_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ray_path")


@contextlib.contextmanager
def stand_in_on_pythonpath() -> Iterator[None]:
    """While a local Ray starts: the folder holding the ``rfc3987_syntax`` stand-in goes
    first on ``$PYTHONPATH``, which Ray's agents and its raylet (and so every worker it
    starts later) inherit; this process's environment is restored afterwards. No-op when
    ``rfc3987_syntax`` is not installed."""
    if importlib.util.find_spec("rfc3987_syntax") is None and "rfc3987_syntax" not in sys.modules:
        yield
        return
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([STAND_IN_PATH, *filter(None, [saved])])
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def start_ray(**init_kwargs: Any) -> Any:
    """``import ray`` + ``ray.init(**init_kwargs)`` -> ``ray``, with the RFC 3987 grammar
    built on first use in this process and in the processes of a Ray started here (joining
    a running cluster, ``address=`` / ``$RAY_ADDRESS``, starts no processes here)."""
    with iri_grammar_on_first_use():
        import ray
        import ray.data
    with stand_in_on_pythonpath():
        ray.init(**init_kwargs)
    return ray
