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
    tr.close()
    assert len(tr.curve_fig.data[0].x) == 1
    assert np.asarray(tr.confusion_fig.data[0].z).sum() > 0


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


def test_an_edit_from_a_worker_thread_is_not_lost_while_a_page_message_is_handled():
    """ipywidgets' set_state (the page's message, kernel thread) holds the figure's trait
    notifications; plotly's edit (``_py2js_update`` = msg, then None) made meanwhile from
    the training thread was merged into None and never reached the page. It now waits."""
    import threading

    import pandas as pd

    from dfwidgets.widgets.trainer_plots import TrainerPlots

    plots = TrainerPlots(on_cell=lambda _t, _p: None)
    fig, sent = plots.curve_fig, []
    fig.observe(lambda change: sent.append(change["new"]), names="_py2js_update")
    in_message = threading.Event()

    def slow_from_json(value, _widget):  # the kernel still applying the page's message
        in_message.set()
        time.sleep(0.5)
        return value

    fig._trait_from_json = slow_from_json
    page = threading.Thread(target=fig.set_state, args=({"_last_layout_edit_id": 0},))
    page.start()
    assert in_message.wait(10)
    points = pd.DataFrame({"n_labels": [40], "accuracy": [0.6], "low": [np.nan],
                           "high": [np.nan], "measured": ["held-out"]})
    plots.draw_curve({"points": points, "baseline": ([], []), "finetune": ([], []),
                      "stop": {"fit_x": [], "fit_y": []}, "x_max": 40, "target": 0.9})
    page.join()
    edits = [m for m in sent if m is not None]
    assert edits and edits[-1]["style_data"]["x"][0] == [40]


def test_a_figure_opens_with_its_traces_and_is_renewed_when_its_page_stops_taking_edits(
        monkeypatch):
    """anywidget drops every message to a model whose plotly bundle took > 2 s to load
    (a busy machine): the page keeps the state the comm was opened with. The comm opens
    only once the traces are in place, and a figure whose page has not confirmed an edit
    for PAGE_LAG s is replaced (same box, same click handler) by one born with the data."""
    import comm
    import pandas as pd

    from dfwidgets.widgets import plot_style
    from dfwidgets.widgets.trainer_plots import TrainerPlots

    opened = []
    create = comm.create_comm
    monkeypatch.setattr(comm, "create_comm", lambda **kw: opened.append(kw) or create(**kw))
    cells = []
    plots = TrainerPlots(on_cell=lambda t, p: cells.append((t, p)))
    born = {kw["data"]["state"]["_widget_layout"]["title"]["text"]:
            len(kw["data"]["state"]["_widget_data"]) for kw in opened
            if kw["data"]["state"].get("_model_name") == "AnyModel"}
    assert born["Accuracy vs labels"] == 5 and born["Confusion matrix (click a cell)"] == 1

    box, old = plots.boxed(plots.curve_fig), plots.curve_fig
    points = pd.DataFrame({"n_labels": [30, 40], "accuracy": [0.5, 0.6], "low": np.nan,
                           "high": np.nan, "measured": "held-out"})
    rep = {"points": points.iloc[:1], "baseline": ([], []), "finetune": ([], []),
           "stop": {"fit_x": [], "fit_y": []}, "x_max": 40, "target": 0.9}
    old.dfw_page.seen = True  # a page showed it (it sent a message) ...
    plots.draw_curve(rep)  # ... and never confirms this edit
    assert plots.curve_fig is old and not plot_style.page_behind(old)  # not yet PAGE_LAG
    old.dfw_page.unconfirmed -= plot_style.PAGE_LAG + 1
    assert plot_style.page_behind(old)
    plots.draw_curve({**rep, "points": points})
    new = plots.curve_fig
    assert new is not old and old.comm is None and box.children == (new,)
    assert list(new.data[0].x) == [30, 40]
    assert opened[-1]["data"]["state"]["_widget_data"][0]["x"] == [30, 40]
    # a page that confirmed one edit keeps its figure, however slow its later answers
    new.dfw_page.seen = True
    plots.draw_curve(rep)
    new._trace_edit_in_process = new._layout_edit_in_process = False  # the page answers
    plots.draw_curve({**rep, "points": points})
    new.dfw_page.unconfirmed -= plot_style.PAGE_LAG + 1
    plots.draw_curve(rep)
    assert plots.curve_fig is new and plots.renewed == 1
    # a renewed confusion matrix still answers clicks
    heat = plots.confusion_fig
    heat.dfw_page.seen, heat._trace_edit_in_process = True, True
    heat.dfw_page.unconfirmed = time.monotonic() - plot_style.PAGE_LAG - 1
    plots.draw_confusion({"per_class": pd.DataFrame({"class": ["a", "b"], "accuracy": [1, .5],
                                                     "n": [2, 2]}),
                          "classes": ["a", "b"], "matrix": np.array([[2, 0], [1, 1]]),
                          "kind": "held-out", "n": 4})
    assert plots.confusion_fig is not heat
    trace = plots.confusion_fig.data[0]
    trace._dispatch_on_click(type("P", (), {"xs": ["a"], "ys": ["b"]})(), None)
    assert cells == [("b", "a")]
    # the last edit is never confirmed and no draw follows: renewed PAGE_LAG s later
    monkeypatch.setattr(plot_style, "PAGE_LAG", 0.1)
    monkeypatch.setattr("dfwidgets.widgets.trainer_plots.PAGE_LAG", 0.1)
    plots = TrainerPlots(on_cell=lambda t, p: None)
    plots.curve_fig.dfw_page.seen = True
    plots.draw_curve({**rep, "points": points.iloc[:1]})
    for _ in range(100):
        if plots.renewed:
            break
        time.sleep(0.05)
    assert plots.renewed == 1 and list(plots.curve_fig.data[0].x) == [30]
