"""2-D coordinates for the embedding map: PCA at once, UMAP (cosine) cached on disk.

``compute_layout`` is the one-shot function; ``LayoutComputer`` gives a PCA view at once
and computes UMAP in a background thread, calling back when it is done, and places new
items with ``transform`` (at the similarity-weighted mean of their nearest laid-out items).
Only coordinates are cached (``.npy``): no model file, nothing executable (no pickle).
umap-learn is imported lazily (extra ``dfwidgets[umap]``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np

from ._config import cache_dir as _cache_dir

__all__ = ["LayoutComputer", "compute_layout"]

log = logging.getLogger(__name__)

Method = Literal["umap", "pca"]
_PCA_DIMS = 50
_VERSION = "1"
_PLACE_NEIGHBOURS = 10  # transform: a new item sits among its 10 nearest laid-out items


def _enable_numba_cache(base: Path) -> None:
    """Point numba's on-disk JIT cache under the dfwidgets cache (unless the user set one),
    so umap/pynndescent compile once per machine instead of once per process."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    folder = base / "numba"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError:
        log.info("numba cache folder %s is not writable; UMAP compiles on every start", folder)
        return
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    if "numba" in sys.modules:  # numba read its config already: re-read the environment
        sys.modules["numba"].config.reload_config()


def _import_umap() -> Any:
    try:
        import umap  # noqa: F401  (heavy: numba JIT)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            'UMAP layouts need umap-learn: pip install "dfwidgets[umap]" '
            '(or use method="pca")'
        ) from exc
    return umap


def _check_embeddings(embeddings: Any, *, min_rows: int = 3) -> np.ndarray:
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise ValueError(
            f"embeddings must be a 2-D array (N, D); got shape {x.shape}. "
            "Pass the output of dfw.embed(source)."
        )
    if x.shape[0] < min_rows:
        raise ValueError(f"a layout needs at least {min_rows} items; got {x.shape[0]}.")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
        raise ValueError(
            f"embeddings contain NaN or inf in {bad.size} rows (first: {bad[:5].tolist()}); "
            "re-embed those items or drop them."
        )
    return x


def _key(x: np.ndarray, params: dict) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((x.shape, str(x.dtype), sorted(params.items()), _VERSION)).encode())
    h.update(np.ascontiguousarray(x).data)
    return h.hexdigest()


class LayoutComputer:
    """2-D layout of embeddings: PCA at once, UMAP in the background, cached on disk.

    sklearn-shaped: the constructor stores options, ``fit(X)`` returns ``self``.

    Learned attributes:
        ``pca_embedding_`` (N, 2) float32 — first two principal components (available
        right after ``fit``); ``umap_embedding_`` (N, 2) float32 or None until UMAP is done;
        ``embedding_`` — the best layout available now; ``method_`` — "pca" or "umap".

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
        random_state: int | None = 0,
        cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
        progress: bool = True,
    ) -> None:
        self.method = method
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.random_state = random_state
        self.cache = cache
        self.cache_dir = cache_dir
        self.progress = progress

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
    ) -> "LayoutComputer":
        """Compute the PCA view of ``embeddings`` (N, D) now, and UMAP (now, or in a
        background thread when ``background=True``). ``callback(coords (N, 2))`` is
        called once the final layout is ready (from the worker thread)."""
        if self.method not in ("umap", "pca"):
            raise ValueError(f"method must be 'umap' or 'pca'; got {self.method!r}.")
        x = _check_embeddings(embeddings)
        self.n_features_in_ = x.shape[1]
        self.umap_embedding_: np.ndarray | None = None
        self.error_: BaseException | None = None
        self._done = threading.Event()
        self._callback = callback

        from sklearn.decomposition import PCA

        n_comp = int(min(_PCA_DIMS, x.shape[1], x.shape[0]))
        self.pca_ = PCA(n_components=n_comp, random_state=0).fit(x)
        reduced = self.pca_.transform(x).astype(np.float32)
        self._reduced = reduced if x.shape[1] > _PCA_DIMS else x
        self.pca_embedding_ = np.ascontiguousarray(reduced[:, :2])
        self.cache_key_ = _key(x, self._params())

        if self.method == "pca":
            self._finish(None)
            return self
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

    def _cache_paths(self) -> tuple[Path]:
        return (self._folder() / f"{self.cache_key_}.npy",)

    def _load_cached(self) -> np.ndarray | None:
        if not self.cache:
            return None
        (coords_path,) = self._cache_paths()
        if coords_path.exists():
            try:
                coords = np.load(coords_path)
                if coords.shape == (self.pca_embedding_.shape[0], 2):
                    log.info("layout loaded from cache %s", coords_path)
                    return coords.astype(np.float32)
            except (OSError, ValueError) as exc:
                log.warning("ignoring unreadable layout cache %s: %s", coords_path, exc)
        return None

    def _run_umap(self, raise_errors: bool = False) -> None:
        try:
            coords = self._fit_umap(self._reduced)
        except BaseException as exc:  # reported through error_ / wait()
            self.error_ = exc
            log.exception("UMAP layout failed; keeping the PCA layout")
            self._done.set()
            if raise_errors:
                raise
            return
        self._finish(coords)

    def _fit_umap(self, x: np.ndarray) -> np.ndarray:
        _enable_numba_cache(_cache_dir(self.cache_dir))
        umap = _import_umap()
        from tqdm.auto import tqdm

        n = x.shape[0]
        model = umap.UMAP(
            n_neighbors=int(min(self.n_neighbors, n - 1)),
            min_dist=self.min_dist,
            metric="cosine",
            random_state=self.random_state,
            n_jobs=1 if self.random_state is not None else -1,
            low_memory=True,
        )
        with tqdm(total=1, desc=f"UMAP layout of {n:,} items", disable=not self.progress,
                  leave=False) as bar:
            coords = model.fit_transform(x).astype(np.float32)
            bar.update(1)
        if self.cache:
            (coords_path,) = self._cache_paths()
            tmp = coords_path.with_suffix(".tmp.npy")
            np.save(tmp, coords)
            os.replace(tmp, coords_path)
        return coords

    def _finish(self, coords: np.ndarray | None) -> None:
        self.umap_embedding_ = coords
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

    def wait(self, timeout: float | None = None) -> np.ndarray:
        """Block until the final layout is ready; return it (N, 2). Re-raises a UMAP error."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"the UMAP layout was not ready after {timeout} s")
        if self.error_ is not None:
            raise RuntimeError(f"UMAP layout failed: {self.error_}") from self.error_
        return self.embedding_

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        """Place new items (M, D) on the existing layout; returns (M, 2) float32."""
        x = _check_embeddings(embeddings, min_rows=1)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"new embeddings must have shape (M, {self.n_features_in_}) like the fitted "
                f"ones; got {x.shape}. Embed them with the same model."
            )
        reduced = self.pca_.transform(x).astype(np.float32)
        if self.method_ == "pca":
            return np.ascontiguousarray(reduced[:, :2])
        reduced_in = reduced if self.n_features_in_ > _PCA_DIMS else x
        return _place(reduced_in, self._reduced, self.embedding_, k=_PLACE_NEIGHBOURS)


def _place(x: np.ndarray, fitted: np.ndarray, coords: np.ndarray, *, k: int) -> np.ndarray:
    """(M, 2) positions for new rows ``x`` (M, d): the similarity-weighted mean of the
    coordinates ``coords`` (N, 2) of their ``k`` most cosine-similar rows of ``fitted``
    (N, d). Exact, in chunks; no model to store."""
    unit = fitted / np.maximum(np.linalg.norm(fitted, axis=1, keepdims=True), 1e-12)
    q = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    k = int(min(k, len(unit)))
    out = np.empty((len(q), 2), dtype=np.float32)
    for lo in range(0, len(q), 1024):
        sims = q[lo:lo + 1024] @ unit.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        w = np.maximum(np.take_along_axis(sims, top, axis=1), 0.0) + 1e-6
        out[lo:lo + 1024] = (w[..., None] * coords[top]).sum(1) / w.sum(1, keepdims=True)
    return out


def compute_layout(
    embeddings: np.ndarray,
    *,
    method: Method = "umap",
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    random_state: int | None = 0,
    progress: bool = True,
) -> np.ndarray:
    """2-D layout (N, 2) float32 of ``embeddings`` (N, D): UMAP (cosine, after PCA to
    <= 50 dims) or PCA. Cached on disk by (embeddings, parameters)."""
    lc = LayoutComputer(
        method=method, cache=cache, cache_dir=cache_dir, random_state=random_state,
        progress=progress,
    ).fit(embeddings)
    return lc.wait()
