"""Existing labels into a Session (issue 14): class sub-folders, a DataFrame by id, a CSV
by path; unknown ids, unreadable files, empty labels skipped and reported; never
overwriting; one undo by source "import"; ``Session.from_folder`` and its project folder."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dfwidgets.data import ImageSource
from dfwidgets.session import Session

CLASSES = {"cat": 40, "dog": 200, "fox": 120}  # class -> mean grey level
PER_CLASS = 6
BAD = "dog/zz_broken.png"  # not an image at all
TRUNCATED = "fox/zz_truncated.png"  # a real PNG cut in half


def make_folder(root: Path) -> Path:
    """root/<class>/<i>.png for three classes, plus one garbage and one truncated .png."""
    rng = np.random.default_rng(0)
    for name, level in CLASSES.items():
        (root / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            arr = np.clip(rng.normal(level, 25, (12, 12, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / name / f"{i}.png")
    (root / BAD).write_bytes(b"this is not a png")
    data = (root / "fox" / "0.png").read_bytes()
    (root / TRUNCATED).write_bytes(data[: len(data) // 2])
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "photos")


def open_folder(folder: Path, **options) -> Session:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the bad files, reported in problems
        return Session.from_folder(folder, model="pixels", auto_fit=False, **options)


@pytest.fixture
def session(folder: Path):
    s = open_folder(folder)
    yield s
    s.close()


def labels_by_id(s: Session) -> dict[str, str]:
    return {str(s.ids[i]): lab for i, lab in s.labels.items()}


def truth(item_id: str) -> str:
    return item_id.split("/")[0]


N_ITEMS = len(CLASSES) * PER_CLASS + 2


# ------------------------------------------------------------------ from_folder
def test_from_folder_makes_a_hidden_project_that_is_never_read_as_images(folder: Path) -> None:
    s = open_folder(folder)
    try:
        assert s.path == folder / ".dfwidgets" and (s.path / "labels.sqlite").exists()
        assert len(s.ids) == N_ITEMS and s.classes == sorted(CLASSES)
        assert s.source.labels_from_folders and s.source.kind == "folder"
        problems = s.source.problems["index"].tolist()  # BAD; TRUNCATED once decoded
        assert int(s.indices_of([BAD])[0]) in problems
        assert s.folder_labels_available() == N_ITEMS - len(problems)
    finally:
        s.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        again = ImageSource.from_folder(folder)
    assert len(again) == N_ITEMS and again.classes == sorted(CLASSES)
    assert not any(".dfwidgets" in str(i) for i in again.ids)


def test_from_folder_reopens_its_project_with_labels_intact(folder: Path) -> None:
    s = open_folder(folder)
    report = s.import_labels("folders")
    s.label([0], "fox", source="click")  # a later click on an imported item
    before = labels_by_id(s)
    emb = s.embeddings.copy()
    s.close()
    s = open_folder(folder)
    try:
        assert s.path == folder / ".dfwidgets"
        assert labels_by_id(s) == before and len(before) == report["imported"]
        np.testing.assert_array_equal(s.embeddings, emb)
        assert s.folder_labels_available() == 0
    finally:
        s.close()


def test_from_folder_with_a_project_elsewhere_and_the_offline_backbone(folder: Path,
                                                                       tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        s = Session.from_folder(folder, project=tmp_path / "proj", auto_fit=False,
                                model="efficientnet_lite0")
    try:
        assert s.path == tmp_path / "proj" and not (folder / ".dfwidgets").exists()
        assert s.embeddings.shape[0] == N_ITEMS and s.model_name == "efficientnet_lite0"
    finally:
        s.close()
    with pytest.raises(TypeError, match="builds the source"):
        Session.from_folder(folder, source=s.source)
    with pytest.raises(FileNotFoundError):
        Session.from_folder(tmp_path / "nowhere", model="pixels")


# ------------------------------------------------------------------ folders
def test_import_from_folders_skips_unreadable_files(session: Session) -> None:
    problems = set(session.source.problems["index"].tolist())
    bad = int(session.indices_of([BAD])[0])
    assert bad in problems
    report = session.import_labels("folders")
    unreadable = sorted(session.ids[sorted(problems)].tolist())
    assert report["unreadable"] == unreadable and report["n_unreadable"] == len(unreadable)
    assert report["imported"] == N_ITEMS - len(unreadable)
    assert report["skipped_labeled"] == 0 and report["n_unknown"] == 0
    assert report["classes"] == sorted(CLASSES)
    got = labels_by_id(session)
    assert BAD not in got and all(lab == truth(i) for i, lab in got.items())
    history = session.history()
    assert set(history["source"]) == {"import"} and history["group_id"].nunique() == 1
    assert session.folder_labels_available() == 0
    again = session.import_labels("folders")
    assert again["imported"] == 0 and again["skipped_labeled"] == report["imported"]


def test_import_never_overwrites_and_undo_reverts_exactly_the_import(session: Session) -> None:
    first = int(session.indices_of(["cat/0.png"])[0])
    session.label([first], "fox", source="click")  # before: kept, not overwritten
    report = session.import_labels("folders")
    assert report["skipped_labeled"] == 1
    later = int(session.indices_of(["dog/1.png"])[0])
    session.label([later], "cat", source="click")  # after: a newer click, kept by undo
    assert session.labels[first] == "fox"
    reverted = session.undo(source="import")
    assert reverted == report["imported"]
    assert labels_by_id(session) == {"cat/0.png": "fox", "dog/1.png": "cat"}
    assert session.folder_labels_available() == report["imported"] - 1


def test_folders_refused_for_ground_truth_and_flat_folders(tmp_path: Path) -> None:
    arr = np.zeros((4, 8, 8), np.uint8)
    src = ImageSource.from_array(arr, labels=["a", "b", "a", "b"])
    assert not src.labels_from_folders and src.kind == "array"
    with Session.open(tmp_path / "p1", source=src, embeddings=np.eye(4, dtype=np.float32),
                      auto_fit=False) as s:
        assert s.folder_labels_available() == 0
        with pytest.raises(ValueError, match="ground truth"):
            s.import_labels("folders")
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        Image.fromarray(np.full((8, 8), 50 * i, np.uint8)).save(flat / f"{i}.png")
    with Session.from_folder(flat, model="pixels", auto_fit=False) as s:
        assert s.source.labels is None and s.folder_labels_available() == 0
        with pytest.raises(ValueError, match="class sub-folders"):
            s.import_labels("folders")
        assert s.path == flat / ".dfwidgets" and len(s.ids) == 3


# ------------------------------------------------------------------ tables
def test_import_dataframe_by_id(session: Session) -> None:
    ids = [i for i in session.ids.tolist() if i.startswith("cat/")]
    df = pd.DataFrame({
        "item_id": [*ids, "cat/missing.png", "nope", BAD, "dog/0.png", "dog/1.png",
                    "dog/2.png", "dog/2.png"],
        "label": ["kitten"] * len(ids) + ["kitten", "x", "dog", np.nan, "", "dog", "wolf"],
    })
    report = session.import_labels(df)
    assert report["imported"] == len(ids)
    assert report["unknown"] == ["cat/missing.png", "nope"] and report["n_unknown"] == 2
    assert report["unreadable"] == [BAD] and report["n_unreadable"] == 1
    assert report["n_empty"] == 2
    assert report["conflicting"] == ["dog/2.png"] and report["n_conflicting"] == 1
    assert report["classes"] == ["kitten"]
    assert labels_by_id(session) == dict.fromkeys(ids, "kitten")
    assert "kitten" in session.classes


def test_import_dataframe_by_id_column_with_other_names(session: Session) -> None:
    df = pd.DataFrame({"name": ["fox/1.png", "fox/2.png"], "cls": ["fox", "fox"],
                       "item_id": ["dog/0.png", "dog/1.png"]})
    report = session.import_labels(df, id_column="name", label_column="cls")
    assert report["imported"] == 2
    assert labels_by_id(session) == {"fox/1.png": "fox", "fox/2.png": "fox"}


def test_import_csv_by_path(session: Session, folder: Path, tmp_path: Path) -> None:
    table = tmp_path / "tables"
    table.mkdir()
    rows = [
        (str(folder / "dog" / "0.png"), "dog"),  # absolute
        (str(folder / "dog" / ".." / "dog" / "1.png"), "dog"),  # absolute, not normalised
        ("../photos/fox/3.png", "fox"),  # relative to the CSV's folder
        ("cat/2.png", "cat"),  # relative to the image folder
        (str(folder / "cat" / "nine.png"), "cat"),  # no such item
        (str(folder / BAD), "dog"),  # unreadable
        (str(folder / "cat" / "3.png"), ""),  # empty label
    ]
    csv = table / "labels.csv"
    pd.DataFrame(rows, columns=["file_path", "species"]).to_csv(csv, index=False)
    report = session.import_labels(csv, path_column="file_path", label_column="species")
    assert report["imported"] == 4 and report["n_empty"] == 1
    assert report["unknown"] == [str(folder / "cat" / "nine.png")]
    assert report["unreadable"] == [BAD]
    assert labels_by_id(session) == {"dog/0.png": "dog", "dog/1.png": "dog",
                                     "fox/3.png": "fox", "cat/2.png": "cat"}
    assert set(session.history()["source"]) == {"import"}
    assert session.undo(source="import") == 4 and len(session.labels) == 0


def test_import_csv_finds_a_default_path_column(session: Session, tmp_path: Path,
                                                folder: Path) -> None:
    csv = tmp_path / "l.csv"
    csv.write_text(f"path,label\n{folder / 'fox' / '4.png'},fox\n")
    assert session.import_labels(str(csv))["imported"] == 1
    assert labels_by_id(session) == {"fox/4.png": "fox"}


def test_import_errors_are_clear(session: Session, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="label_column='label' is not a column"):
        session.import_labels(pd.DataFrame({"item_id": ["cat/0.png"], "y": ["cat"]}))
    with pytest.raises(ValueError, match="id_column='key' is not a column"):
        session.import_labels(pd.DataFrame({"item_id": ["a"], "label": ["cat"]}),
                              id_column="key")
    with pytest.raises(ValueError, match="id or a path column"):
        session.import_labels(pd.DataFrame({"x": ["cat/0.png"], "label": ["cat"]}))
    with pytest.raises(ValueError, match="not both"):
        session.import_labels(pd.DataFrame({"item_id": ["a"], "path": ["b"], "label": ["c"]}),
                              id_column="item_id", path_column="path")
    with pytest.raises(ValueError, match="no rows"):
        session.import_labels(pd.DataFrame({"item_id": [], "label": []}))
    with pytest.raises(ValueError, match="No file"):
        session.import_labels(tmp_path / "missing.csv")
    with pytest.raises(TypeError, match="DataFrame or a CSV path"):
        session.import_labels(42)
    assert len(session.labels) == 0 and len(session.history()) == 0


def test_path_column_needs_a_file_source(tmp_path: Path) -> None:
    src = ImageSource.from_array(np.zeros((3, 8, 8), np.uint8))
    with Session.open(tmp_path / "p", source=src, embeddings=np.eye(3, dtype=np.float32),
                      auto_fit=False) as s:
        with pytest.raises(ValueError, match="no file paths"):
            s.import_labels(pd.DataFrame({"path": ["a.png"], "label": ["x"]}))
        report = s.import_labels(pd.DataFrame({"id": [0, 2], "label": [1, 1.0]}))
        assert report["imported"] == 0 and report["n_unknown"] == 2  # ids are "00000"...
        report = s.import_labels(pd.DataFrame({"id": s.ids[[0, 2]], "label": [1, 1.0]}))
        assert report["imported"] == 2 and set(s.labels) == {"1"}


def test_subset_of_a_folder_source_keeps_folder_labels(folder: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        src = ImageSource.from_folder(folder)
    sub = src.subset([0, 1, 2])
    assert sub.labels_from_folders and sub.kind == "folder"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        none = ImageSource.from_folder(folder, labels=None)
    assert not none.labels_from_folders
