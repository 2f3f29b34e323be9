"""The look in front of a class (no browser, no Session): short class names on the
chart axes with the full names kept for hover and clicks, a confusion matrix that grows
with the classes, legends that never sit on an axis title, no raw "nan" in the rules."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dfwidgets.widgets.plot_style import new_figure, short_names
from dfwidgets.widgets.rules_panel import row_html
from dfwidgets.widgets.trainer_plots import TrainerPlots, confusion_height

FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot"]


def test_short_names_are_short_distinct_and_keep_clashes_whole():
    assert short_names(FASHION) == ["T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle"]
    # two names with the same first word: both stay whole (never two equal ticks)
    assert short_names(["golden retriever", "golden eagle", "cat"]) == [
        "golden retriever", "golden eagle", "cat"]
    assert short_names(["ab cdefghijkl"]) == ["ab cdef…"]


def test_confusion_ticks_are_short_but_data_hover_and_clicks_use_full_names():
    cells = []
    plots = TrainerPlots(on_cell=lambda t, p: cells.append((t, p)))
    k = len(FASHION)
    matrix = np.arange(k * k).reshape(k, k)
    per = pd.DataFrame({"class": FASHION, "accuracy": np.linspace(0.3, 0.9, k),
                        "n": np.full(k, 20)})
    plots.draw_confusion({"per_class": per, "classes": FASHION, "matrix": matrix,
                          "kind": "ground truth", "n": 200})
    fig = plots.charts.figure("confusion")
    heat, layout = fig["data"][0], fig["layout"]
    assert heat["x"] == FASHION and heat["y"] == FASHION  # clicks send these back
    for axis in ("xaxis", "yaxis"):
        assert layout[axis]["tickvals"] == FASHION
        assert layout[axis]["ticktext"] == short_names(FASHION)
    assert "%{x}" in heat["hovertemplate"] and "%{y}" in heat["hovertemplate"]
    assert layout["height"] == confusion_height(k) > 360  # ~30 px per class row
    bars = plots.charts.figure("classes")["layout"]["xaxis"]
    assert bars["tickvals"] == FASHION and bars["ticktext"] == short_names(FASHION)
    plots._clicked("confusion", "Ankle boot", "T-shirt/top")
    assert cells == [("T-shirt/top", "Ankle boot")]
    assert confusion_height(2) == 300 and confusion_height(100) == 640


def test_legends_sit_at_the_figure_bottom_under_the_axis_title():
    legend = new_figure("t", xaxis_title="labels").layout.legend
    assert legend.yref == "container" and legend.y == 0 and legend.yanchor == "bottom"


def test_a_rule_without_a_class_says_so_in_words():
    row = pd.Series({"rule": "like examples of Bag (>= 0.8)", "label": np.nan,
                     "kind": "neighbours", "n_audit": 0, "n_labeled": 90,
                     "accuracy_audit": np.nan, "accuracy_labeled": 0.9, "status": "ok",
                     "coverage": 1.0, "conflicts": 0.0})
    text = row_html(row)
    assert "nan" not in text.lower() and "nearby hand labels" in text and "≥ 0.8" in text
    named = row.copy()
    named["label"] = "Bag"
    assert "→ Bag" in row_html(named)


def test_when_to_stop_shows_a_range_only_when_it_has_two_ends():
    from dfwidgets.widgets.trainer_plots import stop_text

    base = {"target": 0.9, "status": "ok", "asymptote": 0.937, "asymptote_low": 0.937,
            "asymptote_high": 0.937, "estimate": 16537.0, "more": 16197}
    one = stop_text({**base, "low": 16537.0, "high": 16537.0})
    assert "range" not in one.split(";")[0] and "16,537" in one
    assert "too few label counts yet" in one
    two = stop_text({**base, "low": 9000.0, "high": 30000.0})
    assert "(80% range 9,000-30,000)" in two
    unbounded = stop_text({**base, "low": 9000.0, "high": float("inf")})
    assert "9,000-unbounded" in unbounded
