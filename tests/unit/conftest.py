"""Fixtures shared by the unit tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def small(fmnist_train, fmnist_train_emb):
    """The first 3,000 Fashion-MNIST train items and their offline-backbone embeddings:
    ``(ImageSource, (3000, D) float32)``, the project of the Session tests."""
    idx = np.arange(3000)
    return fmnist_train.subset(idx), np.ascontiguousarray(fmnist_train_emb[idx])
