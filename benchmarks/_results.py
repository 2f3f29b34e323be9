"""What every benchmark script shares: the RESULTS.md section writer (under one file lock),
the ``--threads`` / ``--no-write`` / ``--results`` options, thread limits, the load-average
note every table carries, and markdown tables.

Scripts run as ``python benchmarks/<name>.py`` (from the repository root or from
``benchmarks/``): Python puts the script's folder first on ``sys.path``, so
``from _results import ...`` finds this module from anywhere. Importing it also puts the
repository root on ``sys.path``, so ``import dfwidgets`` works without an install.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS.md"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


# ------------------------------------------------------------------ options
def add_threads_option(parser: argparse.ArgumentParser, *, default: int | list[int] = 1,
                       many: bool = False, help: str = "torch and BLAS/OpenMP threads") -> None:
    """``--threads N`` (or ``--threads N [N ...]`` with ``many=True``)."""
    parser.add_argument("--threads", type=int, nargs="+" if many else None, default=default,
                        help=help)


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--no-write`` (print only) and ``--results PATH`` (the markdown file to update)."""
    parser.add_argument("--no-write", action="store_true",
                        help="print the table only; leave the results file alone")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="markdown file whose section is replaced (default: benchmarks/RESULTS.md)")


def limit_threads(n: int, *, blas: bool = True) -> None:
    """Use ``n`` torch threads and (``blas=True``) ``n`` BLAS/OpenMP threads from now on."""
    import torch

    torch.set_num_threads(n)
    if blas:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n)


# ------------------------------------------------------------------ the machine
def load_average() -> float:
    """The 1-minute load average now."""
    return os.getloadavg()[0]


def load_note(start: float | None = None) -> str:
    """``"load average 1.9 at the start, 2.4 at the end"`` (just the end without ``start``)."""
    end = load_average()
    if start is None:
        return f"load average {end:.1f} at the end"
    return f"load average {start:.1f} at the start, {end:.1f} at the end"


def machine_note(start: float | None = None) -> str:
    """``"2 CPU cores shared with other jobs (load average ...)"``: every table says it."""
    return f"{os.cpu_count()} CPU cores shared with other jobs ({load_note(start)})"


def command_line(script: str) -> str:
    """How this script was run, e.g. ``python benchmarks/search.py --sizes 100000`` (without
    the output options, which do not change the numbers)."""
    argv, shown = sys.argv[1:], []
    while argv:
        arg = argv.pop(0)
        if arg == "--results":
            argv = argv[1:]
        elif arg != "--no-write" and not arg.startswith("--results="):
            shown.append(arg)
    return " ".join(["python", f"benchmarks/{script}", *shown])


# ------------------------------------------------------------------ output
def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table: one header row, a separator, one line per row (cells via ``str``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(section: str, markdown: str, *, results: Path = RESULTS) -> None:
    """Replace (or append) the section ``section`` of ``results``, between
    ``<!-- BEGIN section -->`` and ``<!-- END section -->`` markers, under a file lock
    (other benchmarks may be writing their sections at the same time)."""
    results = Path(results)
    begin, end = f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"
    block = f"{begin}\n{markdown.rstrip()}\n{end}\n"
    with open(results.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = results.read_text() if results.exists() else "# Benchmark results\n\n"
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            text = head + block + rest.split(end, 1)[1].lstrip("\n")
        else:
            text = text.rstrip("\n") + "\n\n" + block
        results.write_text(text)


def report(args: argparse.Namespace, section: str, markdown: str, *, echo: bool = True) -> None:
    """Print ``markdown`` (``echo``) and, unless ``--no-write``, write it as ``section`` of
    ``--results`` (both from :func:`add_output_options`)."""
    if echo:
        print(markdown)
    if not args.no_write:
        write_section(section, markdown, results=args.results)
