"""Session over a real project folder, a real LabelStore and real Fashion-MNIST embeddings."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from session_helpers import N_SMALL  # `session`: a Session over the `small` project (conftest)

from dfwidgets.session import Session

REPO = Path(__file__).resolve().parents[2]


def truth(src, indices) -> list[str]:
    """Ground-truth class names of items (the built-in dataset's labels)."""
    return [src.classes[int(src.labels[i])] for i in np.atleast_1d(indices)]


# ---------------------------------------------------------------- labels, classes, events
def test_open_creates_project_with_dataset_classes(session: Session, small) -> None:
    src, emb = small
    assert (session.path / "labels.sqlite").exists()
    saved = np.load(session.path / "embeddings.npy")
    assert saved.dtype == np.float32 and np.array_equal(saved, emb)
    assert session.classes == list(src.classes) and len(session.classes) == 10
    assert session.labels.empty and (session.label_array() == -1).all()
    assert session.probs_ is None


def test_label_commits_and_emits(session: Session) -> None:
    seen: list[np.ndarray] = []
    handle = session.on("labels_changed", seen.append)
    assert session.label([12, 40, 41], "Sneaker") == 3
    session.label(np.array([5]), "Bag", source="bulk")
    labels = session.labels
    assert labels.to_dict() == {5: "Bag", 12: "Sneaker", 40: "Sneaker", 41: "Sneaker"}
    assert session.label_array()[[12, 5, 0]].tolist() == [7, 8, -1]
    assert [s.tolist() for s in seen] == [[12, 40, 41], [5]]
    # committed: the file alone (a fresh store) has the labels, with their sources
    from dfwidgets.store import LabelStore

    cur = LabelStore(session.path).current().set_index("item_id")
    assert cur.loc[session.ids[12], "source"] == "click"
    assert cur.loc[session.ids[5], "source"] == "bulk"
    session.off(handle)
    session.label([7], "Coat")
    assert len(seen) == 2


def test_new_class_via_label_and_add_rename_merge(session: Session) -> None:
    seen: list[list[str]] = []
    session.on("classes_changed", seen.append)
    session.label([1, 2], "Boot")
    assert session.classes[-1] == "Boot" and seen[-1][-1] == "Boot"
    session.add_class("Hat")  # no examples yet
    assert session.classes[-1] == "Hat"
    session.rename_class("Boot", "Winter boot")
    assert session.labels.to_dict() == {1: "Winter boot", 2: "Winter boot"}
    relabeled: list[np.ndarray] = []
    session.on("labels_changed", relabeled.append)
    assert session.merge_classes(["Winter boot"], into="Ankle boot") == 2
    assert "Winter boot" not in session.classes
    assert session.labels.to_dict() == {1: "Ankle boot", 2: "Ankle boot"}
    assert relabeled[-1].tolist() == [1, 2]


def test_bad_input_clear_errors_nothing_written(session: Session) -> None:
    with pytest.raises(IndexError, match="out of range: the source has 3000 items"):
        session.label([2, 3000], "Bag")
    with pytest.raises(TypeError, match="integers"):
        session.label(["a"], "Bag")
    with pytest.raises(ValueError, match="No items"):
        session.label([], "Bag")
    with pytest.raises(ValueError, match="click, bulk"):
        session.label([1], "Bag", source="keyboard")
    with pytest.raises(ValueError, match="Unknown event"):
        session.on("label_changed", print)
    assert session.labels.empty and session.history().empty


def test_callback_error_is_logged_not_raised(session: Session, caplog) -> None:
    def broken(indices):
        raise RuntimeError("widget bug")

    session.on("labels_changed", broken)
    session.label([3], "Bag")
    assert session.labels.to_dict() == {3: "Bag"}
    assert "widget bug" in caplog.text


def test_history_and_undo_by_source(session: Session) -> None:
    session.label([1], "Bag")
    session.label([1, 2, 3], "Coat", source="bulk")
    session.label([4], "Coat", source="zero-shot")
    session.label([5], "Coat", source="zero-shot")
    session.label([3], "Shirt")
    changed: list[np.ndarray] = []
    session.on("labels_changed", changed.append)
    assert session.undo(source="bulk") == 3
    assert changed[-1].tolist() == [1, 2]  # 3 keeps its later click
    assert session.labels.to_dict() == {1: "Bag", 3: "Shirt", 4: "Coat", 5: "Coat"}
    assert session.undo(source="zero-shot", all_events=True) == 2
    assert session.undo() == 1  # the last call left: the click on 3
    assert session.labels.to_dict() == {1: "Bag"}
    h = session.history()
    assert h["index"].tolist()[:7] == [1, 1, 2, 3, 4, 5, 3]
    assert set(h["source"]) == {"click", "bulk", "zero-shot", "undo"}


def test_reopen_restores_everything_and_checks_fingerprint(tmp_path: Path, small,
                                                           fmnist_train) -> None:
    src, emb = small
    with Session.open(tmp_path / "p", source=src, embeddings=emb, auto_fit=False) as s:
        s.label([10, 11], "Trouser")
        s.add_class("Hat")
    # no source, no embeddings: both come back from the folder
    with Session.open(tmp_path / "p", auto_fit=False) as s2:
        assert len(s2.source) == N_SMALL and s2.labels.to_dict() == {10: "Trouser", 11: "Trouser"}
        assert np.array_equal(s2.embeddings, emb) and s2.classes[-1] == "Hat"
        assert len(s2.history()) == 2
    other = fmnist_train.subset(np.arange(N_SMALL, 2 * N_SMALL))
    with pytest.raises(ValueError, match="made for another dataset"):
        Session.open(tmp_path / "p", source=other, auto_fit=False)
    with pytest.raises(ValueError, match="2999 rows but the source has 3000 items"):
        Session.open(tmp_path / "q", source=src, embeddings=emb[:-1], auto_fit=False)
    bad = emb.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Session.open(tmp_path / "r", source=src, embeddings=bad, auto_fit=False)
    with pytest.raises(ValueError, match="new project: pass source="):
        Session.open(tmp_path / "empty", auto_fit=False)


@pytest.mark.slow  # a second Python process (imports torch)
def test_refresh_sees_another_process(session: Session) -> None:
    session.label([1], "Bag")
    script = textwrap.dedent(
        f"""
        from dfwidgets.session import Session
        s = Session.open({str(session.path)!r}, auto_fit=False)
        s.label([20, 21], "Sandal", source="bulk")
        s.undo(source="click")
        s.close()
        import sys
        assert not {{"ipywidgets", "anywidget"}} & set(sys.modules), "a plain script"
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO, timeout=120)
    changed: list[np.ndarray] = []
    session.on("labels_changed", changed.append)
    assert session.refresh() is True
    assert session.labels.to_dict() == {20: "Sandal", 21: "Sandal"}
    assert sorted(changed[0].tolist()) == [1, 20, 21]
    assert session.refresh() is False


# ---------------------------------------------------------------- fitting
def label_per_class(session: Session, src, per_class: int, *, start: int = 0,
                    source: str = "click") -> np.ndarray:
    """Label ``per_class`` items of each class with their ground truth (one call per class)."""
    gt = np.asarray(src.labels)
    chosen = []
    for c, name in enumerate(src.classes):
        idx = np.flatnonzero(gt == c)[start:start + per_class]
        session.label(idx, name, source=source)
        chosen.append(idx)
    return np.concatenate(chosen)


def test_fit_states_one_class_then_probe(session: Session, small) -> None:
    src, _ = small
    updates: list[int] = []  # curve length seen by the listener: the record comes first
    session.on("model_updated", lambda s: updates.append(len(s.curve)))
    session.fit()
    assert session.probs_ is None and "No labels yet" in session.fit_status_
    session.label(np.flatnonzero(src.labels == 7)[:3], "Sneaker")
    session.fit()
    assert session.probs_ is None and session.predictions_ is None
    assert "Only one class has labels ('Sneaker'" in session.fit_status_
    session.label([int(np.flatnonzero(src.labels == 8)[0])], "Bag")  # one example: a probe
    session.fit()
    assert session.fit_status_.startswith("linear probe")  # no prototype downgrade (issue 16)
    assert list(session.model_.classes_) == ["Sneaker", "Bag"]
    assert session.probs_.shape == (N_SMALL, 10)
    labeled = label_per_class(session, src, 5)
    session.fit()
    assert session.fit_status_.startswith("linear probe") and updates == [0, 0, 1, 2]
    probs = session.probs_
    assert probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1, atol=1e-4)
    assert np.allclose(session.uncertainty_, 1 - probs.max(axis=1))
    unlabeled = np.setdiff1d(np.arange(N_SMALL), labeled)
    acc = np.mean(np.asarray(session.classes)[session.predictions_[unlabeled]]
                  == np.asarray(truth(src, unlabeled)))
    assert acc > 0.6  # 50 labels on real embeddings: far above chance (0.1)
    curve = session.curve
    assert len(curve) == 2  # one record per fit that trained a model
    assert curve["model"].tolist() == ["linear probe", "linear probe"]
    last = curve.iloc[-1]
    assert last["n_labels"] == 50 == len(labeled)  # the first Sneakers/Bag were relabeled
    # the recorded true accuracy is measured on unlabeled ground-truth items
    assert abs(last["true_accuracy"] - acc) < 0.05


def test_auto_fit_coalesces_a_burst(tmp_path: Path, small) -> None:
    src, emb = small
    with Session.open(tmp_path / "auto", source=src, embeddings=emb, fit_delay=1.0) as s:
        done = threading.Event()
        updates: list[float] = []
        s.on("model_updated", lambda sess: (updates.append(1), done.set()))
        gt = np.asarray(src.labels)
        for c in range(4):  # a burst of 8 label calls, well within the 1 s quiet time
            items = np.flatnonzero(gt == c)[:4]
            s.label(items[:2], src.classes[c])
            s.label(items[2:], src.classes[c])
        assert s.wait_for_fit(timeout=120) and done.is_set()
        assert s.probs_ is not None and s.probs_.shape == (N_SMALL, 10)
        assert 1 <= len(updates) <= 2  # coalesced, not one fit per label call
        assert s.curve["n_labels"].iloc[-1] == 16
    # reopening restores the model in the background
    with Session.open(tmp_path / "auto") as s2:
        assert s2.wait_for_fit(timeout=120) and s2.probs_ is not None


@pytest.mark.slow
def test_next_batch_audit_and_estimate(session: Session, small) -> None:
    src, _ = small
    batch = session.next_batch(20)  # no model: typiclust cold start
    assert batch.dtype == np.int64 and len(np.unique(batch)) == 20
    audit_ids = session.store.get_meta("audit")["ids"]
    assert 1 <= len(audit_ids) <= 4  # about 10% of 20, random
    session.label_many(batch, truth(src, batch), source="click")
    label_per_class(session, src, 6, start=50)
    session.fit()
    # audit items (all labeled by now) are never trained on
    n_labeled = int((session.label_array() >= 0).sum())
    assert session.curve["n_train"].iloc[-1] == n_labeled - len(audit_ids)
    exclude = np.arange(100)
    for _ in range(3):
        b = session.next_batch(10, strategy="margin", exclude=exclude)
        assert len(b) == 10 and not np.isin(b, exclude).any()
        assert (session.label_array()[b] == -1).all()
        session.label_many(b, truth(src, b), source="click")
    session.fit()
    est = session.accuracy_estimate()
    n_audit = len(session.store.get_meta("audit")["ids"])
    assert est["n"] == n_audit >= 3
    assert 0 <= est["low"] <= est["estimate"] <= est["high"] <= 1
    # the estimate is about the real model's accuracy on the unlabeled items (ground truth)
    pool = np.flatnonzero(session.label_array() < 0)
    true_pool = float((session.predicted_labels()[pool] == np.asarray(truth(src, pool))).mean())
    assert abs(est["estimate"] - true_pool) < 0.1
    with pytest.raises(ValueError, match="Unknown strategy"):
        session.next_batch(5, strategy="smart")


def _publish_known_model(session: Session, src, confidence: np.ndarray,
                         right: np.ndarray) -> None:
    """Put a model of known accuracy in place: item i gets top probability
    ``confidence[i]`` on its true class where ``right[i]``, else on another class."""
    n, k = len(session.ids), len(session.classes)
    gt = np.asarray(src.labels)
    guess = np.where(right, gt, (gt + 1 + np.arange(n) % (k - 1)) % k)
    probs = np.repeat(((1 - confidence) / (k - 1))[:, None], k, axis=1).astype(np.float32)
    probs[np.arange(n), guess] = confidence
    seq, _, classes = session._labels.snapshot()
    session._fit.publish(seq, None, probs, classes, "known model")


def _answer_audit_items(session: Session, src) -> np.ndarray:
    """Ask a large random batch (about 10% audit items) and answer its audit items."""
    session.next_batch(2000, strategy="random")
    audit = np.flatnonzero(session.audit_mask())
    session.label_many(audit, truth(src, audit), source="click")
    return audit


def test_accuracy_estimate_matches_a_model_of_known_accuracy(session: Session, small) -> None:
    """A calibrated model (right with probability = its confidence): the estimate must be
    its accuracy on the unlabeled pool, within a few points, inside the interval."""
    src, _ = small
    audit = _answer_audit_items(session, src)
    assert 150 <= len(audit) <= 250
    rng = np.random.default_rng(7)
    confidence = rng.uniform(0.4, 1.0, len(session.ids)).astype(np.float32)
    right = rng.random(len(session.ids)) < confidence
    _publish_known_model(session, src, confidence, right)
    pool = np.flatnonzero(session.label_array() < 0)
    true_pool = float(right[pool].mean())  # ~0.70
    est = session.accuracy_estimate()
    assert est["n"] == len(audit)
    assert abs(est["estimate"] - true_pool) < 0.03
    assert est["low"] <= true_pool <= est["high"] and est["high"] - est["low"] < 0.15
    assert est["audit_estimate"] == pytest.approx(right[audit].mean())


def test_accuracy_estimate_corrects_an_overconfident_model(session: Session, small) -> None:
    """95% confident but right 60% of the time: 200 audit answers pull the estimate more
    than half the way from the model's 0.95 down to its true accuracy (the prior is worth
    100 answers, so 2/3 of the way is expected)."""
    src, _ = small
    audit = _answer_audit_items(session, src)
    rng = np.random.default_rng(3)
    right = rng.random(len(session.ids)) < 0.6
    _publish_known_model(session, src, np.full(len(session.ids), 0.95, np.float32), right)
    pool = np.flatnonzero(session.label_array() < 0)
    true_pool = float(right[pool].mean())
    est = session.accuracy_estimate()
    assert est["expected"] == pytest.approx(0.95, abs=1e-4)
    assert abs(est["estimate"] - true_pool) < 0.5 * (0.95 - true_pool)
    assert est["audit_low"] <= true_pool <= est["audit_high"]
    assert len(audit) == est["n"]


def test_next_batch_empty_pool(tmp_path: Path, small) -> None:
    src, emb = small
    sub, sub_emb = src.subset(np.arange(30)), emb[:30]
    with Session.open(tmp_path / "tiny", source=sub, embeddings=sub_emb, auto_fit=False) as s:
        s.label(np.arange(25), "Bag", source="bulk")
        assert sorted(s.next_batch(10).tolist()) == [25, 26, 27, 28, 29]
        s.label(np.arange(25, 30), "Coat", source="bulk")
        with pytest.raises(ValueError, match="every item is labeled or excluded"):
            s.next_batch(3)


@pytest.mark.slow
def test_label_issues_finds_flipped_labels(session: Session, small) -> None:
    src, _ = small
    labeled = label_per_class(session, src, 12, source="bulk")
    rng = np.random.default_rng(0)
    flipped = rng.choice(labeled, size=5, replace=False)
    for i in flipped:  # a wrong class, as a hurried click would give
        wrong = (int(src.labels[i]) + 3) % 10
        session.label([int(i)], src.classes[wrong])
    issues = session.label_issues()
    assert list(issues.columns[:5]) == ["index", "item_id", "given", "suggested", "score"]
    assert set(issues["index"]).issubset(set(labeled.tolist()))
    top = set(issues["index"].head(15).tolist())
    assert len(top & set(flipped.tolist())) >= 3
    found = issues[issues["index"].isin(flipped)]
    # names map back to items: "given" is the wrong label we set, "suggested" another class
    assert found["given"].tolist() == session.labels[found["index"]].tolist()
    assert (found["given"] != np.asarray(truth(src, found["index"]))).all()
    assert (found["suggested"] != found["given"]).all()
