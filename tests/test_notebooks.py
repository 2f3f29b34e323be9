"""Every notebook in notebooks/ runs top to bottom, offline, in a real kernel (nbclient).

Each one runs in a temporary copy (its project folders land there) with this process's
environment, so ``DFW_CACHE_DIR`` points the kernel at the test cache (tests/conftest.py):
embeddings come from it. A new notebook is picked up by the parametrisation by itself;
the notebooks listed in ``CHECKS`` are also checked for what they show (numbers read from
their printed output).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


class Ran:
    """An executed notebook: its outputs as text, numbers read from them, rich outputs."""

    def __init__(self, nb: Any, folder: Path, seconds: float) -> None:
        self.nb, self.folder, self.seconds = nb, folder, seconds
        self.outputs = [o for c in nb.cells if c.cell_type == "code"
                        for o in c.get("outputs", [])]
        self.text = "\n".join(
            "".join(o.get("text", "")) if o.get("output_type") == "stream"
            else str(o.get("data", {}).get("text/plain", "")) for o in self.outputs)

    def numbers(self, pattern: str) -> tuple[float, ...]:
        """The groups of the first match of ``pattern`` in the output text, as floats."""
        found = re.search(pattern, self.text)
        assert found, f"no output matches {pattern!r}:\n{self.text[-3000:]}"
        return tuple(float(g.replace(",", "")) for g in found.groups())

    def number(self, pattern: str) -> float:
        return self.numbers(pattern)[0]

    def rich(self, mime: str) -> list[Any]:
        """Every output of type ``mime`` (e.g. widgets, plotly figures)."""
        return [o["data"][mime] for o in self.outputs if mime in o.get("data", {})]

    def widgets(self) -> list[str]:
        """text/plain of every displayed widget (e.g. "Workbench(children=...")."""
        return [str(o["data"].get("text/plain", "")) for o in self.outputs
                if WIDGET_MIME in o.get("data", {})]


def execute(path: Path, folder: Path) -> Ran:
    """Run a copy of notebook ``path`` in ``folder`` (its working directory)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    shutil.copy(path, folder / path.name)
    nb = nbformat.read(folder / path.name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(folder)}})
    start = time.perf_counter()
    client.execute(env=dict(os.environ))  # DFW_CACHE_DIR: embeddings come from the test cache
    return Ran(nb, folder, time.perf_counter() - start)


# ---------------------------------------------------------------------- per-notebook checks
def check_quickstart(ran: Ran) -> None:
    assert "(10000, 512)" in ran.text                      # embeddings of the whole test split
    assert ran.number(r"1-NN accuracy: ([\d.]+)") > 0.7    # real backbone (chance 0.1)
    assert any(w.startswith("Workbench(") for w in ran.widgets())
    # a Python selection reaches the Labeler: its queue asks only inside it
    assert ran.number(r"selected: (\d+) items") == 201
    assert "inside the selection: True" in ran.text
    assert ran.number(r"(\d+) search results outlined on the map") == 200
    # import from a DataFrame: every row but the unknown id is imported or already labeled
    imported, skipped = ran.numbers(r"imported (\d+), already labeled (\d+)")
    assert imported > 250 and imported + skipped == 300
    assert "unknown ids: ['fashion_mnist/test/99999']" in ran.text
    n, est, low, high = ran.numbers(r"(\d+) labels; estimated accuracy ([\d.]+)% "
                                    r"\(95% interval ([\d.]+)%-([\d.]+)%\)")
    assert n >= 40 + imported and low <= est <= high
    assert "Next step: " in ran.text
    assert ran.number(r"Trained a linear probe on (\d+) labels") >= imported
    true = ran.number(r"True accuracy on [\d,]+ held-out images: ([\d.]+)")
    assert true > 0.7                                       # ~300 labels on good features
    assert abs(est / 100 - true) < 0.1                      # the header's estimate is honest
    assert (ran.folder / "dfw_projects" / "quickstart" / "labels.sqlite").exists()


def check_teaching(ran: Ran) -> None:
    active = ran.number(r"Student A \(the model chose\): ([\d.]+)% correct")
    random = ran.number(r"Student B \(random\): +([\d.]+)% correct")
    assert random > 50                  # both really learn (chance: 10%)
    assert active >= random - 1.0       # the Session's own choices at least keep up
    assert re.search(r"won by [\d.]+ points|A draw this time", ran.text)  # said in words
    (figure,) = ran.rich(PLOTLY_MIME)   # accuracy vs labels, both students
    traces = figure["data"]
    assert [t["name"] for t in traces] == ["Student A: the model chooses", "Student B: random"]
    for trace, printed in zip(traces, (active, random)):
        assert list(trace["x"]) == list(range(10, 101, 10))
        assert abs(trace["y"][-1] - printed) < 0.06         # the sentence is the chart's end
    assert len(ran.widgets()) >= 1      # the live part at the end


def check_embedding_map(ran: Ran) -> None:
    assert any(w.startswith("<dfwidgets.widgets.embedding_map.EmbeddingMap")
               for w in ran.widgets())
    selected, written, right = ran.numbers(r"(\d+) selected; (\d+) labeled 'Ankle boot' in "
                                           r"one go \((\d+) of them really are\)")
    assert selected == written == 50 and right >= 40        # look-alikes share the class
    assert re.search(r"linear probe on \d+ labels", ran.text)


def check_visual_search(ran: Ran) -> None:
    written, accuracy = ran.numbers(r"(\d+) labels written; accuracy of the committed ones: "
                                    r"([\d.]+)")
    assert written > 20 and accuracy > 0.8                  # one-shot at confidence 0.9
    assert re.search(r"search\s+20", ran.text)              # accept(top=20) -> source search
    assert "CLIP" in ran.text                               # zero-shot explains what it needs


def check_active_labeling(ran: Ran) -> None:
    n, audit = ran.numbers(r"(\d+) labels, (\d+) of them audit items")
    assert n == 100 and 5 <= audit <= 20                    # ~10% random audit share
    est, low, high = ran.numbers(r"Estimated accuracy: ([\d.]+) \(95% interval "
                                 r"([\d.]+)-([\d.]+)")
    true = ran.number(r"True accuracy on [\d,]+ held-out items: ([\d.]+)")
    assert low <= est <= high and true > 0.6
    assert abs(est - true) < 0.1                            # the estimate is honest
    assert ran.number(r"(\d+) labels restored") == 100      # reopened from the folder


def check_fine_tuning(ran: Ran) -> None:
    assert ran.number(r"Trained a linear probe on (\d+) labels") >= 100
    assert re.search(r"kept the (linear probe|fine-tuned model)", ran.text)  # the verdict
    assert ran.number(r"Exported model, 200 test images: ([\d.]+) correct") > 0.5
    assert ran.number(r"(\d+) predictions") == 3000     # every item of the session
    assert (ran.folder / "fashion_classifier.safetensors").exists()


CHECKS: dict[str, Callable[[Ran], None]] = {
    "quickstart": check_quickstart,
    "teaching_label_100": check_teaching,
    "embedding_map": check_embedding_map,
    "visual_search": check_visual_search,
    "active_labeling": check_active_labeling,
    "fine_tuning": check_fine_tuning,
}


# ---------------------------------------------------------------------- tests
def test_notebooks_found() -> None:
    assert {p.stem for p in NOTEBOOKS} >= set(CHECKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_clean_and_opens_without_a_kernel_picker(path: Path) -> None:
    """JupyterLab opens a notebook without ``metadata.kernelspec`` with a kernel-picker
    dialog; notebooks are stored without outputs."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    spec = nb.get("metadata", {}).get("kernelspec", {})
    assert spec.get("name") == "python3" and spec.get("language") == "python", spec
    assert spec.get("display_name")
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and not any(c.get("outputs") or c.get("execution_count") for c in code)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_offline(path: Path, tmp_path: Path, output_dir: Path,
                               fmnist_test_emb, fmnist_train_emb) -> None:
    ran = execute(path, tmp_path)
    errors = [o for o in ran.outputs if o.get("output_type") == "error"]
    assert not errors, f"{errors[0].get('ename')}: {errors[0].get('evalue')}"
    times = output_dir / "notebook_times.json"
    record = json.loads(times.read_text()) if times.exists() else {}
    record[path.stem] = round(ran.seconds, 1)
    times.write_text(json.dumps(record, indent=1, sort_keys=True))
    check = CHECKS.get(path.stem)
    if check is not None:
        check(ran)
