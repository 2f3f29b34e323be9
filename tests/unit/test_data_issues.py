"""Data issues (issue 19): each kind in learn.data_issues, and exclusions in a Session
(not trained on, not asked, not exported, undo)."""

from __future__ import annotations

import numpy as np
import pytest

from dfwidgets.learn import data_issues as di

pytestmark = pytest.mark.usefixtures("one_thread")


def _graph(x: np.ndarray, k: int = 5):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = x @ x.T
    idx = np.argsort(-sims, axis=1)[:, :k + 1]
    return di.knn_graph(idx, 1 - np.take_along_axis(sims, idx, 1))


@pytest.fixture(scope="module")
def fm():
    """300 Fashion-MNIST test images + embeddings, and the ten class names."""
    import dfwidgets as dfw

    src = dfw.datasets.fashion_mnist(split="test")
    emb = dfw.embed(src, model="efficientnet_lite0", progress=False)
    return np.asarray(src.array[:300]), emb[:300], np.asarray(src.labels[:300]), src.classes


def test_knn_graph_drops_self_and_sorts():
    idx = np.array([[0, 2, 1], [1, 0, 2], [2, 1, 0]])
    dist = np.array([[0.0, 0.3, 0.1], [0.0, 0.2, 0.5], [0.0, 0.0, 0.4]])
    g = di.knn_graph(idx, dist)
    assert g.shape == (3, 3) and g.nnz == 6
    assert g.indices.reshape(3, 2)[0].tolist() == [1, 2]
    assert g.data.reshape(3, 2)[2, 0] == pytest.approx(1e-9)  # an exact copy stays in


def test_exact_and_near_duplicates_are_grouped_with_one_to_keep(fm):
    arr, emb, _, _ = fm
    bright = np.clip(arr[5].astype(int) * 1.1 + 15, 0, 255).astype(np.uint8)
    images = np.concatenate([arr, arr[[3]], bright[None]])
    x = np.concatenate([emb, emb[[3]], emb[[5]] + 0.01])
    from dfwidgets.data.file_hashes import array_hashes

    prefer = np.zeros(len(x), dtype=bool)
    prefer[301] = True  # the labeled copy is the one to keep
    report = di.find_data_issues(graph=_graph(x), hashes=array_hashes(images),
                                 thumbs=di.thumbnails(images), prefer=prefer)
    exact = report[report["kind"] == "exact_duplicate"]
    assert set(exact["index"]) == {3, 300}
    assert exact.set_index("index").loc[3, "suggestion"] == "keep"
    near = report[report["kind"] == "near_duplicate"]
    assert {5, 301} <= set(near["index"])
    group = near.set_index("index").loc[5, "group"]
    members = near[near["group"] == group].set_index("index")
    assert members.loc[301, "suggestion"] == "keep"
    assert members.loc[5, "suggestion"] == "exclude: a copy of 301"
    assert 300 not in set(near["index"])  # the exact copy is reported once
    assert list(report.columns) == list(di.COLUMNS)
    assert report["score"].between(0, 1).all()


def _copies(im: np.ndarray) -> dict[str, np.ndarray]:
    """A shifted, a brightened and a JPEG re-encoded copy of a uint8 (28, 28) image."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(im).save(buf, format="JPEG", quality=75)
    return {"shifted": np.roll(im, 1, axis=1),
            "brightened": np.clip(im * 1.15 + 20, 0, 255).astype(np.uint8),
            "re-encoded": np.asarray(Image.open(io.BytesIO(buf.getvalue())))}


def test_pixel_check_confirms_copies_and_rejects_look_alikes(fm):
    arr, _, labels, _ = fm
    th = di.thumbnails(arr)
    found = {}
    for i in range(12):
        copies = _copies(arr[i])
        both = di.thumbnails(np.stack([arr[i], *copies.values()]))
        d = di.pixel_distance(both, np.zeros(3, int), np.arange(1, 4))
        found.update({(i, kind): dist for kind, dist in zip(copies, d)})
        # the closest other item of the same class (the hardest look-alike) is not a copy
        same = np.flatnonzero((labels == labels[i]) & (np.arange(len(arr)) != i))
        look = di.pixel_distance(th, np.full(len(same), i), same)
        assert look.min() > di.NEAR_DUPLICATE_DISTANCE, (i, same[look.argmin()], look.min())
    hit = {key: dist < di.NEAR_DUPLICATE_DISTANCE for key, dist in found.items()}
    # shifted and brightened copies always; JPEG at quality 75 is the hardest (benchmark
    # recall 0.96-0.97 over all kinds)
    assert all(v for (_, kind), v in hit.items() if kind != "re-encoded"), found
    assert np.mean(list(hit.values())) >= 0.9, found
    with pytest.raises(ValueError, match="thumbs must be"):
        di.pixel_distance(th[:, :10, :12], np.array([0]), np.array([1]))


def test_two_stage_near_duplicates_find_copies_not_look_alikes(fm):
    arr, emb, _, _ = fm
    copies = _copies(arr[10])
    images = np.concatenate([arr, np.stack(list(copies.values()))])
    # the copies' embeddings are noisy (a backbone moves them), so the pixel stage decides
    rng = np.random.default_rng(0)
    x = np.concatenate([emb, emb[[10, 10, 10]] + rng.normal(0, 0.3, (3, emb.shape[1]))])
    report = di.find_data_issues(graph=_graph(x), thumbs=di.thumbnails(images))
    near = report[report["kind"] == "near_duplicate"].set_index("index")
    assert {10, 300, 301, 302} <= set(near.index)
    assert near.loc[[300, 301, 302], "group"].nunique() == 1
    group = near.loc[10, "group"]
    assert near.loc[300, "group"] == group
    members = set(near.index[near["group"] == group])
    assert members == {10, 300, 301, 302}, members  # no look-alike of the same class joins
    no_pixels = di.find_data_issues(graph=_graph(x))  # embedding distance only: missed
    assert 300 not in set(no_pixels.loc[no_pixels["kind"] == "near_duplicate", "index"])


def test_outlier_far_from_everything_is_flagged():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(200, 8)) * 0.05 + np.eye(8)[0],
                        np.eye(8)[[7]]])
    report = di.find_data_issues(graph=_graph(x))
    out = report[report["kind"] == "outlier"]
    assert 200 in set(out["index"])
    assert len(out) <= 0.06 * len(x)  # the IQR rule flags only the tail
    assert out.set_index("index").loc[200, "score"] == out["score"].max()


def test_a_small_cluster_far_from_the_rest_is_flagged_as_outliers():
    """Items whose neighbours are each other (a batch from another domain) pass the
    item-level kNN-distance rule; the cluster-level rule (an island of the graph) finds them."""
    rng = np.random.default_rng(2)
    bulk = np.concatenate([rng.normal(size=(300, 8)) * 0.15 + np.eye(8)[c] for c in range(3)])
    stray = rng.normal(size=(20, 8)) * 0.05 + np.eye(8)[7]
    x = np.concatenate([bulk, stray])
    report = di.find_data_issues(graph=_graph(x))
    out = set(report.loc[report["kind"] == "outlier", "index"])
    assert set(range(900, 920)) <= out
    assert len(out - set(range(900, 920))) <= 0.01 * len(bulk)
    _score, item_level = di._outliers(_graph(x), None, island_fraction=0.0)
    assert not item_level[900:].any()  # what the item-level rule alone misses


def test_label_errors_and_class_imbalance():
    rng = np.random.default_rng(1)
    n = 300
    codes = rng.integers(0, 3, size=n)
    codes[:5] = 3  # a rare class: 5 of 250 labels < 0.1 / K
    probs = np.full((n, 4), 0.02, dtype=np.float32)
    probs[np.arange(n), codes] = 0.94
    given = codes.copy()
    flipped = np.arange(20, 35)
    given[flipped] = (codes[flipped] + 1) % 3
    given[-50:] = -1  # unlabeled items are not judged
    x = rng.normal(size=(n, 4))
    report = di.find_data_issues(graph=_graph(x), labels=given, pred_probs=probs,
                                 class_names=["a", "b", "c", "d"])
    errors = report[report["kind"] == "label_error"].set_index("index")
    assert set(errors.index) == set(flipped)
    assert errors.loc[20, "suggested"] == "abc"[codes[20]]
    assert errors.loc[20, "suggestion"] == f"relabel as {'abc'[codes[20]]!r}"
    rare = report[report["kind"] == "class_imbalance"]
    assert set(rare["index"]) == set(range(5))
    assert "'d'" in rare["suggestion"].iloc[0]


# ------------------------------------------------------------------ the Session
@pytest.fixture()
def dup_session(tmp_path, fm):
    """A Session over 200 Fashion-MNIST items + an exact copy of item 0 (index 200)."""
    from dfwidgets.data.source import ImageSource
    from dfwidgets.session import Session

    arr, emb, labels, classes = fm
    images = np.concatenate([arr[:200], arr[[0]]])
    source = ImageSource.from_array(images, labels=np.r_[labels[:200], labels[0]],
                                    classes=classes)
    s = Session.open(tmp_path / "proj", source=source,
                     embeddings=np.concatenate([emb[:200], emb[[0]]]), auto_fit=False)
    names = np.asarray(classes, dtype=object)
    s.label_many(np.arange(60), names[labels[:60]].tolist(), source="import")
    yield s
    s.close()


def test_session_report_and_second_copy_never_asked(dup_session):
    s = dup_session
    report = s.find_issues()
    exact = report[report["kind"] == "exact_duplicate"].set_index("index")
    assert set(exact.index) == {0, 200}
    assert exact.loc[0, "suggestion"] == "keep"  # labeled, so kept
    assert exact.loc[200, "item_id"] == s.ids[200]
    assert s.issues.status_["state"] == "done"
    assert s.issues.skip_mask()[200]
    for _ in range(3):
        assert 200 not in s.next_batch(50, strategy="random").tolist()


def test_find_issues_in_the_background_emits(dup_session):
    s = dup_session
    got = []
    s.on("issues_changed", got.append)
    assert s.find_issues(background=True) is None
    assert s.issues.wait(120)
    assert got and got[-1] is not None and len(got[-1]) >= 2


def test_exclude_not_trained_not_asked_not_exported_and_undo(dup_session):
    s = dup_session
    out = np.arange(0, 10)
    assert s.exclude(out, reason="duplicate") == 10
    assert s.excluded_mask()[out].all() and s.excluded_mask().sum() == 10
    idx, _, _ = s._fit.training_set()
    assert not np.isin(out, idx).any()
    s.fit()
    assert s.fit_status_.endswith("s)") and "50 labels" in s.fit_status_
    unlabeled_out = np.arange(100, 120)
    s.exclude(unlabeled_out, reason="outlier")
    for strategy in ("random", "entropy"):
        assert not np.isin(s.next_batch(150, strategy=strategy), unlabeled_out).any()
    proposal = s.propose(method="prototype")
    assert not np.isin(proposal["index"], unlabeled_out).any()
    exported = s.store.export("dataframe")
    assert not exported["item_id"].isin(s.ids[out]).any()
    assert len(exported) == 50
    history = s.store.get_meta("schema_version")  # the file still opens as schema 1
    assert history == 1
    assert s.undo_exclude() == 20  # the newest call of source "review"
    assert s.excluded_mask().sum() == 10
    assert s.undo_exclude() == 10
    assert not s.excluded_mask().any()
    assert len(s.store.export("dataframe")) == 60
    from dfwidgets.store.exclusions import exclusion_history

    hist = exclusion_history(s.store)
    assert len(hist) == 30 and hist["undone"].all()
    assert set(hist["reason"]) == {"duplicate", "outlier"}


def test_include_and_bad_input(dup_session):
    s = dup_session
    s.exclude([5], reason="stray")
    assert s.include([5]) == 1 and not s.excluded_mask()[5]
    assert s.undo_exclude() == 1 and s.excluded_mask()[5]  # undo the include
    with pytest.raises(ValueError, match="source"):
        s.exclude([1], source="nowhere")
    with pytest.raises(IndexError):
        s.exclude([10_000])


def test_one_neighbour_table_for_issues_and_strategies(dup_session, monkeypatch):
    """The Session builds its 10-NN table once (exact at this size); the data-issue graph
    and the strategies' ProbCover / typicality all read that table; the neighbours rule
    reads the whitened pool's table, also built once."""
    from dfwidgets.learn import neighbour_smoothing as ns
    from dfwidgets.learn import probcover, strategies
    from dfwidgets.learn.whitening import whitened_rows
    from dfwidgets.session.rules_votes import neighbour_rule_votes

    s, calls = dup_session, []
    real = ns.knn_table
    monkeypatch.setattr(ns, "knn_table", lambda *a, **kw: calls.append(a[0]) or real(*a, **kw))
    s.find_issues()
    strategies.probcover(None, s.embeddings, np.zeros(len(s.ids), bool), 5, 0)
    typ = probcover.typicality(np.array(s.embeddings))  # a copy: the same pool by content
    pools = [a for a in calls if a.shape == s.embeddings.shape]  # (the other: pixel kNN)
    assert len(pools) == 1
    neighbour_rule_votes(s, k=10)
    neighbour_rule_votes(s, k=5)
    pools = [a for a in calls if a.shape == s.embeddings.shape]
    assert len(pools) == 2  # + the whitened pool's, once
    W = whitened_rows(s.embeddings)
    np.testing.assert_allclose(pools[1], W, atol=1e-6)
    wsims = np.einsum("id,ikd->ik", W, W[s._neighbours.whitened_table(k=10)])
    full_w = W @ W.T
    np.fill_diagonal(full_w, -np.inf)
    np.testing.assert_allclose(wsims, -np.sort(-full_w, axis=1)[:, :10], atol=1e-5)
    sims, idx = s._neighbours.table(k=10)
    unit = s.embeddings / np.linalg.norm(s.embeddings, axis=1, keepdims=True)
    full = unit @ unit.T
    np.fill_diagonal(full, -np.inf)
    np.testing.assert_allclose(sims, -np.sort(-full, axis=1)[:, :10], atol=1e-5)
    assert sims[0, 0] == pytest.approx(1.0, abs=1e-5) and idx[0, 0] == 200  # the copy
    assert s.issues.neighbours(0, k=3)[0] == 200
    np.testing.assert_allclose(typ.argmax(), sims.mean(axis=1).argmax())
