"""Data issues over arrays: exact and near duplicates, outliers, label errors, class imbalance.

cleanlab does the label part (``filter.find_label_issues``, ``rank``), and the other kinds
follow the rules of cleanlab's ``Datalab`` (near_duplicate, outlier, class_imbalance) on what
the caller already has, without Datalab's extra dependencies (HF ``datasets``): a k-nearest-neighbour graph over the
embeddings, out-of-fold probabilities of the labeled items, content hashes, and small
grey thumbnails for a pixel check of near-duplicate candidates (a copy shifted by a pixel,
brightened or re-encoded is close in pixels, while an embedding alone mixes such copies up
with look-alikes). Pure functions: no Session, no store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "KINDS", "NEAR_DUPLICATE_DISTANCE", "find_data_issues", "knn_graph",
           "knn_search", "pixel_distance", "pixel_neighbours", "thumbnails"]

log = logging.getLogger(__name__)

KINDS = ("exact_duplicate", "near_duplicate", "outlier", "label_error", "class_imbalance")
COLUMNS = ("index", "kind", "score", "group", "suggestion", "suggested")
NEAR_DUPLICATE_DISTANCE = 0.008  # 1 - best shifted pixel correlation of two copies
THUMB = 32  # thumbnail edge for the pixel check
CANDIDATES = 5  # near-duplicate candidates per item from each of embeddings and pixels
SHIFT = 1  # pixels a copy may be moved by (each way) in the pixel check
OUTLIER_THRESHOLD = 0.1  # item level: mean kNN distance above Q3 + 9 IQR
ISLAND_FRACTION = 0.05  # cluster level: k-NN graph components of at most 5% of the items
Progress = Callable[[float, str], None]


def thumbnails(images: Any, *, size: int = THUMB) -> np.ndarray:
    """uint8/float images (N, H, W[, C]) -> (N, size, size) float32 grey thumbnails;
    square images of at most ``size`` px keep their own size (no resampling: a copy moved
    by one pixel stays one pixel away, which the pixel check's shifts match exactly)."""
    import torch

    a = np.asarray(images)
    if a.ndim == 4:
        a = a[..., :3].mean(axis=-1)
    if a.ndim != 3:
        raise ValueError(f"images must be (N, H, W) or (N, H, W, C); got shape {a.shape}")
    if a.shape[1] == a.shape[2] <= size:
        return np.ascontiguousarray(a, dtype=np.float32)
    x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[:, None]
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                           align_corners=False)[:, 0].numpy()


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-6)


def pixel_distance(thumbs: np.ndarray, a: np.ndarray, b: np.ndarray, *, shift: int = SHIFT,
                   chunk: int = 8192) -> np.ndarray:
    """(M,) 1 - the best correlation of the centre of ``thumbs[a[i]]`` with a window of
    ``thumbs[b[i]]`` moved by up to ``shift`` pixels each way; thumbs (N, s, s) grey.

    Each window is compared after removing its brightness and contrast (zero mean, unit
    norm), so a copy shifted by a pixel, brightened or re-encoded scores ~0 while a natural
    look-alike does not. Window sums are computed once per item; per pair only the dot
    products remain (one grouped convolution: 9 of (s-2)^2 for ``shift=1``).
    """
    import torch

    t = torch.from_numpy(np.ascontiguousarray(thumbs, dtype=np.float32))
    s = t.shape[-1]
    r, c = int(shift), s - 2 * int(shift)
    if t.ndim != 3 or t.shape[1] != s or c < 2 or r < 0:
        raise ValueError(f"thumbs must be (N, s, s) with s > 2 * shift + 1 and shift >= 0; "
                         f"got shape {tuple(t.shape)}, shift {shift}")
    offsets = [(dy, dx) for dy in range(2 * r + 1) for dx in range(2 * r + 1)]
    # per item and offset: norm of the window around its mean (integral images)
    cum = torch.nn.functional.pad(t, (1, 0, 1, 0)).cumsum(1).cumsum(2)
    cum2 = torch.nn.functional.pad(t * t, (1, 0, 1, 0)).cumsum(1).cumsum(2)

    def box(z: Any, dy: int, dx: int) -> Any:
        return z[:, dy + c, dx + c] - z[:, dy, dx + c] - z[:, dy + c, dx] + z[:, dy, dx]

    sums = torch.stack([box(cum, dy, dx) for dy, dx in offsets], 1)
    norms = (torch.stack([box(cum2, dy, dx) for dy, dx in offsets], 1) - sums ** 2 / c ** 2)
    norms = norms.clamp_min(0).sqrt() + 1e-6  # (N, S)
    a = torch.from_numpy(np.asarray(a, dtype=np.int64))
    b = torch.from_numpy(np.asarray(b, dtype=np.int64))
    out = np.empty(len(a), dtype=np.float32)
    with torch.no_grad():
        for i in range(0, len(a), chunk):
            ai, bi = a[i:i + chunk], b[i:i + chunk]
            core = t[ai, r:s - r, r:s - r]
            core = core - core.mean((1, 2), keepdim=True)
            core = core / (core.flatten(1).norm(dim=1)[:, None, None] + 1e-6)
            dots = torch.nn.functional.conv2d(t[bi][None], core[:, None],
                                              groups=len(ai))[0].flatten(1)  # (B, S)
            out[i:i + chunk] = (1 - (dots / norms[bi]).amax(1)).numpy()
    return np.clip(out, 0.0, 2.0)


def knn_search(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine k-NN of rows of ``x`` among themselves -> (sims (N, k), idx (N, k)), each row
    itself first (sim 1), then its k - 1 nearest others: ``neighbour_smoothing.knn_table``
    without its disk cache (the table a Session shares: exact below 20,000 rows, else a faiss
    inverted-file index probing 32 lists, recall@10 0.995 at 60k; 8 lists before: 0.92)."""
    from .neighbour_smoothing import knn_table

    sims, idx = knn_table(x, k=k - 1, cache=False)
    n = len(idx)
    return (np.concatenate([np.ones((n, 1), np.float32), sims], axis=1),
            np.concatenate([np.arange(n, dtype=np.int64)[:, None], idx], axis=1))


def pixel_neighbours(thumbs: np.ndarray, *, k: int = 10) -> np.ndarray:
    """(N, k) candidate near-duplicates by 8x8 pooled thumbnails (faiss), self included."""
    import torch

    pooled = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(thumbs)[:, None], 8)
    return knn_search(_unit_rows(pooled.reshape(len(thumbs), -1).numpy()), k + 1)[1]


def knn_graph(indices: np.ndarray, distances: np.ndarray) -> Any:
    """(N, k) neighbour indices and distances (self and -1 allowed) -> (N, N) CSR graph
    of the k' nearest other items per row, ascending (what Datalab's ``knn_graph`` takes)."""
    from scipy.sparse import csr_matrix

    idx = np.asarray(indices, dtype=np.int64)
    dist = np.asarray(distances, dtype=np.float64)
    n = len(idx)
    bad = (idx < 0) | (idx == np.arange(n)[:, None])
    dist = np.where(bad, np.inf, dist)
    order = np.argsort(dist, axis=1, kind="stable")
    idx, dist = np.take_along_axis(idx, order, 1), np.take_along_axis(dist, order, 1)
    k = int((~np.isinf(dist)).sum(axis=1).min())
    if k < 1:
        raise ValueError("every item needs at least one neighbour other than itself")
    data = np.maximum(dist[:, :k], 1e-9)  # explicit zeros would be dropped by scipy
    return csr_matrix((data.ravel(), idx[:, :k].ravel(), np.arange(0, n * k + 1, k)),
                      shape=(n, n))


def _groups(n: int, pairs: np.ndarray) -> np.ndarray:
    """(N,) connected-component id per item over (M, 2) pairs; -1 for items in no pair."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    out = np.full(n, -1, dtype=np.int64)
    if not len(pairs):
        return out
    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    inside = np.zeros(n, dtype=bool)
    inside[pairs.ravel()] = True
    _, out[inside] = np.unique(comp[inside], return_inverse=True)
    return out


def _group_rows(kind: str, group: np.ndarray, score: np.ndarray, prefer: np.ndarray,
                offset: int) -> tuple[list[dict], int]:
    """Rows for grouped items: the one to keep (preferred, then lowest index) and the rest."""
    rows = []
    for g in range(int(group.max(initial=-1)) + 1):
        members = np.flatnonzero(group == g)
        keep = members[np.lexsort((members, ~prefer[members]))[0]]
        for i in members:
            rows.append({"index": int(i), "kind": kind, "score": float(score[i]),
                         "group": offset + g, "suggested": None,
                         "suggestion": "keep" if i == keep else f"exclude: a copy of {keep}"})
    return rows, offset + int(group.max(initial=-1)) + 1


def find_data_issues(
    *,
    graph: Any,
    hashes: np.ndarray | None = None,
    thumbs: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    pred_probs: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    prefer: np.ndarray | None = None,
    duplicate_distance: float = NEAR_DUPLICATE_DISTANCE,
    outlier_threshold: float | None = None,
    island_fraction: float = ISLAND_FRACTION,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """One report over N items: DataFrame[index, kind, score, group, suggestion, suggested].

    ``graph``: (N, N) CSR k-NN graph of embedding distances (:func:`knn_graph`).
    ``hashes`` (N,) content hashes -> exact duplicates. ``thumbs`` (N, s, s) grey
    thumbnails -> near-duplicate candidates (pixel and embedding neighbours) checked by
    shifted pixel correlation (else the embedding graph alone). ``labels`` (N,) int codes
    into ``class_names`` (-1 = unlabeled) with ``pred_probs`` (N, K) out-of-fold
    probabilities (rows of unlabeled items ignored) -> label errors and class imbalance.
    ``prefer`` (N,) bool: items kept first in a duplicate group (e.g. labeled ones).
    ``score`` in [0, 1], higher = more clearly an issue; ``group`` numbers duplicate groups
    (-1 otherwise); ``suggested`` the class for a label error.
    """
    def step(fraction: float, text: str) -> None:
        if progress is not None:
            progress(fraction, text)

    n = graph.shape[0]
    prefer = np.zeros(n, dtype=bool) if prefer is None else np.asarray(prefer, dtype=bool)
    rows: list[dict] = []
    offset = 0
    exact = np.full(n, -1, dtype=np.int64)
    if hashes is not None:
        h = np.asarray(hashes)
        _, inv, counts = np.unique(h, return_inverse=True, return_counts=True)
        dup = counts[inv] > 1
        exact[dup] = np.unique(inv[dup], return_inverse=True)[1]
        grouped, offset = _group_rows("exact_duplicate", exact, np.ones(n), prefer, offset)
        rows += grouped
    step(0.1, "near-duplicates")
    rows_nd, offset = _near_duplicates(graph, thumbs, exact, prefer, duplicate_distance, offset)
    rows += rows_nd
    step(0.5, "outliers")
    score, is_out = _outliers(graph, outlier_threshold, island_fraction)
    for i in np.flatnonzero(is_out):
        rows.append({"index": int(i), "kind": "outlier", "group": -1, "suggested": None,
                     "score": float(score[i]),
                     "suggestion": "check: far from the rest of the data; exclude if stray"})
    step(0.8, "label errors")
    if labels is not None and pred_probs is not None:
        rows += _label_rows(np.asarray(labels), np.asarray(pred_probs, dtype=np.float32),
                            list(class_names or []))
    step(1.0, "done")
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["kind"] = pd.Categorical(df["kind"], categories=list(KINDS))
    df = df.sort_values(["kind", "group", "score"], ascending=[True, True, False],
                        kind="stable").reset_index(drop=True)
    df["kind"] = df["kind"].astype(str)
    return df.astype({"index": "int64", "score": "float32", "group": "int64"})


def _near_duplicates(graph: Any, thumbs: np.ndarray | None, exact: np.ndarray,
                     prefer: np.ndarray, distance: float, offset: int
                     ) -> tuple[list[dict], int]:
    """Near-duplicate groups, in two stages: candidate pairs (each item's 5 nearest in the
    embedding graph and, with thumbs, its 5 nearest 8x8 pixel layouts), then confirmed on pixels
    (:func:`pixel_distance` < ``distance``; without thumbs the embedding distance decides);
    confirmed pairs joined into groups (connected components), as Datalab's near_duplicate."""
    n = graph.shape[0]
    k = graph.nnz // n
    cand = graph.indices.reshape(n, k)
    if thumbs is None:
        pairs = np.c_[np.repeat(np.arange(n), k), cand.ravel()]
        dist = graph.data.astype(np.float32)
    else:
        cand = np.concatenate([cand[:, :CANDIDATES], pixel_neighbours(thumbs, k=CANDIDATES)],
                              axis=1)
        pairs = np.sort(np.c_[np.repeat(np.arange(n), cand.shape[1]), cand.ravel()], axis=1)
        pairs = pairs[(pairs[:, 0] != pairs[:, 1]) & (pairs[:, 0] >= 0)]
        key = np.unique(pairs[:, 0] * n + pairs[:, 1])  # found twice (stages, ends): once
        pairs = np.c_[key // n, key % n]
        dist = pixel_distance(thumbs, pairs[:, 0], pairs[:, 1])
    close = dist < distance
    pairs, dist = pairs[close], dist[close]
    best = np.full(n, np.inf, dtype=np.float32)
    np.minimum.at(best, pairs[:, 0], dist)
    np.minimum.at(best, pairs[:, 1], dist)
    pairs = pairs[(exact[pairs[:, 0]] < 0) | (exact[pairs[:, 0]] != exact[pairs[:, 1]])]
    score = np.clip(1 - best / max(2 * distance, 1e-9), 0, 1)  # 1 = identical
    return _group_rows("near_duplicate", _groups(n, pairs.reshape(-1, 2)), score, prefer,
                       offset)


def _islands(graph: Any, max_fraction: float) -> np.ndarray:
    """(N,) size of the item's island, 0 for the mainland: connected components of the
    symmetrised k-NN graph other than the largest, with at most ``max_fraction`` of the
    items (a small dense cluster no item of the rest has among its neighbours)."""
    from scipy.sparse.csgraph import connected_components

    n = graph.shape[0]
    _, comp = connected_components(graph + graph.T, directed=False)
    sizes = np.bincount(comp)
    small = (sizes <= max_fraction * n) & (np.arange(len(sizes)) != sizes.argmax())
    return np.where(small[comp], sizes[comp], 0)


def _outliers(graph: Any, threshold: float | None, island_fraction: float = ISLAND_FRACTION
              ) -> tuple[np.ndarray, np.ndarray]:
    """Outliers at two levels -> (score (N,) in [0, 1], is_outlier (N,) bool).

    Item level, Datalab's rule on a k-NN graph: mean distance to the neighbours above
    Q3 + (1 / threshold - 1) * IQR (default 0.1: Q3 + 9 IQR, far out; Datalab's 0.37,
    Q3 + 1.7 IQR, flags ~2.5% of any data set). Cluster level: items of a small island of
    the k-NN graph (:func:`_islands`), which an item-level rule misses because their
    neighbours are each other (e.g. a batch of images from another domain)."""
    from cleanlab.internal.outlier import transform_distances_to_scores

    n = graph.shape[0]
    avg = graph.data.reshape(n, -1).mean(axis=1)
    t = OUTLIER_THRESHOLD if threshold is None else float(threshold)
    if not 0 < t <= 1:
        raise ValueError(f"outlier_threshold must be in (0, 1]; got {threshold!r}")
    q1, q3 = np.percentile(avg, [25, 75])
    limit = q3 + (1 / t - 1) * (q3 - q1)
    quality = transform_distances_to_scores(avg, t=1, scaling_factor=max(float(np.median(avg)),
                                                                          1e-12))
    score = (1 - quality).astype(np.float32)
    island = _islands(graph, island_fraction) if island_fraction > 0 else np.zeros(n, int)
    on_island = island > 0
    score[on_island] = np.maximum(score[on_island], 1 - 0.5 * island[on_island]
                                  / max(island_fraction * n, 1.0))
    return score, (avg > limit) | on_island


def _label_rows(codes: np.ndarray, probs: np.ndarray, names: list[str]) -> list[dict]:
    """Label errors (cleanlab.filter.find_label_issues, confident learning) and class
    imbalance (a class with under 0.1 / K of the labels, Datalab's rule) among labeled items."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    rows = np.flatnonzero(codes >= 0)
    present = np.unique(codes[rows])
    if len(present) < 2 or len(rows) < 10:
        return []
    cols = present  # columns of the classes with labels; cleanlab wants labels 0..K-1
    y = np.searchsorted(cols, codes[rows])
    p = probs[np.ix_(rows, cols)]
    p = p / np.clip(p.sum(axis=1, keepdims=True), 1e-12, None)
    if np.bincount(y).min() < 2:
        return []
    from .issues import CLEANLAB_JOBS

    found = find_label_issues(labels=y, pred_probs=p, filter_by="prune_by_noise_rate",
                              n_jobs=CLEANLAB_JOBS)
    quality = get_label_quality_scores(y, p)
    out: list[dict] = []
    for j in np.flatnonzero(found):
        c = int(cols[int(p[j].argmax())])
        name = names[c] if names else str(c)
        out.append({"index": int(rows[j]), "kind": "label_error", "group": -1,
                    "score": float(1 - quality[j]), "suggested": name,
                    "suggestion": f"relabel as {name!r}"})
    counts = np.bincount(y, minlength=len(cols))
    for c in np.flatnonzero(counts < 0.1 / len(cols) * len(rows)):
        name = names[int(cols[c])] if names else str(int(cols[c]))
        for j in np.flatnonzero(y == c):
            out.append({"index": int(rows[j]), "kind": "class_imbalance", "group": -1,
                        "score": float(1 - counts[c] / len(rows) * len(cols)), "suggested": None,
                        "suggestion": f"label more {name!r} items ({counts[c]} of {len(rows)} "
                                      "labels)"})
    return out
