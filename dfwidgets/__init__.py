"""dfwidgets: Jupyter widgets for data-efficient computer vision.

The headless core (data, embed, layout, index, store, learn, session) never imports
ipywidgets or anywidget; the widgets are imported lazily on first access.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

# public name -> module that defines it (imported on first access)
_LAZY = {
    "ImageSource": "dfwidgets.data",
    "datasets": "dfwidgets.datasets",
    "thumbs": "dfwidgets.thumbs",
    "get_embedder": "dfwidgets.embed",
    "embed_images": "dfwidgets.embed",
    "embed_to_parquet": "dfwidgets.embed_parquet",
    "compute_layout": "dfwidgets.layout",
    "NearestNeighborIndex": "dfwidgets.index",
    "LabelStore": "dfwidgets.store",
    "Session": "dfwidgets.session",
    "simulate": "dfwidgets.learn.evaluate",
    "EmbeddingMap": "dfwidgets.widgets.embedding_map",
    "Labeler": "dfwidgets.widgets.labeler",
    "VisualSearch": "dfwidgets.widgets.visual_search",
    "RulesPanel": "dfwidgets.widgets.rules_panel",
    "Trainer": "dfwidgets.widgets.trainer",
    "Workbench": "dfwidgets.widgets.workbench",
    "ExportedModel": "dfwidgets.exported_model",
    "LabelQueue": "dfwidgets.label_queue",
}

__all__ = sorted([*_LAZY, "embed", "embed_text"]) + ["__version__"]

# `embed` is both a sub-module and its main function: import it eagerly so that
# `dfw.embed(...)` is always the function, even after `import dfwidgets.embed`.
from dfwidgets.embed import embed, embed_text  # noqa: E402


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'dfwidgets' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    # a sub-module is exported as itself unless it defines the name (dfwidgets.embed is a function)
    value = getattr(module, name) if hasattr(module, name) else module
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
