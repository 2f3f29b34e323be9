"""Trainer widget state without a browser: a Session over 4,000 Fashion-MNIST items with
the offline backbone's cached embeddings; figures are checked against the Session."""

from __future__ import annotations

import time

import numpy as np
import pytest

import dfwidgets as dfw
from dfwidgets.exported_model import ExportedModel
from dfwidgets.learn.learning_curve import LearningCurveFit

N_ITEMS = 4000


@pytest.fixture()
def session(fmnist_session):
    return fmnist_session(N_ITEMS, split="train")


def _label_random(s, n, seed):
    rng = np.random.default_rng(seed)
    codes = s.label_array()
    holdout = set(s.holdout_indices().tolist())
    pool = np.array([i for i in np.flatnonzero(codes < 0) if i not in holdout])
    pick = rng.choice(pool, n, replace=False)
    names = np.asarray(s.source.classes, dtype=object)
    s.label_many(pick, list(names[s.source.labels[pick]]), source="click")
    return pick


def test_no_labels_shows_a_message_not_a_traceback(session):
    tr = dfw.Trainer(session, embedder="efficientnet_lite0")
    tr.train(mode="probe")
    assert tr.model_ is None
    assert "dfw-tr-error" in tr.status.value and "label" in tr.status.value.lower()
    tr.train(mode="nonsense")
    assert "Unknown mode" in tr.status.value
    with pytest.raises(ValueError, match="target"):
        dfw.Trainer(session, target=90)


def test_status_says_why_fewer_labels_are_trained_on(session):
    """Queue labels include random audit items, never trained on: the status says so."""
    names = np.asarray(session.source.classes, dtype=object)
    while int((session.label_array() >= 0).sum()) < 60:
        batch = np.asarray(session.next_batch(10), dtype=np.int64)
        session.label_many(batch, list(names[session.source.labels[batch]]), source="click")
    tr = dfw.Trainer(session)
    tr.train(mode="probe")
    labeled = session.label_array() >= 0
    aside = int((labeled & session.audit_mask()).sum())
    assert aside > 0
    assert (f"Trained a linear probe on {int(labeled.sum()) - aside} labels ({aside} more are "
            "kept aside to check its accuracy") in tr.verdict_html.value


@pytest.mark.slow
def test_probe_curves_baseline_confusion_and_export(session):
    tr = dfw.Trainer(session, embedder="efficientnet_lite0", target=0.85)
    fig = tr.curve_fig
    counts = []
    for step, n in enumerate((30, 30, 50)):
        _label_random(session, n, seed=step)
        tr.train(mode="probe")
        counts.append(int((session.label_array() >= 0).sum()))
        assert tr.curve_fig is fig  # updated in place, never re-created
    pts = tr.curve_points()
    assert pts["n_labels"].tolist() == counts
    assert list(fig.data[0].x) == counts
    np.testing.assert_allclose(fig.data[0].y, pts["accuracy"])
    truth = session.curve["true_accuracy"].dropna().to_numpy()
    np.testing.assert_allclose(sorted(fig.data[0].y), sorted(truth[-3:]))
    assert pts["accuracy"].iloc[-1] > 0.6
    # random-sampling baseline beside it, and the saving in words
    assert len(fig.data[1].x) >= 5 and max(fig.data[1].x) >= 2 * counts[-1]
    assert f"{counts[-1]} labels so far" in tr.saving_html.value
    assert "random would need about" in tr.saving_html.value or "more than" in tr.saving_html.value
    # when to stop: the power law fitted to the same points (rebuilt here from the
    # Session's curve records), drawn and put in words with its numbers
    records = session.curve.dropna(subset=["true_accuracy"])
    last = records.groupby("n_labels")["true_accuracy"].last()
    assert last.index.tolist() == counts
    lc = LearningCurveFit(n_bootstrap=100).fit(last.index, last.to_numpy())
    need = lc.labels_needed(0.85)
    stop = session.training.stop_estimate(0.85)
    assert stop["estimate"] == pytest.approx(need["estimate"], rel=1e-6)
    assert stop["asymptote"] == pytest.approx(need["asymptote"], rel=1e-6)
    fit_x = np.asarray(fig.data[2].x)
    assert len(fit_x) > 10 and fit_x[0] == counts[0]
    np.testing.assert_allclose(fig.data[2].y, np.clip(lc.predict(fit_x), 0, 1), atol=1e-9)
    text = tr.stop_html.value
    assert f"levels off near {need['asymptote']:.1%}" in text
    if last.iloc[-1] >= 0.85:
        assert "the target 85% is reached" in text
    elif not need["reachable"]:
        assert "looks out of reach" in text and not np.isfinite(stop["estimate"])
    else:
        assert f"about <b>{need['estimate']:,.0f}</b> labels in total for 85%" in text
        assert f"about {max(0, round(need['estimate']) - counts[-1]):,} more" in text
    # per-class accuracy and the confusion matrix on the ground-truth holdout
    cm = np.asarray(tr.confusion_fig.data[0].z)
    assert cm.shape == (10, 10)
    holdout = session.holdout_indices()
    assert cm.sum() == len(holdout)
    diag = np.diag(cm) / cm.sum(1)
    np.testing.assert_allclose(tr.class_fig.data[0].y, diag[cm.sum(1) > 0])
    assert np.trace(cm) / cm.sum() == pytest.approx(pts["accuracy"].iloc[-1], abs=1e-9)
    # clicking a cell lists exactly the confused items
    off = np.array(cm, dtype=float)
    np.fill_diagonal(off, -1)
    t, p = np.unravel_index(np.argmax(off), off.shape)
    classes = session.classes
    hits = tr.show_confused(classes[t], classes[p])
    assert len(hits) == cm[t, p] > 0
    assert (session.source.labels[hits] == t).all() and (session.predictions_[hits] == p).all()
    assert len(tr.items_box.children) == min(len(hits), 24)
    assert f"<b>{len(hits)}</b> confused" in tr.items_caption.value
    np.testing.assert_array_equal(session.selection, np.sort(hits))  # the map can follow
    # the exported model: probe head on the backbone, same predictions as the Session
    assert isinstance(tr.model_, ExportedModel) and tr.kept_ == "probe"
    sample = holdout[:20]
    pred = tr.model_.predict([session.source[int(i)] for i in sample])
    agree = np.mean(pred == np.asarray(classes, dtype=object)[session.predictions_[sample]])
    assert agree >= 0.95
    frame = tr.predictions()
    assert len(frame) == N_ITEMS and frame["item"].tolist() == list(session.ids)
    assert (frame["prediction"].to_numpy() == np.asarray(classes, dtype=object)[
        session.predictions_]).all()


def test_plots_follow_fits_made_elsewhere(session):
    tr = dfw.Trainer(session, embedder="efficientnet_lite0")
    _label_random(session, 30, seed=5)
    session.fit()  # e.g. the Labeler's auto-fit: the Trainer hears "model_updated"
    deadline = time.monotonic() + 300  # the refresh runs in a background thread
    while len(tr.curve_fig.data[0].x) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tr.wait(timeout=300)
    assert len(tr.curve_fig.data[0].x) == 1
    assert np.asarray(tr.confusion_fig.data[0].z).sum() > 0
    # the page widget holds the same drawing: a newer version than the empty one it was
    # born with (a fit from a background thread updates the synced JSON, not only a message)
    sent = tr.charts.get_state()["confusion"]
    assert sent["version"] >= 2
    assert sent["figure"]["data"][0]["z"] == session.training.confusion()["matrix"].tolist()
    assert tr.charts.curve["figure"]["data"][0]["x"] == list(tr.curve_fig.data[0].x)
    tr.close()


@pytest.mark.slow
def test_finetune_run_reports_which_model_is_kept(session):
    tr = dfw.Trainer(session, embedder="efficientnet_lite0", epochs=1, threads=1)
    _label_random(session, 60, seed=9)
    n_labels = int((session.label_array() >= 0).sum())
    assert not tr.epochs_shown  # no empty epoch chart before fine-tuning
    live = []  # (still training?, epoch chart shown?, points drawn) at each epoch's report
    draw = tr._on_epoch

    def watch(row):
        draw(row)
        live.append((tr.training, tr.epochs_shown, len(tr.epoch_fig.data[1].x)))

    tr._on_epoch = watch
    tr.train(mode="finetune", wait=True)
    assert live == [(True, True, 1), (True, True, 2)]  # drawn while it trains, not after
    assert tr.epochs_shown
    ft = tr.finetuner_
    assert ft is not None and ft.error_ is None and len(ft.history_) == 2
    epochs = tr.epoch_fig.data
    assert list(epochs[1].x) == [0, 1]  # held-out loss at the probe start and after epoch 1
    np.testing.assert_allclose(epochs[3].y, ft.history_["val_acc"])
    assert tr.kept_ == ("finetune" if ft.improved_ else "probe")
    assert ft.verdict_ in tr.verdict_html.value.replace("&#x27;", "'")
    runs = session.training.runs()
    assert len(runs) == 1 and runs[0]["kept"] == tr.kept_
    # the fine-tuned point: the labels at that time, and the fine-tuned model's accuracy
    # on the unlabeled ground-truth holdout, measured here again
    holdout = session.holdout_indices()
    holdout = holdout[session.label_array()[holdout] < 0]
    truth = np.asarray(session.source.classes, dtype=object)[session.source.labels[holdout]]
    pred = ft.model_.predict(session.source.subset(holdout))
    accuracy = float(np.mean(pred == truth))
    assert accuracy > 0.3
    assert list(tr.curve_fig.data[3].x) == [n_labels]
    np.testing.assert_allclose(tr.curve_fig.data[3].y, [accuracy], atol=1e-9)
    assert runs[0]["accuracy"] == pytest.approx(accuracy, abs=1e-9)


def test_finetune_advice_is_shown_before_the_user_waits(session):
    # measured runs in this project: fine-tuning lost at 500 labels and won from 2,000
    for n, probe, tuned in ((500, 0.80, 0.79), (2000, 0.85, 0.88), (10000, 0.87, 0.91)):
        session.training.record({"n_labels": n, "held_out_probe": probe,
                                 "held_out_finetune": tuned, "accuracy": tuned,
                                 "cancelled": False})
    _label_random(session, 30, seed=3)
    tr = dfw.Trainer(session, embedder="efficientnet_lite0")
    assert "has not beaten" not in tr.status.value
    tr.mode_toggle.value = "finetune"  # choosing fine-tuning says whether it pays first
    text = tr.status.value
    assert "With 30 labels fine-tuning has not beaten the probe" in text
    assert "around 2,000 labels" in text
    advice = session.training.finetune_advice()
    assert advice["pays"] is False and advice["from_labels"] == 2000
    # the fine-tuned runs are the second series on the accuracy-vs-labels chart
    assert list(tr.curve_fig.data[3].x) == [500, 2000, 10000]



def test_curve_marks_points_made_with_weak_labels(session):
    """A fit with the rules' weak labels is named under the curve (label count and how
    many weak labels); the curve keeps its traces (an extra trace or per-point marker
    arrays made the plot come up empty in JupyterLab)."""
    tr = dfw.Trainer(session, embedder="efficientnet_lite0")
    n_traces = len(tr.curve_fig.data)
    _label_random(session, 30, seed=7)
    tr.train(mode="probe")
    assert "weak" not in tr.saving_html.value
    _label_random(session, 10, seed=8)
    session.rules.add_neighbours(k=10)
    session.fit(weak=True)
    assert tr.wait(timeout=300)
    tr._refresh(tr._refresh_curve)
    assert tr.wait(timeout=300)
    assert len(tr.curve_fig.data) == n_traces and list(tr.curve_fig.data[0].x) == [30, 40]
    n_weak = int(session.curve["weak"].iloc[-1])
    assert n_weak > 0
    assert f"Points made with weak labels (rules): at 40 (+{n_weak:,} weak)" in tr.saving_html.value
    tr.close()


def _curve_rep(xs):
    import pandas as pd

    points = pd.DataFrame({"n_labels": xs, "accuracy": [0.5] * len(xs), "low": np.nan,
                           "high": np.nan, "measured": "held-out"})
    return {"points": points, "baseline": ([], []), "finetune": ([], []),
            "stop": {"fit_x": [], "fit_y": []}, "x_max": max(xs), "target": 0.9}


def test_one_chart_widget_keeps_the_latest_drawings_and_answers_clicks(caplog):
    """The four figures are drawn by ONE anywidget whose synced state holds each chart's
    latest figure JSON and version (a view made later starts from it); edits from many
    threads at once lose nothing; clicks and drawing errors come back from the page."""
    import threading

    import pandas as pd

    from dfwidgets.widgets.trainer_plots import TrainerPlots

    cells, bars = [], []
    plots = TrainerPlots(on_cell=lambda t, p: cells.append((t, p)), on_bar=bars.append)
    charts = plots.charts
    state = charts.get_state()
    assert state["rows"] == [["curve", "epoch"], ["classes", "confusion"]]
    assert state["hidden"] == ["epoch"] and not plots.epochs_shown
    assert {n: state[n]["version"] for n in charts.NAMES} == dict.fromkeys(charts.NAMES, 1)
    assert [t["name"] for t in state["curve"]["figure"]["data"]][:2] == [
        "your labels", "random sampling (simulated)"]

    def draw(k):
        for j in range(5):
            plots.draw_curve(_curve_rep(list(range(10, 10 * (k * 5 + j) + 20, 10))))

    threads = [threading.Thread(target=draw, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    sent = charts.get_state()["curve"]
    assert sent["version"] == 1 + 20 == charts.versions["curve"]
    assert sent["figure"]["data"][0]["x"] == list(plots.curve_fig.data[0].x)
    plots.draw_confusion({"per_class": pd.DataFrame({"class": ["a", "b"], "accuracy": [1, .5],
                                                     "n": [2, 2]}),
                          "classes": ["a", "b"], "matrix": np.array([[2, 0], [1, 1]]),
                          "kind": "held-out", "n": 4})
    assert charts.confusion["figure"]["data"][0]["z"] == [[2, 0], [1, 1]]
    assert charts.confusion["version"] == charts.classes["version"] == 2
    plots.add_epoch({"epoch": 0, "val_loss": 0.9, "val_acc": 0.7, "train_loss": float("nan")})
    plots.show_epochs()
    assert plots.epochs_shown and charts.epoch["figure"]["data"][1]["x"] == [0]
    # what the page sends: a click on a cell (x predicted, y true), on a bar, a failed drawing
    def page_sends(content):  # a custom message from the page, as the widget's comm hands it
        charts._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                            "buffers": []})

    page_sends({"type": "click", "chart": "confusion", "x": "a", "y": "b"})
    page_sends({"type": "click", "chart": "classes", "x": "b", "y": 0.5})
    page_sends({"type": "drawn", "chart": "curve", "version": 21})
    with caplog.at_level("WARNING"):
        page_sends({"type": "error", "chart": "confusion", "version": 2,
                    "message": "The chart could not be drawn: boom"})
    assert cells == [("b", "a")] and bars == ["b"]
    assert charts.drawn == {"curve": 21} and "boom" in charts.errors["confusion"]
    assert "confusion" in caplog.text and "boom" in caplog.text
    # the figures' own plotly click callbacks reach the same handlers
    from plotly.callbacks import Points

    plots.confusion_fig.data[0]._dispatch_on_click(
        Points(point_inds=[0], xs=["b"], ys=["a"], trace_name="", trace_index=0), None)
    assert cells[-1] == ("a", "b")
