"""Kernel code that e2e notebooks start from: one source for the set-up cells that open a
Session over Fashion-MNIST in the notebook's kernel (imported as a plain module: tests/e2e
is on sys.path under pytest's default import mode)."""

from __future__ import annotations

from pathlib import Path


def fmnist_test_session(project: Path, *, n_seed: int = 30, outside_holdout: bool = False,
                        fit: bool = False) -> str:
    """A first cell: the 10,000 Fashion-MNIST test images ``src`` with their cached
    offline-backbone embeddings ``emb``, a Session ``s`` in ``project`` (model
    efficientnet_lite0, ``auto_fit=False``), ``names`` (10,) the class names, and
    ``n_seed`` labels (``n_seed // 10`` per class, drawn with seed 0, source "import";
    only items outside the holdout when ``outside_holdout``); ``s.fit()`` when ``fit``.
    The cell's value is ``len(src)``."""
    pool = "np.flatnonzero(src.labels == c)"
    if outside_holdout:
        pool = f"[i for i in {pool} if i not in hold]"
    return (
        "import numpy as np, dfwidgets as dfw\n"
        "src = dfw.datasets.fashion_mnist(split='test')\n"
        "emb = dfw.embed(src, model='efficientnet_lite0', progress=False)\n"
        f"s = dfw.Session.open({str(project)!r}, source=src, embeddings=emb,\n"
        "                     model='efficientnet_lite0', auto_fit=False)\n"
        "names = np.asarray(src.classes, dtype=object)\n"
        + ("hold = set(s.holdout_indices().tolist())\n" if outside_holdout else "")
        + "rng = np.random.default_rng(0)\n"
        f"seed = [int(rng.choice({pool}))\n"
        f"        for c in range(10) for _ in range({n_seed // 10})]\n"
        "s.label_many(seed, names[src.labels[seed]].tolist(), source='import')\n"
        + ("s.fit()\n" if fit else "")
        + "len(src)"
    )
