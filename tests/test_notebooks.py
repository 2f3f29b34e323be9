"""The quickstart notebook runs top to bottom, offline, in a real kernel (nbclient)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.mark.slow
def test_quickstart_runs_offline(tmp_path: Path, fmnist_test_emb) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    shutil.copy(NOTEBOOKS / "quickstart.ipynb", tmp_path / "quickstart.ipynb")
    nb = nbformat.read(tmp_path / "quickstart.ipynb", as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=dict(os.environ))  # DFW_CACHE_DIR: embeddings come from the test cache

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors[0].get("evalue")
    text = "\n".join(
        "".join(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "(10000, 512)" in text                       # embeddings of the whole test split
    assert "1-NN accuracy: " in text
    nn_acc = float(text.split("1-NN accuracy: ")[1].split()[0])
    assert nn_acc > 0.7                                 # real backbone, not noise (chance 0.1)
    assert "Trained" in text                            # the Trainer cell ran a model
    assert (tmp_path / "dfw_projects" / "quickstart" / "labels.sqlite").exists()
