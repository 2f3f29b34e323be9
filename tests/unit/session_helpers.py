"""Small helpers shared by the Session tests (imported as a plain module: tests/unit is on
sys.path under pytest's default import mode)."""

from __future__ import annotations

import numpy as np

N_SMALL = 3000  #: items in the ``small`` project of the Session tests (conftest.py)


def label_truth(s, indices) -> None:
    """Label ``indices`` with their ground-truth class names (source "click")."""
    idx = np.asarray(indices)
    names = np.asarray(s.source.classes, dtype=object)[np.asarray(s.source.labels)[idx]]
    s.label_many(idx, [str(n) for n in names], source="click")
