#!/usr/bin/env bash
# Sets up dfwidgets on a fresh Debian/Ubuntu machine (or anywhere with Python >= 3.10
# and Node >= 18): system packages when apt is available, the Python package with all
# extras and test tools, and the JS bundles.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  apt-get update -qq
  # Fashion-MNIST (offline), Chromium for end-to-end tests, fonts for screenshots
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    dataset-fashion-mnist chromium fonts-dejavu-core >/dev/null
fi

python -m pip install -q --upgrade pip
# torch + torchvision are resolved together from the registry so they pair.
python -m pip install -q -e ".[dev]"
# the editable install runs the JS build through hatch-jupyter-builder; build again
# explicitly so a stale bundle is never used
(cd js && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
# compile umap-learn's kernels once into the numba cache under the dfwidgets cache folder
# (the same folder a user's session uses: $DFW_CACHE_DIR, else the user cache dir), so the
# first map of a new process does not pay ~12 s CPU of JIT compilation
python -c "from dfwidgets.layout_umap import warm_up; warm_up()" \
  || echo "note: UMAP warm-up skipped (the first layout compiles instead)"
echo "dfwidgets set up."
