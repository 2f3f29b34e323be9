"""A kernel killed (SIGKILL) while a data-issue search and a weak-label fit run in the
background: the labels, rules and exclusions given before are all in the project when it
is reopened, and the project works (a new issue search, a new fit). A real second Python
process over a real SQLite project (Fashion-MNIST test images, offline-backbone embeddings)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dfwidgets.session import Session

REPO = Path(__file__).resolve().parents[2]
N = 600

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def test_kill_during_background_work_loses_nothing(fmnist_session):
    s = fmnist_session(N)
    truth = np.asarray(s.source.classes, dtype=object)[s.source.labels[:N]]
    hand = np.arange(0, 200, 2)
    s.label_many(hand, list(truth[hand]), source="click")
    path = str(s.path)
    s.close()
    script = textwrap.dedent(
        f"""
        import os, signal
        import numpy as np
        from dfwidgets.session import Session
        s = Session.open({path!r}, auto_fit=False)
        s.rules.add_region(np.arange(300, 340), {str(truth[300])!r}, name="a region")
        s.rules.add_neighbours(k=10)
        s.exclude([500, 501], reason="duplicate")
        s.label([202], {str(truth[202])!r}, source="click")
        s.find_issues(background=True)
        s.fit(background=True, weak=True)
        print("working", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # the kernel dies with both still running
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=300,
                          capture_output=True, text=True, check=False)  # it must die
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert "working" in proc.stdout

    s2 = Session.open(path, auto_fit=False)
    try:
        labels = s2.label_array()
        assert int((labels >= 0).sum()) == len(hand) + 1  # the hand labels and the last one
        assert s2.labels[202] == truth[202]
        rules = s2.rules.all()
        assert (rules[0]["name"], rules[0]["kind"]) == ("a region", "region")
        assert [r["kind"] for r in rules] == ["region", "neighbours"]
        assert np.flatnonzero(s2.excluded_mask()).tolist() == [500, 501]
        # the project still works: a fit with the rules' weak labels and an issue search
        s2.fit(weak=True)
        assert s2.probs_ is not None and s2.fit_error_ in (None, "")
        report = s2.find_issues()
        assert report is not None and len(report.columns) >= 4
    finally:
        s2.close()
