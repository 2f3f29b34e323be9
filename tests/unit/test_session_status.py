"""session.status() and session.next_step(): what the Workbench header shows, from a fresh
project to a fitted model (scikit-learn digits with pixel embeddings: fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import dfwidgets as dfw
from dfwidgets.session import Session
from session_helpers import label_truth

KEYS = {"n_items", "n_labeled", "n_classes", "per_class", "n_selected", "estimate", "low",
        "high", "fit_status", "fitting", "fit_error", "folder_labels", "next_step", "n_issues"}


@pytest.fixture
def session(tmp_path: Path):
    src = dfw.datasets.digits()
    emb = src.array.reshape(len(src), -1).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    s = Session.open(tmp_path / "proj", source=src, embeddings=emb, auto_fit=False)
    yield s
    s.close()




def test_status_of_a_fresh_project(session: Session) -> None:
    st = session.status()
    assert set(st) == KEYS
    assert st["n_items"] == 1797 and st["n_labeled"] == 0 and st["n_classes"] == 10
    assert st["per_class"] == {str(d): 0 for d in range(10)}
    assert list(st["per_class"]) == session.classes
    assert st["estimate"] is None and st["low"] is None and st["high"] is None
    assert st["fitting"] is False and st["fit_error"] is None and st["folder_labels"] == 0
    assert st["n_selected"] == 0
    assert st["next_step"] == session.next_step()
    assert st["next_step"].startswith("No labels yet: give each of the 10 classes")


def test_status_names_the_classes_short_of_labels(session: Session) -> None:
    labels = np.asarray(session.source.labels)
    label_truth(session, np.flatnonzero(labels == 3)[:2])
    label_truth(session, np.flatnonzero(labels != 3)[:60])
    session.select([5, 6, 7])
    st = session.status()
    assert st["n_labeled"] == 62 and st["per_class"]["3"] == 2 and st["n_selected"] == 3
    assert sum(st["per_class"].values()) == 62
    assert st["next_step"].startswith("1 class has fewer than 5 labels: 3 2 - label it")


def test_status_after_a_fit(session: Session) -> None:
    label_truth(session, np.arange(300))
    session.fit()
    st = session.status()
    assert 0 < st["low"] <= st["estimate"] <= st["high"] <= 1
    assert "300 labels" in st["fit_status"] and st["fitting"] is False
    # one curve point (ground truth of the digits holdout) -> accuracy at 300 labels
    assert st["next_step"].startswith("Keep labeling the uncertain items (Label tab): "
                                      "accuracy ") and "at 300 labels" in st["next_step"]
    label_truth(session, np.arange(300, 600))
    session.fit()
    assert "over the last 200 labels" in session.next_step()


def test_next_step_reports_a_fit_error(session: Session, monkeypatch) -> None:
    label_truth(session, np.arange(100))
    monkeypatch.setattr(session._fit, "fit_error_", "MemoryError: out of memory")
    st = session.status()
    assert st["fit_error"] == "MemoryError: out of memory"
    assert st["next_step"].startswith("The last model fit failed: MemoryError: out of memory")


def test_status_without_classes(tmp_path: Path) -> None:
    src = dfw.ImageSource.from_array(np.zeros((4, 8, 8), np.uint8))
    with Session.open(tmp_path / "p", source=src, embeddings=np.eye(4, dtype=np.float32),
                      auto_fit=False) as s:
        st = s.status()
        assert st["n_classes"] == 0 and st["per_class"] == {}
        assert st["next_step"].startswith("Name your classes")
        s.add_class("cat")
        assert s.next_step().startswith("Name a second class: only 'cat'")
