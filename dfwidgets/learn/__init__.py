"""Learning core: models over embeddings, what to label next, honest evaluation, label errors.

Headless (numpy, torch, scikit-learn): no widget imports. See docs/architecture.md "learn/".
"""

from __future__ import annotations

from .models import BlendedClassifier, LinearProbe, PrototypeClassifier, ZeroShotClassifier

__all__ = [
    "BlendedClassifier",
    "LinearProbe",
    "PrototypeClassifier",
    "ZeroShotClassifier",
]
