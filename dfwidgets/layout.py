"""2-D coordinates for the embedding map: PCA at once, UMAP (cosine) cached on disk.

``compute_layout`` is the one-shot function; ``LayoutComputer`` gives a PCA view at once
(numpy: covariance of a sample + eigh, one projection pass that also finds NaN/inf rows)
and computes UMAP (``layout_umap``: faiss neighbour graph, both cores, cuML on a GPU, a
sample + placement above 50,000 items) in a background thread, calling back when it is
done, and places new items with ``transform`` (among their nearest laid-out items).
Only coordinates are cached (``layout_cache``: ``.npy``, no pickle, damaged files rebuilt).
umap-learn is imported lazily (extra ``dfwidgets[umap]``); when it is missing or fails,
the PCA view stays and ``error_message_`` says why and what to do.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ._config import cache_dir as _cache_dir
from .layout_cache import content_key, load_coords, save_coords
from .layout_knn import place_by_neighbours
from .layout_umap import UMAPUnavailable, umap_coords

__all__ = ["LayoutComputer", "LayoutFailed", "compute_layout"]

log = logging.getLogger(__name__)

Method = Literal["umap", "pca"]
_PCA_DIMS = 50
_PCA_FIT_ROWS = 20_000  # PCA is fitted on at most this many rows (seeded sample)
_SYNC_KEY_MAX = 50_000_000  # N*D up to which the cache is checked before fit() returns
_VERSION = "2"
_PLACE_NEIGHBOURS = 10  # transform: a new item sits among its 10 nearest laid-out items
_CHUNK = 65_536


class LayoutFailed(RuntimeError):
    """The UMAP layout could not be made; the message says why and what to do."""


def _check_embeddings(embeddings: Any, *, min_rows: int = 3, finite: bool = True
                      ) -> np.ndarray:
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise ValueError(
            f"embeddings must be a 2-D array (N, D); got shape {x.shape}. "
            "Pass the output of dfw.embed(source)."
        )
    if x.shape[0] < min_rows:
        raise ValueError(f"a layout needs at least {min_rows} items; got {x.shape[0]}.")
    x = x.astype(np.float32, copy=False)
    if not finite:  # the caller checks (LayoutComputer.fit: inside the PCA projection)
        return x
    bad = np.concatenate([lo + _non_finite_rows(x[lo:lo + _CHUNK])
                          for lo in range(0, len(x), _CHUNK)])
    if bad.size:
        raise ValueError(
            f"embeddings contain NaN or inf in {bad.size} rows (first: {bad[:5].tolist()}); "
            "re-embed those items or drop them."
        )
    return x


def _non_finite_rows(chunk: np.ndarray) -> np.ndarray:
    """Row numbers of ``chunk`` (n, D) holding NaN or inf. A row sum is finite when the row
    is (one pass, no (n, D) mask); only a chunk with a non-finite sum is checked per value."""
    if np.isfinite(chunk.sum(axis=1)).all():
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(~np.isfinite(chunk).all(axis=1))


def pca_fit(rows: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA of ``rows`` (n, D): mean (D,) float64 and components (k, D) float32, largest
    variance first, each signed so its largest-magnitude entry is positive (as
    scikit-learn's ``svd_flip``). Covariance (D, D) in one BLAS call + ``numpy.linalg.eigh``."""
    mean = rows.mean(axis=0, dtype=np.float64)
    centred = rows - mean.astype(np.float32)
    cov = (centred.T @ centred).astype(np.float64) / max(len(rows) - 1, 1)
    _, vecs = np.linalg.eigh(cov)  # ascending eigenvalues
    comps = vecs[:, ::-1][:, :n_components].T
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
    return mean, np.ascontiguousarray(comps * signs[:, None], dtype=np.float32)


def _key(x: np.ndarray, params: dict) -> str:
    return content_key(x, params, _VERSION)


def _failure_text(exc: BaseException) -> str:
    if isinstance(exc, UMAPUnavailable):
        return str(exc)
    return (f"UMAP failed ({type(exc).__name__}: {exc}); the map keeps the PCA view. "
            "Ask again with session.start_layout('umap'), or pass your own coordinates "
            "with session.set_layout(xy)")


class LayoutComputer:
    """2-D layout of embeddings: PCA at once, UMAP in the background, cached on disk.

    sklearn-shaped: the constructor stores options, ``fit(X)`` returns ``self``.

    Learned attributes:
        ``pca_embedding_`` (N, 2) float32 — first two principal components (available
        right after ``fit``); ``umap_embedding_`` (N, 2) float32 or None until UMAP is done;
        ``embedding_`` — the best layout available now; ``method_`` — "pca" or "umap";
        ``stage_`` — what runs now (text); ``error_message_`` — why UMAP failed, or None.

    Example::

        lc = LayoutComputer().fit(emb, background=True, callback=lambda xy: ...)
        lc.embedding_      # PCA now, UMAP after the callback fired
        lc.wait()          # (N, 2) UMAP coordinates
    """

    def __init__(
        self,
        *,
        method: Method = "umap",
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        random_state: int | None = None,
        cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
        progress: bool = True,
        backend: str = "auto",
    ) -> None:
        self.method = method
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.random_state = random_state
        self.cache = cache
        self.cache_dir = cache_dir
        self.progress = progress
        self.backend = backend

    # -- fitting -----------------------------------------------------------------
    def _params(self) -> dict:
        return {
            "method": self.method,
            "n_neighbors": int(self.n_neighbors),
            "min_dist": float(self.min_dist),
            "random_state": self.random_state,
        }

    def _folder(self) -> Path:
        return _cache_dir(self.cache_dir, sub="layout")

    def fit(
        self,
        embeddings: np.ndarray,
        *,
        background: bool = False,
        callback: Callable[[np.ndarray], None] | None = None,
    ) -> LayoutComputer:
        """Compute the PCA view of ``embeddings`` (N, D) now, and UMAP (now, or in a
        background thread when ``background=True``). ``callback(coords (N, 2))`` is
        called once the final layout is ready (from the worker thread)."""
        if self.method not in ("umap", "pca"):
            raise ValueError(f"method must be 'umap' or 'pca'; got {self.method!r}.")
        x = _check_embeddings(embeddings, finite=False)  # NaN/inf: found by _fit_pca
        self._x = x
        self.n_features_in_ = x.shape[1]
        self.umap_embedding_: np.ndarray | None = None
        self.error_: BaseException | None = None
        self.stage_ = "PCA"
        self._done = threading.Event()
        self._callback = callback
        self._reduced: np.ndarray | None = None
        self._reduce_lock = threading.Lock()
        self.cache_key_: str | None = None

        self._fit_pca(x)
        if self.method == "pca":
            self._finish(None)
            return self
        if x.size <= _SYNC_KEY_MAX:  # small enough to hash now: a cached UMAP shows at once
            cached = self._load_cached()
            if cached is not None:
                self._finish(cached)
                return self
        if background:
            self._thread = threading.Thread(
                target=self._run_umap, name="dfwidgets-umap", daemon=True
            )
            self._thread.start()
        else:
            self._run_umap(raise_errors=True)
        return self

    def _fit_pca(self, x: np.ndarray) -> None:
        """``pca_components_`` (k, D) / ``pca_mean_`` (D,) from a seeded sample of at most
        ``_PCA_FIT_ROWS`` rows (numpy: covariance + eigh, no scikit-learn import);
        ``pca_embedding_`` (N, 2) in one pass that also finds NaN/inf rows."""
        n, d = x.shape
        rows = x
        if n > _PCA_FIT_ROWS:
            rows = x[np.sort(np.random.default_rng(0).choice(n, _PCA_FIT_ROWS, replace=False))]
        if not np.isfinite(rows).all():
            _check_embeddings(x, finite=True)  # raises, naming every bad row
        self.pca_mean_, self.pca_components_ = pca_fit(rows, min(_PCA_DIMS, d, len(rows)))
        self.pca_embedding_ = self._project(x, 2, check=True)

    def _project(self, x: np.ndarray, dims: int, *, check: bool = False) -> np.ndarray:
        """(N, dims) float32 = (x - mean) @ components[:dims].T without a centred copy.
        ``check``: a row-sum column rides along (NaN/inf propagate to it); rows where it is
        not finite are checked value by value and reported."""
        comps = self.pca_components_[:dims].T
        if check:
            comps = np.concatenate([comps, np.ones((comps.shape[0], 1), np.float32)], axis=1)
        comps = np.ascontiguousarray(comps, dtype=np.float32)
        shift = self.pca_mean_.astype(np.float32) @ comps  # (x - m) @ C = x @ C - m @ C
        with np.errstate(over="ignore", invalid="ignore"):  # bad rows are checked below
            out = x @ comps  # one BLAS pass over x; (N, dims [+1]) is small
        if check:
            suspect = np.flatnonzero(~np.isfinite(out).all(axis=1))
            if suspect.size and not np.isfinite(x[suspect]).all():
                _check_embeddings(x, finite=True)  # raises, naming every bad row
            out = np.ascontiguousarray(out[:, :dims])
        out -= shift[:dims]
        return out

    def _reduced_rows(self) -> np.ndarray:
        """(N, <= 50) the rows UMAP sees: PCA to 50 dims when D > 50, else as given."""
        with self._reduce_lock:
            if self._reduced is None:
                self._reduced = (self._project(self._x, _PCA_DIMS)
                                 if self.n_features_in_ > _PCA_DIMS else self._x)
            return self._reduced

    def _cache_paths(self) -> tuple[Path]:
        if self.cache_key_ is None:
            self.cache_key_ = _key(self._x, self._params())
        return (self._folder() / f"{self.cache_key_}.npy",)

    def _load_cached(self) -> np.ndarray | None:
        if not self.cache:
            return None
        (coords_path,) = self._cache_paths()
        return load_coords(coords_path, len(self._x))

    def _run_umap(self, raise_errors: bool = False) -> None:
        try:
            coords = self._load_cached() if self.cache_key_ is None else None
            if coords is None:
                coords = self._fit_umap(self._reduced_rows())
        except BaseException as exc:  # reported through error_ / wait()
            self.error_ = exc
            self.stage_ = "failed"
            log.warning("UMAP layout failed; keeping the PCA layout: %s", _failure_text(exc))
            self._done.set()
            if raise_errors:
                raise LayoutFailed(_failure_text(exc)) from exc
            return
        self._finish(coords)

    def _set_stage(self, text: str) -> None:
        self.stage_ = text
        log.info("layout: %s", text)

    def _fit_umap(self, x: np.ndarray) -> np.ndarray:
        coords = umap_coords(x, init=self.pca_embedding_, n_neighbors=int(self.n_neighbors),
                             min_dist=float(self.min_dist), random_state=self.random_state,
                             progress=self.progress, backend=self.backend,
                             stage=self._set_stage)
        if self.cache:
            (coords_path,) = self._cache_paths()
            save_coords(coords_path, coords)
        return coords

    def _finish(self, coords: np.ndarray | None) -> None:
        self.umap_embedding_ = coords
        self.stage_ = "done"
        self._done.set()
        if self._callback is not None:
            try:
                self._callback(self.embedding_)
            except Exception:
                log.exception("layout callback failed")

    # -- results -------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """True once the final layout (UMAP, or PCA for method='pca') is available."""
        return self._done.is_set()

    @property
    def method_(self) -> str:
        """Which layout ``embedding_`` holds now: "umap" or "pca"."""
        return "umap" if self.umap_embedding_ is not None else "pca"

    @property
    def embedding_(self) -> np.ndarray:
        """(N, 2) float32: UMAP coordinates when ready, else the PCA view."""
        return self.umap_embedding_ if self.umap_embedding_ is not None else self.pca_embedding_

    @property
    def error_message_(self) -> str | None:
        """Why the UMAP layout failed and what to do (None when it did not fail)."""
        return None if self.error_ is None else _failure_text(self.error_)

    def wait(self, timeout: float | None = None) -> np.ndarray:
        """Block until the final layout is ready; return it (N, 2). A failed UMAP raises
        :class:`LayoutFailed` with the reason and the fix."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"the UMAP layout was not ready after {timeout} s")
        if self.error_ is not None:
            raise LayoutFailed(_failure_text(self.error_)) from self.error_
        return self.embedding_

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        """Place new items (M, D) on the existing layout; returns (M, 2) float32."""
        x = _check_embeddings(embeddings, min_rows=1)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"new embeddings must have shape (M, {self.n_features_in_}) like the fitted "
                f"ones; got {x.shape}. Embed them with the same model."
            )
        if self.method_ == "pca":
            return self._project(x, 2)
        reduced_in = self._project(x, _PCA_DIMS) if self.n_features_in_ > _PCA_DIMS else x
        return place_by_neighbours(reduced_in, self._reduced_rows(), self.embedding_,
                                   k=_PLACE_NEIGHBOURS)


def compute_layout(
    embeddings: np.ndarray,
    *,
    method: Method = "umap",
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    random_state: int | None = None,
    progress: bool = True,
    backend: str = "auto",
) -> np.ndarray:
    """2-D layout (N, 2) float32 of ``embeddings`` (N, D): UMAP (cosine, after PCA to
    <= 50 dims) or PCA. Cached on disk by (embeddings, parameters). ``random_state``:
    None uses both cores (the cache keeps a layout stable); an int gives a repeatable
    single-threaded run. Raises :class:`LayoutFailed` (reason + fix) when UMAP fails."""
    lc = LayoutComputer(
        method=method, cache=cache, cache_dir=cache_dir, random_state=random_state,
        progress=progress, backend=backend,
    ).fit(embeddings)
    return lc.wait()
