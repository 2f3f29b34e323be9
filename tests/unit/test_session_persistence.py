"""Session persistence: the last model comes back on reopen without a refit, and labels
written by another Session or process show up without refresh()."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dfwidgets.learn.models import LinearProbe, PrototypeClassifier
from dfwidgets.session import MODEL_DIR, MODEL_FILE, MODEL_META_FILE, Session

REPO = Path(__file__).resolve().parents[2]


def label_per_class(session: Session, src, per_class: int, *, start: int = 0) -> np.ndarray:
    """Label ``per_class`` items of each class with their ground truth."""
    gt = np.asarray(src.labels)
    chosen = []
    for c, name in enumerate(src.classes):
        idx = np.flatnonzero(gt == c)[start:start + per_class]
        session.label(idx, name)
        chosen.append(idx)
    return np.concatenate(chosen)


@pytest.fixture
def fit_calls(monkeypatch) -> list[tuple[str, bool]]:
    """Records every LinearProbe / PrototypeClassifier fit: (class, had weights before)."""
    calls: list[tuple[str, bool]] = []
    for cls in (LinearProbe, PrototypeClassifier):
        original = cls.fit

        def spy(self, *args, _original=original, **kwargs):
            calls.append((type(self).__name__, hasattr(self, "coef_")))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "fit", spy)
    return calls


# ---------------------------------------------------------------- learner state
def test_learner_state_round_trips_through_npz(tmp_path: Path, small) -> None:
    src, emb = small
    gt = np.asarray(src.labels)
    train = np.concatenate([np.flatnonzero(gt == c)[:6] for c in range(10)])
    X, y = emb[train], np.asarray(src.classes, dtype=object)[gt[train]]
    for model in (LinearProbe(classes=list(src.classes)).fit(X, y),
                  PrototypeClassifier().fit(X, y)):
        arrays, meta = model.get_state()
        file = tmp_path / f"{type(model).__name__}.npz"
        np.savez(file, **arrays)
        with np.load(file, allow_pickle=False) as data:  # plain arrays, no pickle needed
            loaded = {k: data[k] for k in data.files}
        meta = json.loads(json.dumps(meta))  # JSON-able
        kwargs = {"X": X, "y": y} if isinstance(model, LinearProbe) else {}
        back = type(model).from_state(loaded, meta, **kwargs)
        np.testing.assert_array_equal(back.predict_proba(emb), model.predict_proba(emb))
        assert back.get_params() == model.get_params()
        assert back.classes_.tolist() == model.classes_.tolist()
        bad = dict(loaded)
        key = "coef_" if isinstance(model, LinearProbe) else "prototypes_"
        bad[key] = bad[key][:, :-1]
        with pytest.raises(ValueError, match=f"{key}.*shape|dims"):
            type(model).from_state(bad, meta)
        del bad[key]
        with pytest.raises(ValueError, match="incomplete"):
            type(model).from_state(bad, meta)
    # the bootstrap ensemble (BALD) comes back with the training data, identical
    probe = LinearProbe(classes=list(src.classes)).fit(X, y)
    arrays, meta = probe.get_state()
    back = LinearProbe.from_state(arrays, meta, X=X, y=y)
    np.testing.assert_allclose(back.predict_proba_mc(emb[:200], n=2),
                               probe.predict_proba_mc(emb[:200], n=2), atol=1e-6)
    with pytest.raises(RuntimeError, match="refit"):
        LinearProbe.from_state(arrays, meta).predict_proba_mc(emb[:5], n=2)
    with pytest.raises(ValueError, match="PrototypeClassifier"):
        PrototypeClassifier.from_state(arrays, meta)


# ---------------------------------------------------------------- (A) last model on reopen
def test_reopen_restores_model_without_refit(tmp_path: Path, small, fit_calls) -> None:
    src, emb = small
    path = tmp_path / "proj"
    with Session.open(path, source=src, embeddings=emb, auto_fit=False) as s:
        label_per_class(s, src, 5)
        s.fit()
        assert s.fit_status_.startswith("linear probe on 50 labels")
        probs, status = s.probs_.copy(), s.fit_status_
        mc = s.model_.predict_proba_mc(emb[:300], n=2)
    meta = json.loads((path / MODEL_DIR / MODEL_META_FILE).read_text())
    assert meta["kind"] == "linear probe" and meta["model"] == "LinearProbe"
    assert meta["n_train"] == 50 and meta["classes"] == list(src.classes)
    assert meta["state"]["params"]["C"] == 0.1 and len(meta["label_fingerprint"]) == 32
    assert meta["dfwidgets_version"]
    fit_calls.clear()
    # auto_fit=True on purpose: not even a background refit may start
    with Session.open(path, auto_fit=True) as s2:
        assert not s2.fitting and s2.wait_for_fit(timeout=5)
        np.testing.assert_array_equal(s2.probs_, probs)
        assert s2.fit_status_ == "linear probe on 50 labels (restored)" != status
        assert fit_calls == [] and len(s2.curve) == 1  # no fit, no new curve record
        assert s2.model_ is s2._fit.probe  # the next fit continues from it
        np.testing.assert_allclose(s2.model_.predict_proba_mc(emb[:300], n=2), mc, atol=1e-6)
        # labeling goes on: the background refit starts from the restored weights
        s2.label([int(np.flatnonzero(np.asarray(src.labels) == 0)[40])], src.classes[0])
        assert s2.wait_for_fit(timeout=60)
        assert fit_calls == [("LinearProbe", True)]
        assert s2.fit_status_.startswith("linear probe on 51 labels (")


def test_reopen_restores_a_one_label_per_class_probe(tmp_path: Path, small, fit_calls) -> None:
    src, emb = small
    path = tmp_path / "proto"
    with Session.open(path, source=src, embeddings=emb, auto_fit=False) as s:
        label_per_class(s, src, 1)  # one label per class: a probe, no prototype downgrade
        s.fit()
        assert s.fit_status_.startswith("linear probe on 10 labels")
        probs = s.probs_.copy()
    fit_calls.clear()
    with Session.open(path, auto_fit=False) as s2:
        np.testing.assert_array_equal(s2.probs_, probs)
        assert s2.fit_status_ == "linear probe on 10 labels (restored)" and fit_calls == []
        s2.label([int(np.flatnonzero(np.asarray(src.labels) == 2)[7])], src.classes[2])
    with Session.open(path, auto_fit=False) as s3:
        assert "labels changed since" in s3.fit_status_ and fit_calls == []


def test_labels_from_another_session_trigger_a_warm_refit(tmp_path: Path, small,
                                                          fit_calls) -> None:
    src, emb = small
    path = tmp_path / "proj"
    with Session.open(path, source=src, embeddings=emb, auto_fit=False) as s:
        label_per_class(s, src, 4)
        s.fit()
        old_probs = s.probs_.copy()
    with Session.open(path, auto_fit=False) as other:  # another Session labels, no fit
        label_per_class(other, src, 2, start=10)
    fit_calls.clear()
    with Session.open(path, auto_fit=False) as stale:  # shown, but flagged as out of date
        np.testing.assert_array_equal(stale.probs_, old_probs)
        assert stale.fit_status_ == ("linear probe on 40 labels (restored; the labels "
                                     "changed since, call fit() to update)")
        assert fit_calls == [] and stale._fit.probe is stale.model_
    with Session.open(path) as s2:  # auto_fit: refits in the background, warm-started
        assert s2.wait_for_fit(timeout=60)
        assert fit_calls == [("LinearProbe", True)]
        assert s2.fit_status_.startswith("linear probe on 60 labels (")
        assert "restored" not in s2.fit_status_ and s2.curve["n_train"].tolist() == [40, 60]
        assert not np.array_equal(s2.probs_, old_probs)
    meta = json.loads((path / MODEL_DIR / MODEL_META_FILE).read_text())
    assert meta["n_train"] == 60  # the refit was saved in turn


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other embeddings"])
def test_bad_model_file_is_ignored_and_refit(tmp_path: Path, small, caplog,
                                             damage: str) -> None:
    src, emb = small
    path = tmp_path / "proj"
    with Session.open(path, source=src, embeddings=emb, auto_fit=False) as s:
        labeled = label_per_class(s, src, 3)
        s.fit()
    file = path / MODEL_DIR / MODEL_FILE
    kwargs = {}
    if damage == "garbage":
        file.write_bytes(b"not a model at all")
    elif damage == "truncated":
        file.write_bytes(file.read_bytes()[:500])
    else:  # the project is re-embedded: the saved weights no longer apply
        kwargs["embeddings"] = np.ascontiguousarray(emb[:, ::-1])
    with caplog.at_level(logging.WARNING, logger="dfwidgets.session"), \
            Session.open(path, **kwargs) as s2:
        assert "ignoring the saved model" in caplog.text
        assert s2.labels.index.tolist() == sorted(labeled.tolist())  # no label lost
        assert s2.wait_for_fit(timeout=60)
        assert s2.fit_status_.startswith("linear probe on 30 labels (")
        assert "restored" not in s2.fit_status_
    with np.load(file, allow_pickle=False) as data:  # rewritten by the refit
        assert data["coef_"].shape == (10, emb.shape[1])


# ---------------------------------------------------------------- (B) other writers
def test_other_session_labels_seen_without_refresh(tmp_path: Path, small) -> None:
    src, emb = small
    sub, sub_emb = src.subset(np.arange(30)), emb[:30]
    with Session.open(tmp_path / "p", source=sub, embeddings=sub_emb, auto_fit=False) as a, \
            Session.open(tmp_path / "p", auto_fit=False) as b:
        a.label([1, 2], "Bag")
        assert b.labels.to_dict() == {1: "Bag", 2: "Bag"}
        a.add_class("Hat")
        assert b.classes[-1] == "Hat"
        a.label(np.r_[0, 3:25], "Coat", source="bulk")
        assert (b.label_array()[:25] >= 0).all()
        assert sorted(b.next_batch(10).tolist()) == [25, 26, 27, 28, 29]
        a.undo(source="bulk")
        assert b.history()["source"].tolist()[-1] == "undo"
        assert b.labels.to_dict() == {1: "Bag", 2: "Bag"}


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_callback_fires_for_another_sessions_labels(tmp_path: Path, small) -> None:
    src, emb = small
    a = Session.open(tmp_path / "p", source=src, embeddings=emb, auto_fit=False)
    b = Session.open(tmp_path / "p", auto_fit=False)
    try:
        seen: list[tuple[list[int], str]] = []
        fired = threading.Event()

        def on_labels(indices: np.ndarray) -> None:
            seen.append((sorted(indices.tolist()), threading.current_thread().name))
            fired.set()

        handle = b.on("labels_changed", on_labels)
        poller = b._events._poller
        assert poller is not None and poller.daemon
        started = time.monotonic()
        a.label([5, 6], "Coat")
        assert fired.wait(timeout=5), "no labels_changed from the other Session"
        assert time.monotonic() - started < 3.0
        assert seen == [([5, 6], poller.name)]  # from the poller; nobody read b meanwhile
        # the last callback removed: the poller stops by itself
        b.off(handle)
        assert _wait_for(lambda: not poller.is_alive(), timeout=5)
        b.on("classes_changed", lambda classes: None)
        poller = b._events._poller
        assert poller is not None and poller.is_alive()
    finally:
        b.close()
        a.close()
    assert not poller.is_alive()  # close() joins it


@pytest.mark.slow  # a second Python process
def test_another_process_labels_seen_and_fire_callbacks(tmp_path: Path, small) -> None:
    src, emb = small
    with Session.open(tmp_path / "p", source=src, embeddings=emb, auto_fit=False) as s:
        fired = threading.Event()
        s.on("labels_changed", lambda indices: fired.set())
        # the other process has a callback (so a poller) and never closes: it must still exit
        script = textwrap.dedent(
            f"""
            from dfwidgets.session import Session
            from dfwidgets.store import LabelStore
            s = Session.open({str(s.path)!r}, auto_fit=False)
            s.on("labels_changed", lambda indices: None)
            s.label([20, 21], "Sandal", source="bulk")
            LabelStore({str(s.path)!r}).set_labels([s.ids[22]], "Shirt", source="import")
            """
        )
        subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO, timeout=120)
        assert fired.wait(timeout=5)
        assert s.labels.to_dict() == {20: "Sandal", 21: "Sandal", 22: "Shirt"}
