"""Whether fine-tuning is likely to pay at a label count, said before the user waits.

Evidence, most specific first: the project's own recorded fine-tuning runs (held-out
accuracy of the fine-tuned model vs the probe at the label count of the run), then the
measured Fashion-MNIST curve of ``benchmarks/train.py`` (:data:`REFERENCE`, test accuracy
of probe and cached fine-tune, mean over seeds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["REFERENCE", "finetune_advice", "pays_from"]

# (labels, probe test accuracy, fine-tuned test accuracy) on Fashion-MNIST, from
# `benchmarks/train.py --labels 500 2000 10000 --seeds 3 --seeds-large 3` (stop 26, RESULTS.md
# "Trainer: probe vs fine-tune": mean of seeds 0-2; 2,000
# random test items;
# efficientnet_lite0 at 64 px, head on the pooled embedding + the stage-2 and stage-3 maps,
# last block trained on cached activations, head refitted after each epoch). 200 is stop 24's
# seed-0 run (not rerun). The fine-tuned column is the FineTuner's returned
# model; most of its gain over the probe is the epoch-0 head on the frozen maps (training the
# block added +0.27 / +0.25 / +0.10 points at 500 / 2,000 / 10,000, within seed noise).
REFERENCE: tuple[tuple[int, float, float], ...] = (
    (200, 0.7635, 0.8075), (500, 0.8048, 0.8418), (2000, 0.8465, 0.8840),
    (10000, 0.8747, 0.9075))

MARGIN = 0.005  # a run "pays" when fine-tuning beats the probe by more than this


def pays_from(points: Sequence[tuple[int, float, float]], *, margin: float = MARGIN
              ) -> int | None:
    """The smallest label count from which every measured point (labels, probe, tuned)
    has fine-tuning ahead of the probe by more than ``margin``; None when it never pays."""
    pts = sorted((int(n), float(p), float(t)) for n, p, t in points)
    start = None
    for n, p, t in pts:
        if t - p > margin:
            start = n if start is None else start
        else:
            start = None
    return start


def _own_points(runs: Sequence[dict[str, Any]]) -> list[tuple[int, float, float]]:
    out = []
    for r in runs:
        p, t = r.get("held_out_probe"), r.get("held_out_finetune")
        if r.get("cancelled") or p is None or t is None or math.isnan(float(t)):
            continue
        out.append((int(r["n_labels"]), float(p), float(t)))
    return out


def finetune_advice(n_labels: int, runs: Sequence[dict[str, Any]] = (), *,
                    reference: Sequence[tuple[int, float, float]] | None = None) -> dict[str, Any]:
    """Advice at ``n_labels``: dict(pays (bool | None: unknown), from_labels (int | None),
    source ("project" / "benchmark" / None), text). Never blocks fine-tuning: the Trainer
    keeps the probe anyway when fine-tuning does not win on held-out labels."""
    ref = list(REFERENCE if reference is None else reference)
    own = _own_points(runs)
    keep = " You can still try: the probe is kept unless fine-tuning beats it on held-out labels."
    for source, pts in (("project", own), ("benchmark", ref)):
        if not pts:
            continue
        start = pays_from(pts)
        top = max(n for n, _, _ in pts)
        where = "in this project" if source == "project" else "on Fashion-MNIST (benchmark)"
        if start is None:
            text = (f"With {n_labels} labels: fine-tuning has not beaten the linear probe "
                    f"{where} at any measured label count (up to {top:,}).{keep}")
            return {"pays": False if n_labels <= top else None, "from_labels": None,
                    "source": source, "text": text}
        low = min(pts)
        if n_labels < low[0] and start == low[0]:  # below the curve: say what was measured
            text = (f"With {n_labels} labels: not measured {where} below {low[0]:,} labels, "
                    f"where fine-tuning already beat the probe ({low[2]:.1%} vs "
                    f"{low[1]:.1%}).{keep}")
            return {"pays": None, "from_labels": start, "source": source, "text": text}
        if n_labels < start:
            text = (f"With {n_labels} labels fine-tuning has not beaten the probe {where}; "
                    f"it starts to pay around {start:,} labels.{keep}")
            return {"pays": False, "from_labels": start, "source": source, "text": text}
        best = min(pts, key=lambda q: abs(q[0] - n_labels))
        text = (f"With {n_labels} labels fine-tuning is expected to pay: {where} it beat the "
                f"probe from about {start:,} labels ({best[2]:.1%} vs {best[1]:.1%} at "
                f"{best[0]:,}).")
        return {"pays": True, "from_labels": start, "source": source, "text": text}
    return {"pays": None, "from_labels": None, "source": None,
            "text": "No measurement yet says whether fine-tuning pays here." + keep}
