"""The UMAP step of the map layout: fast on CPU, cuML on a GPU, and a clear error otherwise.

``umap_coords(x, init=...)`` lays out ``x`` (N, d) (rows already PCA-reduced) in 2-D:

* **cuML** (``pip install "dfwidgets[gpu]"``) when it imports and a CUDA device is there;
* else **umap-learn** with the neighbour graph from faiss (exact inner product on unit
  rows = cosine) handed over as ``precomputed_knn``, both cores (``n_jobs=2``, no seed:
  the layout cache gives repeatability), epochs scaled with N, and the PCA view as the
  starting point (no spectral solve);
* above ``SAMPLE_MAX`` rows, UMAP of a seeded sample; every other row is placed at the
  similarity-weighted mean of its nearest sampled rows (faiss IVF), see ``layout_knn``.

umap-learn's numba kernels are compiled once per machine into the dfwidgets cache
(``enable_jit_cache``; ``scripts/setup.sh`` runs ``warm_up()``), not once per process.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._config import cache_dir
from .layout_knn import exact_knn, place_by_neighbours

__all__ = ["SAMPLE_MAX", "UMAPUnavailable", "cuml_available", "enable_jit_cache", "n_epochs",
           "umap_coords", "warm_up"]

log = logging.getLogger(__name__)

SAMPLE_MAX = 50_000  # above this, UMAP runs on a sample and the rest is placed
MISSING_UMAP = ('UMAP layouts need umap-learn, which is not installed: '
                'pip install "dfwidgets[umap]" (the map shows PCA meanwhile; '
                'or use layout="pca")')

Progress = Callable[[str], None]


class UMAPUnavailable(ImportError):
    """umap-learn is not installed; the message names the fix."""


# ------------------------------------------------------------------ numba JIT cache
def enable_numba_cache(base: Path | None = None) -> Path | None:
    """Point numba's on-disk cache at ``<dfwidgets cache>/numba`` (unless ``NUMBA_CACHE_DIR``
    is set); returns the folder or None when it is not writable."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    folder = (base or cache_dir()) / "numba"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError:
        log.info("numba cache folder %s is not writable; UMAP compiles on every start", folder)
        return None
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    if "numba" in sys.modules:  # numba read its config already: re-read the environment
        sys.modules["numba"].config.reload_config()
    return folder


def enable_jit_cache(umap: Any) -> int:
    """Turn on numba's disk cache for umap-learn's kernels (umap-learn compiles them in
    every process otherwise: ~12 s CPU at each start). A kernel compiled twice from one
    Python function (serial and parallel epoch) is cached only in its parallel form, the
    one used here, since both would share one cache entry. Returns how many were enabled."""
    try:
        from numba.core.registry import CPUDispatcher
    except ImportError:  # pragma: no cover - numba always comes with umap-learn
        return 0
    mods = [sys.modules.get(f"umap.{m}") for m in ("umap_", "layouts", "utils", "spectral")]
    found: dict[int, Any] = {}
    for mod in filter(None, mods):
        for obj in vars(mod).values():
            if isinstance(obj, CPUDispatcher):
                found[id(obj)] = obj
    by_func: dict[Any, list] = {}
    for disp in found.values():
        by_func.setdefault(disp.py_func, []).append(disp)
    enabled = 0
    for disps in by_func.values():
        for disp in disps:
            if len(disps) > 1 and not disp.targetoptions.get("parallel"):
                continue
            if type(disp._cache).__name__ == "NullCache":
                try:
                    disp.enable_caching()
                    enabled += 1
                except Exception:  # noqa: BLE001 - a kernel that cannot be cached compiles
                    log.debug("numba cache not enabled for %s", disp.py_func.__name__)
    return enabled


def import_umap() -> Any:
    """umap-learn, with its JIT cache under the dfwidgets cache; UMAPUnavailable if missing."""
    enable_numba_cache()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import umap
            import umap.umap_
    except ImportError as exc:
        raise UMAPUnavailable(MISSING_UMAP) from exc
    enable_jit_cache(umap)
    return umap


# ------------------------------------------------------------------ cuML
def cuml_available() -> bool:
    """True when cuML imports and a CUDA device is present."""
    try:
        import cuml  # noqa: F401
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any failure means: no GPU path
        return False


def _cuml_coords(x: np.ndarray, *, n_neighbors: int, min_dist: float,
                 random_state: int | None) -> np.ndarray:
    from cuml.manifold import UMAP

    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    model = UMAP(n_neighbors=n_neighbors, min_dist=min_dist, metric="euclidean",
                 random_state=random_state, output_type="numpy")
    return np.asarray(model.fit_transform(unit), dtype=np.float32)


# ------------------------------------------------------------------ umap-learn
def n_epochs(n: int) -> int:
    """Optimisation epochs for N points: umap-learn's 500 (small) / 200 (> 10k) scaled
    down as N grows (the graph has more edges, each epoch does more work)."""
    if n <= 2_000:
        return 300
    if n <= 10_000:
        return 200
    return int(np.clip(200 * np.sqrt(10_000 / n) + 50, 100, 200))


def _umap_learn_coords(x: np.ndarray, *, init: np.ndarray, n_neighbors: int,
                       min_dist: float, random_state: int | None, progress: bool) -> np.ndarray:
    umap = import_umap()
    n = len(x)
    k = int(min(n_neighbors, n - 1))
    knn = exact_knn(x, k=k)
    kwargs: dict[str, Any] = {}
    if knn is not None:
        kwargs["precomputed_knn"] = (knn[0], knn[1], None)
    model = umap.UMAP(
        n_neighbors=k, min_dist=min_dist, metric="cosine", init=_scaled(init),
        n_epochs=n_epochs(n), random_state=random_state,
        n_jobs=1 if random_state is not None else min(2, os.cpu_count() or 1),
        low_memory=True, tqdm_kwds={"disable": not progress, "desc": f"UMAP of {n:,} items",
                                     "leave": False},
        **kwargs,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no search index: transform unavailable" etc.
        try:
            coords = model.fit_transform(x)
        except ValueError as exc:  # umap-learn < 0.5.6 insists on an NNDescent index
            if "knn_search_index" not in str(exc):
                raise
            model.set_params(precomputed_knn=(None, None, None))
            coords = model.fit_transform(x)
    return np.asarray(coords, dtype=np.float32)


def _scaled(init: np.ndarray) -> np.ndarray:
    """The PCA view as UMAP's starting point, with a tiny jitter so no two rows coincide."""
    xy = np.asarray(init, dtype=np.float64)
    span = np.maximum(xy.max(0) - xy.min(0), 1e-12)
    xy = 10.0 * (xy - xy.min(0)) / span
    rng = np.random.default_rng(0)
    return (xy + rng.normal(scale=1e-4, size=xy.shape)).astype(np.float32)


def umap_coords(x: np.ndarray, *, init: np.ndarray, n_neighbors: int = 15,
                min_dist: float = 0.1, random_state: int | None = None,
                progress: bool = False, backend: str = "auto",
                stage: Progress | None = None) -> np.ndarray:
    """2-D UMAP coordinates (N, 2) float32 of ``x`` (N, d) float32 (cosine), starting from
    ``init`` (N, 2). ``backend``: "auto" (cuML when present, else umap-learn), "cuml",
    "umap-learn". ``stage(text)`` is told what runs now. Above ``SAMPLE_MAX`` rows UMAP runs
    on a seeded sample and the other rows are placed among their nearest sampled rows."""
    say = stage or (lambda text: None)
    n = len(x)
    use_cuml = backend == "cuml" or (backend == "auto" and cuml_available())
    if use_cuml:
        say(f"UMAP on the GPU (cuML) of {n:,} items")
        return _cuml_coords(x, n_neighbors=n_neighbors, min_dist=min_dist,
                            random_state=random_state)
    if n <= SAMPLE_MAX:
        say(f"UMAP of {n:,} items")
        return _umap_learn_coords(x, init=init, n_neighbors=n_neighbors, min_dist=min_dist,
                                  random_state=random_state, progress=progress)
    rng = np.random.default_rng(0 if random_state is None else random_state)
    sample = np.sort(rng.choice(n, SAMPLE_MAX, replace=False))
    say(f"UMAP of a sample of {SAMPLE_MAX:,} of {n:,} items")
    sample_xy = _umap_learn_coords(x[sample], init=init[sample], n_neighbors=n_neighbors,
                                   min_dist=min_dist, random_state=random_state,
                                   progress=progress)
    say(f"placing the other {n - SAMPLE_MAX:,} items among their nearest sampled items")
    rest = np.ones(n, dtype=bool)
    rest[sample] = False
    out = np.empty((n, 2), dtype=np.float32)
    out[sample] = sample_xy
    out[rest] = place_by_neighbours(x[rest], x[sample], sample_xy, k=10)
    return out


def warm_up(*, n: int = 300) -> int:
    """Compile umap-learn's kernels into the numba cache with a tiny layout (run once by
    ``scripts/setup.sh``); returns the number of kernels with a disk cache."""
    import_umap()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 16)).astype(np.float32)
    umap_coords(x, init=x[:, :2].copy(), backend="umap-learn")
    folder = os.environ.get("NUMBA_CACHE_DIR")
    return sum(1 for _ in Path(folder).rglob("*.nbi")) if folder else 0
