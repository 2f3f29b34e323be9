"""Image sources: random access to N images, with stable ids and optional labels.

:class:`ImageSource` reads images from a folder, a list of paths, a uint8 array, a torch
``Dataset`` or a pandas DataFrame, always hands out RGB PIL images, and never lets a bad
file stop a run: broken items are listed in :attr:`ImageSource.problems` and replaced by
a grey placeholder.

Modules: ``source`` (the class), ``constructors`` (``from_*``, ``from_spec``),
``label_encoding``, ``decoding`` (files/arrays -> RGB), ``problems`` (bad items,
placeholders), ``file_hashes`` (content hashes + their SQLite cache), ``datasets``
(Fashion-MNIST, digits; also importable as :mod:`dfwidgets.datasets`).
"""

from __future__ import annotations

# datasets registers the rebuilders of built-in sets for ImageSource.from_spec
from dfwidgets.data import datasets  # noqa: F401
from dfwidgets.data.constructors import IMAGE_EXTENSIONS, register_spec_builder
from dfwidgets.data.decoding import PLACEHOLDER_GREY
from dfwidgets.data.source import ImageSource

__all__ = ["IMAGE_EXTENSIONS", "PLACEHOLDER_GREY", "ImageSource", "register_spec_builder"]
