"""Command line: ``dfwidgets demo`` opens JupyterLab on the quickstart notebook."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path


def _quickstart_path() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "notebooks" / "quickstart.ipynb", here / "notebooks" / "quickstart.ipynb"):
        if candidate.exists():
            return candidate
    raise SystemExit("quickstart.ipynb not found: run from a clone of the dfwidgets repository.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dfwidgets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="open JupyterLab on notebooks/quickstart.ipynb")
    demo.add_argument("--port", type=int, default=8888)
    demo.add_argument("--no-browser", action="store_true")
    args, extra = parser.parse_known_args(argv)
    if args.command == "demo":
        if shutil.which("jupyter") is None:
            raise SystemExit('JupyterLab is not installed: pip install "dfwidgets[lab]"')
        nb = _quickstart_path()
        cmd = [sys.executable, "-m", "jupyter", "lab", str(nb), f"--port={args.port}",
               f"--ServerApp.root_dir={nb.parent.parent}"]
        if args.no_browser:
            cmd.append("--no-browser")
        import os

        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        return subprocess.call(cmd + extra)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
