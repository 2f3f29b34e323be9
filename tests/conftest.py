"""Shared test settings: a repository-local cache so embeddings are computed once per run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("DFW_CACHE_DIR", str(REPO / ".dfw_cache"))
OUTPUT = REPO / "tests" / "_output"


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """Folder for artefacts a test wants a human to look at (screenshots, plots)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT
