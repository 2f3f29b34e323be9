"""Shared test settings and fixtures: a repository-local cache so embeddings are computed
once per run, Fashion-MNIST and its embeddings, one-thread mode, Sessions over them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
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


@pytest.fixture(scope="session")
def fmnist_sample(fmnist_train, fmnist_test, fmnist_train_emb, fmnist_test_emb):
    """Factory: ``fmnist_sample(n_train, n_test, *, seed=0)`` -> dict of random Fashion-MNIST
    items (sorted; train drawn first, then test, from one seeded generator) with labels as
    class names: ``X`` (n_train, D), ``y`` (n_train,), ``Xt`` (n_test, D), ``yt`` (n_test,),
    ``classes`` (list of the 10 names)."""

    def sample(n_train: int, n_test: int, *, seed: int = 0) -> dict:
        rng = np.random.default_rng(seed)
        tr = np.sort(rng.choice(len(fmnist_train_emb), n_train, replace=False))
        te = np.sort(rng.choice(len(fmnist_test_emb), n_test, replace=False))
        names = np.asarray(fmnist_train.classes, dtype=object)
        return {
            "X": fmnist_train_emb[tr], "y": names[fmnist_train.labels[tr]],
            "Xt": fmnist_test_emb[te], "yt": names[fmnist_test.labels[te]],
            "classes": list(fmnist_train.classes),
        }

    return sample


@pytest.fixture(scope="module")
def one_thread():
    """2 shared cores: one thread each for torch and BLAS/OpenMP avoids oversubscription.

    Use per module: ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(before)


@pytest.fixture()
def fmnist_session(tmp_path, request):
    """Factory: ``fmnist_session(n, split="test", **options)`` -> a Session in
    ``tmp_path / "proj"`` over the first ``n`` items of a Fashion-MNIST split with their
    offline-backbone embeddings (``auto_fit=False`` unless given); closed after the test."""
    from dfwidgets.session import Session

    opened = []

    def open_session(n: int, split: str = "test", **options):
        source = request.getfixturevalue(f"fmnist_{split}")
        embeddings = request.getfixturevalue(f"fmnist_{split}_emb")
        options.setdefault("auto_fit", False)
        session = Session.open(tmp_path / "proj", source=source.subset(np.arange(n)),
                               embeddings=embeddings[:n], **options)
        opened.append(session)
        return session

    yield open_session
    for session in opened:
        session.close()
