"""The Rules panel without a browser: the list with its bars follows session.rules, rules
are added from the selection and the examples, switched, removed and undone, mistakes are
messages (never tracebacks), and the map colours by weak label / no rule."""

from __future__ import annotations

import numpy as np
import pytest

import dfwidgets as dfw
from dfwidgets.widgets.embedding_map_colors import COLOR_MODES, point_colors
from dfwidgets.widgets.rules_panel import RulesPanel

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def session(fmnist_session, fmnist_test):
    s = fmnist_session(600)
    truth = np.asarray(fmnist_test.classes, dtype=object)[fmnist_test.labels[:600]]
    for c in fmnist_test.classes:
        s.label(np.flatnonzero(truth == c)[:4], c)
    s.truth = truth
    return s


def test_add_from_selection_toggle_remove_undo(session):
    panel = RulesPanel(session)
    assert panel.rows == [] and "No rules yet" in panel.list_box.children[0].value
    assert panel.region_button.disabled  # nothing selected
    bags = np.flatnonzero(session.truth == "Bag")[:36]  # 4 hand labels inside: it votes
    session.select(bags)
    panel.wait()
    assert panel.region_button.disabled is False and "36 selected" in panel.selection_note.value
    panel.class_box.value = "Bag"
    panel.region_button.click()
    assert panel.rows == ["region: Bag (36 items)"]
    assert session.rules.all()[0]["params"]["ids"] == [str(i) for i in session.ids[bags]]
    html = panel.list_box.children[0].children[1].value
    assert "dfw-rl-cov" in html and "dfw-rl-acc" in html and "dfw-rl-con" in html
    assert "6%" in html  # coverage 36 / 600
    panel.threshold.value = 0.75
    panel.examples_button.click()
    shown = []  # what the panel says while the neighbours rule (and its graph) is built
    real_add = session.rules.add_neighbours
    session.rules.add_neighbours = lambda **kw: shown.append(panel.message.value) or real_add(**kw)
    panel.neighbours_button.click()
    assert "builds the pool&#x27;s neighbour graph" in shown[0] and "Added" in panel.message.value
    assert len(panel.rows) == 3
    assert session.rules.all()[1]["params"]["threshold"] == pytest.approx(0.75)
    switch = panel.list_box.children[0].children[0]
    switch.value = False
    assert session.rules.all()[0]["enabled"] is False
    panel.list_box.children[2].children[2].click()  # remove the neighbours rule
    assert len(session.rules.all()) == 2 and "Removed" in panel.message.value
    panel.undo_button.click()
    assert len(session.rules.all()) == 3 and "Undid" in panel.message.value
    assert "cover" in panel.weak_note.value
    panel.close()


def test_mistakes_are_messages(session):
    panel = RulesPanel(session)
    panel.region_button.disabled = False
    panel.region_button.click()  # no class typed
    assert "class name first" in panel.message.value and "dfw-rl-error" in panel.message.value
    panel.class_box.value = "Hat"
    panel.examples_button.click()
    assert "Unknown class" in panel.message.value and "Label tab" in panel.message.value
    assert "add_class" not in panel.message.value  # a panel user is not sent to the API
    with pytest.raises(ValueError, match=r"session\.add_class"):
        session.rules.add_examples("Hat")  # code users still are
    session.select([1, 2])
    panel.add_region("<b>Hat</b>")
    assert "&lt;b&gt;" in panel.message.value  # escaped
    assert panel.rows == []
    panel.undo()
    assert "Nothing to undo" in panel.message.value
    panel.close()


def test_function_failures_show_in_the_row(session):
    panel = RulesPanel(session)
    session.rules.add_function(lambda item: 1 / 0 if item.index < 3 else None, "Bag",
                               name="<i>bad</i>")
    panel.wait()
    html = panel.list_box.children[0].children[1].value
    assert "failed on 3 items" in html and "ZeroDivisionError" in html
    assert "&lt;i&gt;bad&lt;/i&gt;" in html
    panel.close()


def test_weak_checkbox_trains_with_weak_labels(session):
    panel = RulesPanel(session)
    session.rules.add_neighbours(k=10)
    session.rules.add_examples("Trouser", threshold=0.7)
    session.rules.add_examples("Bag", threshold=0.7)
    panel.weak_box.value = True
    assert session.rules.train_with_weak
    assert session.wait_for_fit(120)
    assert session.curve.iloc[-1]["weak"] > 0
    panel.close()


def test_map_colours_by_weak_label_and_no_rule(session):
    assert {"weak label", "no rule"} <= set(COLOR_MODES)
    codes, _palette, legend, note = point_colors(session, "weak label")
    assert (codes < 0).all() or note and "No rules" in note
    session.rules.add_region(np.flatnonzero(session.truth == "Trouser"), "Trouser")
    session.rules.add_examples("Bag", threshold=0.7)  # (label spreading would cover all)
    codes, _palette, legend, note = point_colors(session, "no rule")
    _, abstain = session.weak_labels(method="majority")
    assert note is None and legend["title"] == "no rule"
    assert len(np.unique(codes[abstain])) == 1 and len(np.unique(codes[~abstain])) == 1
    codes, _palette, legend, note = point_colors(session, "weak label")
    assert note is None and legend["title"] == "weak label"
    m = dfw.EmbeddingMap(session, layout="pca", color_by="weak label")
    assert m.color_by == "weak label"
    before = bytes(m._color_codes)
    session.rules.remove(session.rules.names[0])  # rules_changed recolours the map
    assert bytes(m._color_codes) != before
    m.close()
