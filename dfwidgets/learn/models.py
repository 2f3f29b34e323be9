"""Models over embeddings, sklearn-shaped: one import point for the four learners.

Each lives in its own module (one public class per module):

- :class:`LinearProbe` (``linear_probe.py``): softmax regression in torch, warm start.
- :class:`PrototypeClassifier` (``prototypes.py``): nearest class mean, one-shot.
- :class:`ZeroShotClassifier` (``zero_shot.py``): class names -> CLIP text prototypes.
- :class:`BlendedClassifier` (``blended.py``): zero-shot prior handing over to labels.
"""

from __future__ import annotations

from .blended import BlendedClassifier
from .linear_probe import LinearProbe
from .prototypes import PrototypeClassifier
from .zero_shot import IMAGENET_TEMPLATES, ZeroShotClassifier

__all__ = [
    "IMAGENET_TEMPLATES",
    "BlendedClassifier",
    "LinearProbe",
    "PrototypeClassifier",
    "ZeroShotClassifier",
]
