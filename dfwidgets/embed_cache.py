"""On-disk cache of embedding vectors, keyed by embedder and per-item content hash."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from dfwidgets._config import cache_dir as _cache_dir

log = logging.getLogger(__name__)

__all__ = ["EmbeddingCache"]

_SHARD_GLOB = "shard-*.npz"
_HASH_DTYPE = np.dtype("S16")


class EmbeddingCache:
    """Vectors for one embedder (``key``), looked up by item content hash.

    Layout: ``<cache_dir>/<slug>-<sha1(key)[:12]>/`` holding ``key.txt`` and immutable
    shard files ``shard-<uuid>.npz`` (``hashes`` (M,) "S16", ``vectors`` (M,D) float32).
    Every write goes to a temporary file that is then ``os.replace``-d into place, so a
    killed process or several concurrent writers never leave a half-written shard; a
    reader only sees complete shards. Many small shards are merged into one
    (``compact``) so lookups stay a single ``np.load``.

    Because items are keyed by the blake2b hash of their *content*, a changed image gets
    a new hash and is recomputed (never a stale vector); unchanged ones come from disk.
    """

    def __init__(self, key: str, *, cache_dir: str | os.PathLike | None = None,
                 max_shards: int = 8) -> None:
        if not key:
            raise ValueError("EmbeddingCache needs a non-empty key (the embedder's cache_key)")
        self.key = key
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[:60].strip("_")
        digest = hashlib.sha1(key.encode()).hexdigest()[:12]
        self.path = _cache_dir(cache_dir, sub="embeddings") / f"{slug}-{digest}"
        self.path.mkdir(parents=True, exist_ok=True)
        key_file = self.path / "key.txt"
        if not key_file.exists():
            self._atomic_write_bytes(key_file, key.encode())
        self.max_shards = max_shards

    # -- reading -------------------------------------------------------------------------
    def _shards(self) -> list[Path]:
        return sorted(self.path.glob(_SHARD_GLOB))

    def _load_all(self) -> tuple[np.ndarray, np.ndarray | None]:
        """All cached (hashes (M,), vectors (M,D)); tolerates shards vanishing mid-read
        (a concurrent compaction) by listing again."""
        for _attempt in range(5):
            hashes, vectors = [], []
            try:
                for shard in self._shards():
                    with np.load(shard, allow_pickle=False) as z:
                        hashes.append(z["hashes"])
                        vectors.append(z["vectors"])
            except FileNotFoundError:
                time.sleep(0.05)
                continue
            except (OSError, ValueError, KeyError) as exc:  # unreadable shard: skip it
                log.warning("ignoring unreadable embedding cache shard in %s: %s", self.path, exc)
                hashes, vectors = self._load_readable()
            if not hashes:
                return np.empty(0, _HASH_DTYPE), None
            dims = {v.shape[1] for v in vectors}
            if len(dims) != 1:
                raise RuntimeError(
                    f"embedding cache {self.path} mixes vector sizes {sorted(dims)}; delete the "
                    "folder to rebuild it"
                )
            return np.concatenate(hashes), np.concatenate(vectors)
        raise RuntimeError(f"embedding cache {self.path} kept changing while being read")

    def _load_readable(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        hashes, vectors = [], []
        for shard in self._shards():
            try:
                with np.load(shard, allow_pickle=False) as z:
                    hashes.append(z["hashes"])
                    vectors.append(z["vectors"])
            except (OSError, ValueError, KeyError):
                continue
        return hashes, vectors

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Find cached vectors for ``hashes`` (N,) "S16".

        Returns ``(found (N,) bool, vectors (N,D) float32 or None)``; rows of ``vectors``
        where ``found`` is False are zero. ``vectors`` is None when nothing is cached.
        """
        hashes = np.asarray(hashes, dtype=_HASH_DTYPE)
        cached_hashes, cached_vectors = self._load_all()
        found = np.zeros(len(hashes), dtype=bool)
        if cached_vectors is None or len(hashes) == 0:
            return found, None
        order = np.argsort(cached_hashes, kind="stable")
        sorted_hashes = cached_hashes[order]
        pos = np.searchsorted(sorted_hashes, hashes)
        pos_clipped = np.minimum(pos, len(sorted_hashes) - 1)
        found = sorted_hashes[pos_clipped] == hashes
        out = np.zeros((len(hashes), cached_vectors.shape[1]), dtype=np.float32)
        out[found] = cached_vectors[order[pos_clipped[found]]]
        return found, out

    def __len__(self) -> int:
        """Number of distinct cached items."""
        return len(np.unique(self._load_all()[0]))

    # -- writing -------------------------------------------------------------------------
    def add(self, hashes: np.ndarray, vectors: np.ndarray) -> None:
        """Store ``vectors`` (M,D) float32 under content ``hashes`` (M,) "S16"."""
        hashes = np.asarray(hashes, dtype=_HASH_DTYPE)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(hashes):
            raise ValueError(
                f"add() needs hashes (M,) and vectors (M,D); got {hashes.shape} and {vectors.shape}"
            )
        if len(hashes) == 0:
            return
        self._write_shard(hashes, vectors)
        if len(self._shards()) > self.max_shards:
            self.compact()

    def compact(self) -> None:
        """Merge all shards into one (deduplicated by hash)."""
        shards = self._shards()
        if len(shards) <= 1:
            return
        hashes, vectors = self._load_all()
        if vectors is None:
            return
        hashes, first = np.unique(hashes, return_index=True)
        self._write_shard(hashes, vectors[first])
        for shard in shards:  # only the shards that were merged; newer ones stay
            try:
                shard.unlink()
            except FileNotFoundError:
                pass
        self._remove_stale_temp_files()

    def clear(self) -> None:
        """Delete every cached vector for this key."""
        for shard in self._shards():
            shard.unlink(missing_ok=True)

    def _write_shard(self, hashes: np.ndarray, vectors: np.ndarray) -> Path:
        target = self.path / f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.npz"
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, hashes=hashes, vectors=vectors)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache may be shared
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def _atomic_write_bytes(self, target: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)

    def _remove_stale_temp_files(self, max_age_s: float = 3600.0) -> None:
        """Temp files left by killed processes (older than an hour) are removed."""
        now = time.time()
        for tmp in self.path.glob(".tmp-*"):
            try:
                if now - tmp.stat().st_mtime > max_age_s:
                    tmp.unlink()
            except FileNotFoundError:
                pass

    def __repr__(self) -> str:
        return f"EmbeddingCache(key={self.key!r}, path='{self.path}')"
