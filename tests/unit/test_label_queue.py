"""LabelQueue (headless): filling, answers committed first, skip / undo, reorder after a
model update without repeats. A real Session over 600 Fashion-MNIST test images with
efficientnet_lite0 embeddings and a real SQLite store."""

from __future__ import annotations

import numpy as np
import pytest

from dfwidgets.label_queue import LabelQueue
from dfwidgets.store import LabelStore

N = 600


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture()
def session(fmnist_session):
    return fmnist_session(N)


def _truth(session, i: int) -> str:
    return session.source.classes[int(session.source.labels[i])]


def _label_true(queue: LabelQueue, n: int) -> list[int]:
    done = []
    for _ in range(n):
        i = queue.current
        queue.answer([i], _truth(queue.session, i))
        queue.fill()
        done.append(i)
    return done


def test_fill_uses_cold_start_then_keeps_ahead_items(session):
    q = LabelQueue(session, strategy="margin", cold_start="typiclust", batch=4, ahead=9)
    assert q.strategy_in_use() == "typiclust"  # no model yet
    added = q.fill()
    assert len(added) == len(set(added)) == 9 + 4
    assert q.items == added and q.current == added[0]
    assert all(0 <= i < N for i in added)
    assert q.fill() == []  # already full
    for i in added[:4]:
        q.skip([i])
    assert q.fill() == []  # 9 left: no call to the Session yet
    q.skip([added[4]])
    assert len(q.fill()) == 1 + 4 and len(q.items) == 13


def test_answer_writes_store_before_leaving_queue(session, tmp_path):
    q = LabelQueue(session, batch=8, ahead=9)
    q.fill()
    first = q.current
    q.answer([first], _truth(session, first))
    assert first not in q.items
    # another connection to the same SQLite file sees the label at once
    cur = LabelStore(tmp_path / "proj" / "labels.sqlite").current()
    row = cur[cur["item_id"] == str(session.ids[first])]
    assert row["label"].tolist() == [_truth(session, first)]
    assert row["source"].tolist() == ["click"]


def test_failed_commit_keeps_the_item_queued(session):
    q = LabelQueue(session, batch=8, ahead=9)
    q.fill()
    before = q.items
    with pytest.raises(ValueError):
        q.answer([before[0]], _truth(session, before[0]), source="not-a-source")
    assert q.items == before
    assert int((session.label_array() >= 0).sum()) == 0
    with pytest.raises(IndexError, match="out of range"):
        q.answer([N + 5], "Trouser")


def test_skip_and_undo_restore_order_and_store(session):
    q = LabelQueue(session, batch=8, ahead=9)
    q.fill()
    a, b = q.items[:2]
    q.answer([a], _truth(session, a))
    q.skip([b])
    assert q.items[0] not in (a, b)
    assert q.undo() == [b]  # the skip first
    assert q.current == b
    assert q.undo() == [a]  # then the label, reverted in the store
    assert q.items[:2] == [a, b]
    assert session.label_array()[a] == -1
    assert q.undo() == []


def test_undo_refuses_to_revert_a_label_made_elsewhere(session):
    q = LabelQueue(session, batch=8, ahead=9)
    q.fill()
    a = q.current
    q.answer([a], _truth(session, a))
    other = next(i for i in range(N) if i not in q.items and i != a)
    session.label([other], _truth(session, other), source="click")  # e.g. another widget
    with pytest.raises(RuntimeError, match="made elsewhere"):
        q.undo()
    assert session.label_array()[other] >= 0 and session.label_array()[a] >= 0


def test_reorder_after_model_update_keeps_front_and_never_repeats(session):
    q = LabelQueue(session, strategy="margin", batch=8, ahead=12, hold=2)
    q.fill()
    answered = _label_true(q, 30)
    q.skip([q.current])
    skipped = set(q._skipped)
    front = q.items[:2]
    session.fit()
    assert session.probs_ is not None and q.strategy_in_use() == "margin"
    new = q.reorder()
    assert new[:2] == front
    assert len(new) >= 12 and len(set(new)) == len(new)
    assert not set(new) & (set(answered) | skipped)
    # the rest follows the model's margin: lower margins than a random unlabeled item
    probs = np.sort(session.probs_, axis=1)
    margin = probs[:, -1] - probs[:, -2]
    unlabeled = np.flatnonzero(session.label_array() < 0)
    assert np.median(margin[new[2:]]) < np.median(margin[unlabeled])


def test_reorder_keeps_what_is_on_stage_when_answers_arrive_during_the_fetch(session):
    """A fast person answers while the new ranking is computed: the items the page shows
    next (the queue's front after those answers) must not be swapped for new ones."""
    q = LabelQueue(session, strategy="margin", batch=8, ahead=12, hold=3)
    q.fill()
    _label_true(q, 30)
    session.fit()
    fetch = q._fetch

    def answer_three_then_fetch(k, exclusions):  # answers land while next_batch runs
        for _ in range(3):
            i = q.current
            q.answer([i], _truth(session, i))
        return fetch(k, exclusions)

    q._fetch = answer_three_then_fetch
    before = q.items  # front [a, b, c] answered during the fetch; d, e, f are on the page next
    new = q.reorder()
    assert new[:3] == before[3:6]
    assert not set(new) & set(before[:3]) and len(set(new)) == len(new)


def test_exhausted_queue_offers_skipped_items_again(session):
    src = session.source
    small = src.subset(np.arange(12))
    import dfwidgets as dfw

    s = dfw.Session.open(session.path.parent / "small", source=small,
                         embeddings=session.embeddings[:12], auto_fit=False)
    q = LabelQueue(s, strategy="random", cold_start="random", batch=4, ahead=4)
    q.fill()
    s.label_many(np.arange(10), [small.classes[int(y)] for y in small.labels[:10]],
                 source="bulk")
    q.drop_labeled()
    assert sorted(q.items + q.fill()) == [10, 11]  # all that is left
    q.skip(q.items)
    assert q.items == []
    assert sorted(q.fill()) == [10, 11]  # nothing else left: skipped ones come back
    q.answer([10, 11], small.classes[0])
    assert q.fill() == [] and q.current is None
