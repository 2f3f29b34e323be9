"""Weak supervision: the pure label-model wiring (learn/weak_supervision.py) and the
Session's rules (session/rules.py): each rule kind, persistence, bad input, training."""

from __future__ import annotations

import numpy as np
import pytest

from dfwidgets.learn import weak_supervision as ws
from dfwidgets.session import Session

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- pure part
def test_majority_vote_splits_ties_and_leaves_uncovered_rows_empty():
    L = np.array([[0, 0, 1], [1, 0, -1], [-1, -1, -1]])
    p = ws.majority_vote(L, 3)
    assert p[0].tolist() == [1, 0, 0]
    assert p[1].tolist() == [0.5, 0.5, 0]
    assert p[2].sum() == 0
    with pytest.raises(ValueError, match="class codes"):
        ws.majority_vote(np.array([[3]]), 3)


def test_label_model_trusts_good_rules_more_than_majority_vote():
    """Two accurate rules outvoted by four poor ones: majority vote follows the crowd,
    Snorkel's LabelModel learns from their agreements whom to trust."""
    rng = np.random.default_rng(0)
    n, K = 3000, 3
    y = rng.integers(0, K, n)

    def rule(acc, cov, seed):
        r = np.random.default_rng(seed)
        v = np.where(r.random(n) < acc, y, r.integers(0, K, n))
        return np.where(r.random(n) < cov, v, -1)
    L = np.stack([rule(0.95, 0.6, 1), rule(0.9, 0.6, 2)]
                 + [rule(0.5, 0.8, 10 + i) for i in range(4)], axis=1)
    cov = ws.WeakLabelModel.covered(L)
    mv = ws.WeakLabelModel(cardinality=K, method="majority").fit(L).predict_proba(L)
    lm = ws.WeakLabelModel(cardinality=K, class_balance=[1 / 3] * 3).fit(L)
    p = lm.predict_proba(L)
    assert p.shape == (n, K) and np.allclose(p.sum(1), 1, atol=1e-4)
    acc_lm = (p.argmax(1)[cov] == y[cov]).mean()
    acc_mv = (mv.argmax(1)[cov] == y[cov]).mean()
    assert acc_lm > acc_mv + 0.015, (acc_lm, acc_mv)
    assert lm.accuracies_[:2].min() > lm.accuracies_[2:].max()


def test_label_model_needs_snorkel_with_a_message(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name.startswith("snorkel"):
            raise ImportError("no snorkel")
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", fake)
    L = np.array([[0, 0, 1], [1, 1, 1], [0, -1, 0], [1, 0, 1]])
    with pytest.raises(ImportError, match=r"dfwidgets\[weak\]"):
        ws.WeakLabelModel(cardinality=2).fit(L)
    p = ws.WeakLabelModel(cardinality=2, method="majority").fit(L).predict_proba(L)
    assert p[1].tolist() == [0, 1]


def test_rule_stats_and_confident_weak():
    L = np.array([[0, 0], [0, 1], [-1, 1], [-1, -1]])
    st = ws.rule_stats(L, 2, np.array([0, 1, 1, -1]), names=["a", "b"])
    assert st["coverage"].tolist() == [0.5, 0.75]
    assert st["conflicts"].tolist() == [0.25, 0.25]
    assert st["overlaps"].tolist() == [0.5, 0.5]
    assert st["accuracy"].tolist() == [0.5, 1.0]
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.1, 0.9]], np.float32)
    idx, y, w = ws.confident_weak(probs, np.array([True, True, False]), threshold=0.8)
    assert idx.tolist() == [0] and y.tolist() == [0] and w.tolist() == [pytest.approx(0.9)]



def test_label_spreading_follows_the_graph_not_the_nearest_seed():
    """Two chains 0-1-2-3-4 and 5-6-7-8-9 (a kNN table), one seed at each chain's end:
    every item takes its own chain's class, unreachable items get no scores."""
    from dfwidgets.learn.label_spreading import spread_labels

    nb = np.array([[1, -1], [0, 2], [1, 3], [2, 4], [3, -1],
                   [6, -1], [5, 7], [6, 8], [7, 9], [8, -1], [-1, -1]])
    F = spread_labels(nb, np.array([0, 9]), np.array([1, 0]), 2)
    assert F.shape == (11, 2) and F[:10].argmax(1).tolist() == [1] * 5 + [0] * 5
    np.testing.assert_allclose(F[:10].sum(1), 1, rtol=1e-5)
    assert F[10].sum() == 0
    # a class with more seeds does not flood the graph: column sums are equalised
    F2 = spread_labels(nb, np.array([0, 1, 2, 9]), np.array([1, 1, 1, 0]), 2)
    assert F2[5:10].argmax(1).tolist() == [0] * 5
    with pytest.raises(ValueError, match="alpha"):
        spread_labels(nb, np.array([0]), np.array([0]), 2, alpha=1.0)
    with pytest.raises(ValueError, match="codes"):
        spread_labels(nb, np.array([0]), np.array([2]), 2)


def test_confident_by_class_cuts_each_class_separately():
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.55, 0.45], [0.2, 0.8], [0.4, 0.6]])
    idx, codes, w = ws.confident_by_class(probs, np.ones(5, bool), share=0.5)
    assert idx.tolist() == [0, 1, 3] and codes.tolist() == [0, 0, 1]
    np.testing.assert_allclose(w, [0.9, 0.6, 0.8])


# ---------------------------------------------------------------- rules on a Session
@pytest.fixture()
def labeled(fmnist_session, fmnist_test):
    """A Session over 1,500 Fashion-MNIST test items with 5 hand labels per class."""
    s = fmnist_session(1500)
    truth = np.asarray(fmnist_test.classes, dtype=object)[fmnist_test.labels[:1500]]
    for c in fmnist_test.classes:
        idx = np.flatnonzero(truth == c)[:5]
        s.label(idx, c)
    return s, truth


def test_region_rule_votes_its_class_on_its_items(labeled):
    s, truth = labeled
    idx = np.flatnonzero(truth == "Sneaker")[:100]  # the first 5 are hand labels
    name = s.rules.add_region(idx, "Sneaker")
    L, names = s.rules.votes()
    code = s.classes.index("Sneaker")
    assert names == [name] and (L[idx, 0] == code).all() and (L[:, 0] >= 0).sum() == 100
    row = s.rules.summary().iloc[0]
    assert row["kind"] == "region" and row["coverage"] == pytest.approx(100 / 1500)
    assert row["status"] == "ok"
    # checked against its hand labels: named wrongly (its hand labels say otherwise), it
    # abstains; with no hand labels inside, the user's word is all there is: it votes
    wrong = s.rules.add_region(idx, "Bag")
    unlabeled = np.flatnonzero((truth == "Sneaker") & (s.label_array() < 0))[:40]
    unchecked = s.rules.add_region(unlabeled, "Sneaker")
    L, names = s.rules.votes()
    assert (L[:, names.index(wrong)] < 0).all()
    assert (L[unlabeled, names.index(unchecked)] == code).all()
    st = s.rules.summary().set_index("rule")["status"]
    assert st[wrong].startswith("abstains: only 0 of 5") and st[unchecked] == "ok"


def test_examples_and_neighbours_rules_are_mostly_right(labeled):
    s, truth = labeled
    s.rules.add_examples("Trouser", threshold=0.7)
    s.rules.add_neighbours(k=10)
    L, names = s.rules.votes()
    classes = np.asarray(s.classes, dtype=object)
    for j in range(2):
        m = L[:, j] >= 0
        assert m.sum() > 30
        assert (classes[L[m, j]] == truth[m]).mean() > 0.6, names[j]  # chance: 0.1
    assert set(classes[L[L[:, 0] >= 0, 0]]) == {"Trouser"}
    # on its own hand labels a rule made from them is right by construction: the summary
    # never scores it there (examples: the nearest other example; neighbours: not scored)
    hand = s.label_array() >= 0
    assert (L[hand, 1] == s.label_array()[hand]).all() and (L[hand, 0] >= 0).sum() == 5
    rows = s.rules.summary().set_index("kind")
    assert rows.loc["neighbours", "n_labeled"] == 0
    X = ws.centred_rows(s.embeddings[hand], s.embeddings.mean(0))
    sim = X @ X.T - 9 * np.eye(hand.sum())  # leave one out, by hand
    votes = s.label_array()[hand][sim.argmax(1)] == classes.tolist().index("Trouser")
    votes &= sim.max(1) >= 0.7
    assert rows.loc["examples", "n_labeled"] == votes.sum() > 0


def test_function_rule_reports_failures_and_is_reattached_after_reopen(labeled, tmp_path):
    s, truth = labeled

    def boot(item):
        if item.index % 100 == 7:
            raise RuntimeError("cannot read")
        return item.index < 300 and truth[item.index] == "Ankle boot"
    name = s.rules.add_function(boot, "Ankle boot", name="boots by hand")
    row = s.rules.summary().set_index("rule").loc[name]
    assert "failed on 15 items" in row["status"] and "cannot read" in row["status"]
    errors = s.rules.errors(name)
    assert len(errors) == 15 and errors["index"].iloc[0] == 7
    L, _ = s.rules.votes()
    assert (L[:, 0] >= 0).sum() == ((truth[:300] == "Ankle boot").sum()
                                    - sum(truth[i] == "Ankle boot" for i in range(7, 300, 100)))
    s.rules.add_region([1, 2, 3], "Bag")
    s.rules.disable("boots by hand")
    s.close()

    with pytest.warns(UserWarning, match="re-add"):
        s2 = Session.open(tmp_path / "proj", auto_fit=False)
    try:
        rules = {r["name"]: r for r in s2.rules.all()}
        assert set(rules) == {"boots by hand", "region: Bag (3 items)"}
        assert rules["boots by hand"]["enabled"] is False
        assert "def boot(item)" in rules["boots by hand"]["params"]["source"]
        st = s2.rules.summary().set_index("rule")
        assert st.loc["boots by hand", "status"].startswith("not attached")
        s2.rules.add_function(boot, "Ankle boot", name="boots by hand")
        assert "failed on 15" in s2.rules.summary().set_index("rule").loc[
            "boots by hand", "status"]
        assert len(s2.rules.all()) == 2
    finally:
        s2.close()


def test_toggle_remove_and_undo(labeled):
    s, _ = labeled
    a = s.rules.add_region([1, 2], "Bag")
    b = s.rules.add_neighbours(k=5)
    s.rules.disable(a)
    assert s.rules.votes()[1] == [b]
    s.rules.remove(b)
    assert s.rules.names == [a]
    assert s.rules.undo() and s.rules.names == [a, b]
    assert s.rules.undo() and s.rules.all()[0]["enabled"] is True
    assert s.rules.undo() and s.rules.names == [a]
    assert s.rules.undo() and s.rules.names == []
    assert s.rules.undo() is False


def test_bad_input_is_said_clearly(labeled):
    s, _ = labeled
    with pytest.raises(ValueError, match="Unknown class 'Hat'.*add_class"):
        s.rules.add_region([1], "Hat")
    with pytest.raises(ValueError, match="selection is empty"):
        s.rules.add_region(s.selection, "Bag")
    with pytest.raises(ValueError, match="read text|text"):
        s.rules.add_prompt("a photo of a handbag", "Bag")  # the offline backbone: no text
    with pytest.raises(ValueError, match="threshold"):
        s.rules.add_examples("Bag", threshold=2)
    with pytest.raises(TypeError, match="function"):
        s.rules.add_function("boot", "Bag")
    with pytest.raises(KeyError, match="No rule"):
        s.rules.remove("nope")
    name = s.rules.add_function(lambda item: "Hat" if item.index == 3 else None, name="hats")
    assert "not a class" in s.rules.summary().set_index("rule").loc[name, "status"]


def test_prompt_rule_with_a_text_model(labeled, monkeypatch):
    s, truth = labeled
    target = s.embeddings[np.flatnonzero(truth == "Bag")].mean(0)
    monkeypatch.setattr(s, "supports_text", lambda: (True, ""))
    monkeypatch.setattr(s, "embed_text", lambda texts: target[None, :] / np.linalg.norm(target))
    s.rules.add_prompt("a photo of a handbag", "Bag", top=0.05)
    L, _ = s.rules.votes()
    m = L[:, 0] >= 0
    assert m.sum() == 75 and (truth[m] == "Bag").mean() > 0.5  # chance: 0.1


def test_weak_labels_never_cover_audit_items_and_train_the_probe(labeled, monkeypatch):
    s, truth = labeled
    s.next_batch(40)  # serves audit items
    audit = s.audit_mask()
    assert audit.any()
    s.rules.add_neighbours(k=10)
    s.rules.add_examples("Trouser", threshold=0.6)
    s.rules.add_region(np.flatnonzero(truth == "Bag"), "Bag")
    fit_rows = []  # the label model is fit without the hand-labeled items (their rules' sources)
    real_fit = ws.WeakLabelModel.fit
    monkeypatch.setattr(ws.WeakLabelModel, "fit",
                        lambda self, L: fit_rows.append(len(L)) or real_fit(self, L))
    probs, abstain = s.weak_labels()
    assert fit_rows == [int((s.label_array() < 0).sum())] and fit_rows[0] < 1500
    assert probs.shape == (1500, len(s.classes)) and abstain[audit].all()
    covered = ~abstain
    acc = (np.asarray(s.classes, dtype=object)[probs.argmax(1)][covered] == truth[covered]).mean()
    # label spreading reaches nearly every item (chance: 0.1)
    assert covered.mean() > 0.9 and acc > 0.55
    mv, _ = s.weak_labels(method="majority")
    assert mv.shape == probs.shape
    s.fit()
    assert s.curve.iloc[-1]["weak"] == 0
    s.fit(weak=True)
    assert s.rules.train_with_weak and s.rules.n_weak_trained > 20
    rec = s.curve.iloc[-1]
    assert rec["weak"] == s.rules.n_weak_trained and rec["n_train"] > 60
    s.fit()  # a plain fit (the Trainer's Train button) keeps the choice
    assert s.rules.train_with_weak and s.curve.iloc[-1]["weak"] == s.rules.n_weak_trained
    s.fit(weak=False)
    assert s.curve.iloc[-1]["weak"] == 0 and not s.rules.train_with_weak


def test_weak_labels_follow_the_neighbours_rule_where_it_contradicts(labeled, monkeypatch):
    from dfwidgets.session import rules as rules_mod

    s, truth = labeled
    s.rules.add_neighbours(k=10)
    s.rules.add_examples("Trouser", threshold=0.6)
    bags = np.flatnonzero((truth == "Bag") & (s.label_array() < 0))
    s.rules.add_region(bags, "Trouser")  # a wrong region: no hand label inside to stop it
    idx = np.flatnonzero(s.label_array() >= 0)
    y, w = s.label_array()[idx], np.ones(len(idx), np.float32)
    L, names = s.rules.votes()
    nb = L[:, names.index("10 nearest neighbours")]
    monkeypatch.setattr(rules_mod, "NEIGHBOURS_DECIDE", True)
    all_idx, all_y, all_w = s.rules.weak_training_set(idx, y, w, force=True)
    weak_w = all_w[len(idx):]  # weak labels weigh alike, together at most WEAK_SHARE x hand
    assert np.allclose(weak_w, weak_w[0])
    assert weak_w.sum() <= rules_mod.WEAK_SHARE * w.sum() + 1e-3
    weak, weak_y = all_idx[len(idx):], all_y[len(idx):]
    assert len(weak) and (nb[weak] == weak_y).all()  # the neighbours rule's class
    probs, _ = s.weak_labels()
    assert (probs[weak].argmax(1) != weak_y).any()  # ... also where the label model disagrees
    monkeypatch.setattr(rules_mod, "NEIGHBOURS_DECIDE", False)  # there: no weak label
    agree_idx, agree_y, _ = s.rules.weak_training_set(idx, y, w, force=True)
    agree = agree_idx[len(idx):]
    assert 0 < len(agree) < len(weak) and (nb[agree] == agree_y[len(idx):]).all()
    assert (probs[agree].argmax(1) == agree_y[len(idx):]).all()
    monkeypatch.setattr(rules_mod, "AGREE_NEIGHBOURS", False)
    loose_idx, loose_y, _ = s.rules.weak_training_set(idx, y, w, force=True)
    loose = loose_idx[len(idx):]
    assert len(loose) > len(agree) and (nb[loose] != loose_y[len(idx):]).any()
