"""Fixtures shared by the unit tests."""

from __future__ import annotations

import numpy as np
import pytest
from session_helpers import N_SMALL


@pytest.fixture(scope="module")
def small(fmnist_train, fmnist_train_emb):
    """The first 3,000 Fashion-MNIST train items and their offline-backbone embeddings:
    ``(ImageSource, (3000, D) float32)``, the project of the Session tests."""
    idx = np.arange(N_SMALL)
    return fmnist_train.subset(idx), np.ascontiguousarray(fmnist_train_emb[idx])


@pytest.fixture()
def session(fmnist_session):
    """A Session over the ``small`` project (the first 3,000 Fashion-MNIST train items, in
    ``tmp_path / "proj"``, ``auto_fit=False``), closed after the test. A module that needs
    other options defines its own ``session`` (e.g. ``fmnist_session(N_SMALL, split="train",
    model=...)``)."""
    return fmnist_session(N_SMALL, split="train")
