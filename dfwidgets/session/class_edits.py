"""Renaming and merging classes: the store, the model's columns and the class examples
change together, before ``"classes_changed"`` goes out (one write of the label cache)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .session import Session

__all__ = ["merge_classes", "rename_class"]


def rename_class(session: Session, old: str, new: str) -> None:
    """Rename a class everywhere (labels, history, model columns, class examples)."""
    s = session

    def rename(ids: list[str]) -> int:
        s.store.rename_class(old, new)
        s._fit.rename_class(old, new)
        s.examples.rename(old, new)  # before "classes_changed" goes out
        return 0

    s._labels.write(None, rename)


def merge_classes(session: Session, names: Sequence[str], into: str) -> int:
    """Merge classes into one (history and class examples kept); returns items relabeled."""
    s = session
    names = list(names)

    def merge(ids: list[str]) -> int:
        moved = s.store.merge_classes(names, into)
        s.examples.merge(names, into)  # before "classes_changed" goes out
        return moved

    return s._labels.write(None, merge)
