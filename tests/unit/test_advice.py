"""learn.advice.next_step: one sentence per situation, with the numbers and class names."""

from __future__ import annotations

import numpy as np
import pytest

from dfwidgets.learn.advice import FLAT_WINDOW, MIN_PER_CLASS, next_step

TEN = {c: 20 for c in ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                       "Sneaker", "Bag", "Boot"]}


def test_a_failed_fit_comes_first() -> None:
    text = next_step(TEN, n_items=1000, fit_error="ValueError: " + "x" * 300,
                     folder_labels=50)
    assert text.startswith("The last model fit failed: ValueError: xxx")
    assert "..." in text and len(text) < 200


def test_folder_labels_waiting() -> None:
    assert next_step({}, n_items=60_000, folder_labels=60_000) == (
        "Import the 60,000 labels from the class sub-folders (the Import button in the Workbench header).")
    assert "the 1 label from" in next_step({}, n_items=9, folder_labels=1)


def test_no_classes_and_one_class() -> None:
    assert next_step({}, n_items=10) == (
        "Name your classes: add at least two (type a name in Label or Search).")
    text = next_step({"cat": 3}, n_items=10)
    assert text.startswith("Name a second class: only 'cat' so far")


def test_no_labels() -> None:
    text = next_step({"cat": 0, "dog": 0, "fox": 0}, n_items=10)
    assert text.startswith("No labels yet: give each of the 3 classes one example")


def test_classes_with_too_few_labels_are_named_fewest_first() -> None:
    counts = {"T-shirt": 9, "Coat": 2, "Shirt": 1, "Bag": 0}
    assert next_step(counts, n_items=100) == (
        f"3 classes have fewer than {MIN_PER_CLASS} labels: Bag 0, Shirt 1, Coat 2 - "
        "label them (Search: one example each).")
    assert next_step({"a": 7, "b": 4}, n_items=100).startswith(
        "1 class has fewer than 5 labels: b 4 - label it")
    many = {f"c{i}": i % 3 for i in range(7)}
    assert "7 classes have" in next_step(many, n_items=100)
    assert "and 3 more" in next_step(many, n_items=100)
    assert "fewer than 2 labels" in next_step({"a": 1, "b": 9}, n_items=100, min_per_class=2)


def test_everything_labeled() -> None:
    assert next_step({"a": 600, "b": 400}, n_items=1000) == (
        "All 1,000 items are labeled: train the final model (Train tab) and export it.")


def test_no_curve_yet() -> None:
    text = next_step(TEN, n_items=1000)
    assert text == ("Keep labeling the uncertain items (Label tab); the accuracy shows once "
                    "a model is trained.")
    nan = next_step(TEN, n_items=1000, curve_labels=[50], curve_accuracy=[np.nan])
    assert nan == text


def test_one_curve_point() -> None:
    assert next_step(TEN, n_items=1000, curve_labels=[200], curve_accuracy=[0.71]) == (
        "Keep labeling the uncertain items (Label tab): accuracy 71% at 200 labels.")


def test_rising_over_a_short_curve() -> None:
    text = next_step(TEN, n_items=5000, curve_labels=[100, 150, 200],
                     curve_accuracy=[0.70, 0.72, 0.74])
    assert text == ("Keep labeling the uncertain items (Label tab): accuracy is still rising "
                    "(+4 points over the last 100 labels, 74% now).")


def test_rising_over_the_window_interpolates_the_start() -> None:
    # 400 -> 600 labels: 0.75 (interpolated between 300 and 500) -> 0.80 = +5 points
    text = next_step(TEN, n_items=5000, curve_labels=[300, 500, 600],
                     curve_accuracy=[0.70, 0.80, 0.80])
    assert "(+5 points over the last 200 labels, 80% now)" in text


def test_flat_for_the_last_200_labels() -> None:
    text = next_step(TEN, n_items=5000, curve_labels=[200, 300, 400, 500],
                     curve_accuracy=[0.60, 0.835, 0.84, 0.842])
    assert text == (f"Accuracy has been flat for the last {FLAT_WINDOW} labels (84%): try "
                    "fine-tuning, or stop here.")


def test_a_short_curve_is_never_called_flat() -> None:
    text = next_step(TEN, n_items=5000, curve_labels=[200, 300], curve_accuracy=[0.8, 0.8])
    assert text.startswith("Keep labeling") and "not rising yet (+0.0 points over the last 100" \
        in text


def test_falling_accuracy_points_at_mistakes() -> None:
    text = next_step(TEN, n_items=5000, curve_labels=[100, 300], curve_accuracy=[0.85, 0.80])
    assert text.startswith("Accuracy fell 5 points over the last 200 labels (80% now)")
    assert "mistakes" in text


def test_curve_points_in_any_order_and_small_gains() -> None:
    text = next_step(TEN, n_items=5000, curve_labels=[300, 100],
                     curve_accuracy=[0.815, 0.80])
    assert "+1.5 points over the last 200 labels" in text


def test_mismatched_curve_is_an_error() -> None:
    with pytest.raises(ValueError, match="must match"):
        next_step(TEN, n_items=10, curve_labels=[1, 2], curve_accuracy=[0.5])
