"""Data issues seen where the user works (issue 19): the map's "issue" colours and the
Workbench header's count of open issues, on a Session with an exact duplicate."""

from __future__ import annotations

import numpy as np
import pytest

from dfwidgets.widgets.embedding_map_colors import COLOR_MODES, point_colors
from dfwidgets.widgets.workbench_header import header_html

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def session(tmp_path, fmnist_test, fmnist_test_emb):
    from dfwidgets.data.source import ImageSource
    from dfwidgets.session import Session

    arr = np.asarray(fmnist_test.array[:150])
    source = ImageSource.from_array(np.concatenate([arr, arr[[7]]]))
    s = Session.open(tmp_path / "p", source=source, auto_fit=False,
                     embeddings=np.concatenate([fmnist_test_emb[:150], fmnist_test_emb[[7]]]))
    yield s
    s.close()


def test_issue_colours_and_header_count(session):
    s = session
    assert "issue" in COLOR_MODES
    codes, _palette, legend, note = point_colors(s, "issue")
    assert note and "find_issues" in note and len(set(codes.tolist())) == 1  # all "no issue"
    grey = codes[0]
    assert "open issues" not in header_html(s.status())
    s.find_issues()
    codes, _palette, legend, note = point_colors(s, "issue")
    assert note is None
    assert codes[7] == codes[150] != grey  # "exact_duplicate", the first kind
    assert "exact_duplicate" in str(legend)
    n_open = s.status()["n_issues"]
    assert n_open >= 2
    assert f"<b>{n_open}</b> open issues" in header_html(s.status())
    s.exclude([150], reason="duplicate")
    assert s.status()["n_issues"] == n_open - 2  # the group is resolved: both leave
    assert point_colors(s, "issue")[0][150] == grey


def test_review_mode_says_a_failed_search(session, monkeypatch):
    import dfwidgets as dfw

    s = session
    names = ["a", "b"]
    s.label_many(np.arange(40), [names[i % 2] for i in range(40)], source="import")

    def broken() -> None:
        raise RuntimeError("index file is corrupt")

    monkeypatch.setattr(s, "label_issues", broken)
    lab = dfw.Labeler(s, mode="review")
    try:
        assert lab.message_level == "error"
        assert "failed" in lab.message and "index file is corrupt" in lab.message
        assert "No suspected" not in lab.message
        assert s.issues.wait(120)  # review mode also started the data-issue search
    finally:
        lab.close()


def _action(lab, **content) -> None:
    """What lib/labeler_issues.js sends for a button of the report's review."""
    lab._on_msg(lab, {"type": "issue_action", **content}, [])


def test_review_mode_walks_a_duplicate_group(session):
    import dfwidgets as dfw

    s = session
    s.label_many([150], ["a"], source="import")  # the labeled copy is the one to keep
    lab = dfw.Labeler(s, mode="review")
    try:
        assert s.issues.wait(120)
        entries = lab.issue_entries
        dup = [e for e in entries if e["kind"] == "exact_duplicate"]
        assert len(dup) == 1 and sorted(dup[0]["items"]) == [7, 150]
        entry = dup[0]
        assert entry["keep"] == 150 and entry["items"][0] == 150  # shown first, side by side
        assert lab.issue_total >= 1 and all(e["items"] for e in entries)
        assert all(len(e["neighbours"]) == 5 for e in entries if e["kind"] == "outlier")
        # facts of the group's items were sent, so the page can fetch and caption them
        _action(lab, action="keep", key=entry["key"], index=42)  # not in the group
        assert lab.message_level == "error" and "not part of" in lab.message
        assert not s.excluded_mask().any()
        _action(lab, action="shred", key=entry["key"], index=7)
        assert "Unknown review action" in lab.message
        _action(lab, action="keep", key=entry["key"], index=7)  # the user keeps the other
        mask = s.excluded_mask()
        assert mask[150] and not mask[7] and mask.sum() == 1
        assert entry["key"] not in [e["key"] for e in lab.issue_entries]
        assert lab.message == ""
        assert s.undo_exclude(source="review") == 1
        assert not s.excluded_mask().any()
        assert entry["key"] in [e["key"] for e in lab.issue_entries]  # the group is back
        _action(lab, action="exclude", key=entry["key"], index=7)
        assert s.excluded_mask()[7]
        s.undo_exclude(source="review")
        _action(lab, action="relabel", key=entry["key"], index=7, label="b")
        assert "Unknown class 'b'" in lab.message and s.label_array()[7] < 0
        s.add_class("b")
        _action(lab, action="relabel", key=entry["key"], index=7, label="b")
        assert s.classes[s.label_array()[7]] == "b"
    finally:
        lab.close()
