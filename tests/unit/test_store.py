"""LabelStore on a real SQLite file: durability, concurrency, undo, classes, export/import."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from dfwidgets.store import SOURCES, UNDO_SOURCE, LabelStore

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> LabelStore:
    with LabelStore(tmp_path) as s:
        yield s


def labels_of(store: LabelStore) -> dict[str, str]:
    return dict(zip(store.current()["item_id"], store.current()["label"]))


def test_file_settings_and_labels_committed(store: LabelStore, tmp_path: Path) -> None:
    assert store.path == tmp_path / "labels.sqlite"
    v0 = store.version()
    assert store.set_labels(["a", "b"], "Shoe", source="click") == 2
    assert store.version() > v0
    # a brand-new connection (no shared cache) sees the label: it was committed
    raw = sqlite3.connect(store.path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("SELECT item_id, label FROM current_labels ORDER BY item_id").fetchall() \
        == [("a", "Shoe"), ("b", "Shoe")]
    raw.close()
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    cur = store.current()
    assert list(cur.columns) == ["item_id", "label", "source", "time", "event_id"]
    assert set(cur["source"]) == {"click"}
    assert store.classes() == ["Shoe"]


def test_bad_input_is_rejected_and_nothing_half_written(store: LabelStore) -> None:
    with pytest.raises(ValueError, match="click, bulk, search, zero-shot"):
        store.set_labels(["a"], "Shoe", source="mouse")
    with pytest.raises(TypeError, match="strings"):
        store.set_many(["a", "b"], ["Shoe", 3], source="click")
    with pytest.raises(ValueError, match="2 item ids but 1 labels"):
        store.set_many(["a", "b"], ["Shoe"], source="click")
    with pytest.raises(ValueError, match="empty"):
        store.set_labels(["a"], "  ", source="click")
    assert store.current().empty and store.history().empty and store.classes() == []


def test_unlabel_and_history(store: LabelStore) -> None:
    store.set_labels(["a"], "Shoe", source="click")
    store.set_labels(["a"], "Bag", source="click")
    store.set_labels(["a"], None, source="click")
    assert store.current().empty
    h = store.history()
    assert h["label"].tolist() == ["Shoe", "Bag", None]
    assert h["previous"].tolist() == [None, "Shoe", "Bag"]
    assert not h["undone"].any()


def test_undo_last_by_source_and_all_of_a_source(store: LabelStore) -> None:
    store.set_labels(["a", "b"], "Shoe", source="click")
    store.set_labels(["a", "b", "c"], "Bag", source="bulk")
    store.set_labels(["b"], "Coat", source="click")
    store.set_labels(["d"], "Bag", source="zero-shot")
    store.set_labels(["e"], "Bag", source="zero-shot")
    assert store.undo() == 1  # last call: e
    assert "e" not in labels_of(store)
    # undo the bulk call: a falls back to its click label, b keeps the later click, c unlabeled
    assert store.undo(source="bulk") == 3
    assert labels_of(store) == {"a": "Shoe", "b": "Coat", "d": "Bag"}
    assert store.current().set_index("item_id").loc["a", "source"] == "click"
    store.set_labels(["f"], "Bag", source="zero-shot")
    assert store.undo(source="zero-shot", all_events=True) == 2  # d and f, not e again
    assert labels_of(store) == {"a": "Shoe", "b": "Coat"}
    assert store.undo(source="bulk") == 0  # nothing left from that source
    h = store.history()
    # append-only: the original events are all still there, flagged, plus undo records
    assert len(h[h["reverts"].isna()]) == 9
    assert h[h["reverts"].isna() & h["undone"]]["source"].value_counts().to_dict() == {
        "bulk": 3, "zero-shot": 3}
    undo_rows = h[h["reverts"].notna()]
    assert set(undo_rows["item_id"]) == {"a", "b", "c", "d", "e", "f"}
    assert set(undo_rows["source"]) == {"undo"} and not undo_rows["undone"].any()
    # the undo row of item a records the change it made: Bag -> Shoe
    row_a = undo_rows[undo_rows["item_id"] == "a"].iloc[0]
    assert (row_a["previous"], row_a["label"]) == ("Bag", "Shoe")
    with pytest.raises(ValueError, match="needs a source"):
        store.undo(all_events=True)


def test_classes_add_rename_merge(store: LabelStore) -> None:
    assert store.add_class("Shirt") is True
    assert store.add_class("Shirt") is False
    store.set_labels(["a"], "T-shirt", source="click")
    store.set_labels(["b", "c"], "Top", source="bulk")
    assert store.classes() == ["Shirt", "T-shirt", "Top"]
    store.rename_class("Shirt", "Sandal")  # a class with no examples
    with pytest.raises(ValueError, match="merge_classes"):
        store.rename_class("T-shirt", "Top")
    with pytest.raises(KeyError, match="No class named 'Dress'"):
        store.rename_class("Dress", "Gown")
    assert store.merge_classes(["T-shirt", "Top"], into="Top/shirt") == 3
    assert store.classes() == ["Sandal", "Top/shirt"]
    assert set(labels_of(store).values()) == {"Top/shirt"}
    store.rename_class("Top/shirt", "Shirt")
    h = store.history()
    assert len(h) == 3 and set(h["label"]) == {"Shirt"}
    # undo after a merge restores the previous label under the merged name
    store.undo(source="bulk")
    assert labels_of(store) == {"a": "Shirt"}
    # a merged-away name can be used again for a new class
    store.add_class("Top")
    assert store.classes() == ["Sandal", "Shirt", "Top"]


def test_negatives_meta_curve(store: LabelStore) -> None:
    assert store.add_negatives(["a", "b", "a"], "Shoe", source="search") == 2
    neg = store.negatives()
    assert neg[["item_id", "label"]].values.tolist() == [["a", "Shoe"], ["b", "Shoe"]]
    assert store.remove_negatives(["a"], "Shoe") == 1
    store.set_meta("audit", {"ids": ["x", "y"], "seed": 0})
    assert store.get_meta("audit") == {"ids": ["x", "y"], "seed": 0}
    assert store.get_meta("missing", 5) == 5
    with pytest.raises(TypeError, match="JSON"):
        store.set_meta("bad", {1, 2})
    store.add_curve_point({"n_labels": 10, "accuracy": 0.5, "low": float("nan")})
    store.add_curve_point({"n_labels": 20, "accuracy": 0.7, "low": 0.6})
    c = store.curve()
    assert c["n_labels"].tolist() == [10, 20] and c["accuracy"].tolist() == [0.5, 0.7]


@pytest.mark.parametrize("fmt", ["dataframe", "csv", "json", "parquet"])
def test_export_import_round_trip(tmp_path: Path, fmt: str) -> None:
    a = LabelStore(tmp_path / "a.sqlite")
    a.set_labels(["fm/001", "fm/002"], "Ankle boot", source="click")
    a.set_labels(["fm/003"], "T-shirt/top", source="bulk")
    a.set_labels(["fm/004"], "Bag, large", source="search")  # a comma and a slash in names
    a.set_labels(["0042"], "Bag, large", source="search")  # an id that looks like a number
    if fmt == "dataframe":
        exported = a.export("dataframe")
    else:
        exported = a.export(tmp_path / f"labels.{fmt}")
        assert exported.exists()
        assert isinstance(a.export(fmt), str if fmt != "parquet" else bytes)
    b = LabelStore(tmp_path / "b.sqlite")
    b.add_class("Sneaker")
    assert b.import_labels(exported) == 5
    assert labels_of(b) == labels_of(a)
    assert set(b.current()["source"]) == {"import"}
    assert b.classes() == ["Sneaker", "Ankle boot", "T-shirt/top", "Bag, large"]
    assert b.undo(source="import") == 5 and b.current().empty


def test_import_errors_are_clear(store: LabelStore, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['label'\]"):
        store.import_labels(pd.DataFrame({"item_id": ["a"], "class": ["x"]}))
    with pytest.raises(ValueError, match=r"rows \[1\] have no label"):
        store.import_labels(pd.DataFrame({"item_id": ["a", "b"], "label": ["x", None]}))
    with pytest.raises(ValueError, match="different labels"):
        store.import_labels(pd.DataFrame({"item_id": ["a", "a"], "label": ["x", "y"]}))
    with pytest.raises(ValueError, match=".csv, .json or .parquet"):
        (tmp_path / "l.txt").write_text("a,b")
        store.import_labels(tmp_path / "l.txt")
    with pytest.raises(FileNotFoundError):
        store.import_labels(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="export format"):
        store.export(tmp_path / "out.xlsx")
    assert store.current().empty and store.classes() == []


def test_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "labels.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="not a dfwidgets label store"):
        LabelStore(bad)


def test_two_stores_on_one_file_see_each_other(tmp_path: Path) -> None:
    a, b = LabelStore(tmp_path), LabelStore(tmp_path)
    v = b.version()
    a.set_labels(["x"], "Coat", source="click")
    assert b.version() != v
    assert labels_of(b) == {"x": "Coat"}
    b.undo()
    assert labels_of(a) == {}


_WRITER = textwrap.dedent(
    """
    import sys
    from dfwidgets.store import LabelStore
    store = LabelStore(sys.argv[1])
    name, n = sys.argv[2], int(sys.argv[3])
    i = 0
    while n < 0 or i < n:
        store.set_labels([f"{name}-{i:06d}"], f"class{i % 7}", source="click")
        print(i, flush=True)  # acknowledged: set_labels returned
        i += 1
    """
)


def test_sigkill_loses_no_acknowledged_label(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path), "k", "-1"],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    acknowledged = []
    try:
        for line in proc.stdout:
            acknowledged.append(int(line))
            if len(acknowledged) >= 300:
                break
        proc.send_signal(signal.SIGKILL)  # while it is in the middle of its next writes
        proc.wait(timeout=30)
        acknowledged += [int(x) for x in proc.stdout.read().split()]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    store = LabelStore(tmp_path)
    have = labels_of(store)
    missing = [i for i in acknowledged if have.get(f"k-{i:06d}") != f"class{i % 7}"]
    assert len(acknowledged) >= 300 and missing == []
    assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_two_processes_write_at_once(tmp_path: Path) -> None:
    LabelStore(tmp_path).close()  # create the schema once
    n = 150
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), name, str(n)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
        for name in ("p", "q")
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    store = LabelStore(tmp_path)
    have = labels_of(store)
    assert len(have) == 2 * n
    assert all(have[f"{name}-{i:06d}"] == f"class{i % 7}" for name in "pq" for i in range(n))
    assert store.history()["event_id"].is_unique
    assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("source", SOURCES)
def test_every_source_is_written_and_kept_in_history(store: LabelStore, source: str) -> None:
    assert store.set_labels(["a"], "Shoe", source=source) == 1
    assert store.current()["source"].tolist() == [source]
    assert store.history()["source"].tolist() == [source]
    assert store.add_negatives(["b"], "Bag", source=source) == 1
    assert store.negatives()["source"].tolist() == [source]
    assert store.undo(source=source) == 1 and store.current().empty


@pytest.mark.parametrize("bad", [UNDO_SOURCE, "mouse", "Click", ""])
def test_unknown_source_is_refused_naming_the_allowed_ones(store: LabelStore, bad: str) -> None:
    table = pd.DataFrame({"item_id": ["a"], "label": ["Shoe"]})
    writes = {
        "set_labels": lambda: store.set_labels(["a"], "Shoe", source=bad),
        "set_many": lambda: store.set_many(["a"], ["Shoe"], source=bad),
        "add_negatives": lambda: store.add_negatives(["a"], "Shoe", source=bad),
        "import_labels": lambda: store.import_labels(table, source=bad),
        "undo": lambda: store.undo(source=bad),
    }
    for name, write in writes.items():
        with pytest.raises(ValueError, match="Unknown label source") as err:
            write()
        assert ", ".join(SOURCES) in str(err.value), name
    assert store.history().empty and store.negatives().empty and store.classes() == []
