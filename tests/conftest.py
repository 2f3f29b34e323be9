"""Shared test settings: a repository-local cache so embeddings are computed once per run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("DFW_CACHE_DIR", str(REPO / ".dfw_cache"))
# OpenMP threads that spin while waiting starve each other on a small shared machine
# (measured: 11 img/s with the default policy vs ~150 img/s with PASSIVE, 2 threads).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
OUTPUT = REPO / "tests" / "_output"


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """Folder for artefacts a test wants a human to look at (screenshots, plots)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


@pytest.fixture(scope="session")
def fmnist_train():
    """Fashion-MNIST train split (60,000 items) from Debian's dataset-fashion-mnist."""
    import dfwidgets as dfw

    return dfw.datasets.fashion_mnist(split="train")


@pytest.fixture(scope="session")
def fmnist_test():
    """Fashion-MNIST test split (10,000 items)."""
    import dfwidgets as dfw

    return dfw.datasets.fashion_mnist(split="test")


@pytest.fixture(scope="session")
def fmnist_train_emb(fmnist_train):
    """(60000, D) float32 embeddings from the offline backbone, cached on disk."""
    import dfwidgets as dfw

    return dfw.embed(fmnist_train, model="efficientnet_lite0", progress=False)


@pytest.fixture(scope="session")
def fmnist_test_emb(fmnist_test):
    """(10000, D) float32 embeddings from the offline backbone, cached on disk."""
    import dfwidgets as dfw

    return dfw.embed(fmnist_test, model="efficientnet_lite0", progress=False)
