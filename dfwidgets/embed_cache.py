"""On-disk cache of embedding vectors, keyed by embedder and per-item content hash."""

from __future__ import annotations

import contextlib
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

__all__ = ["CacheSnapshot", "EmbeddingCache"]

_SHARD_GLOB = "shard-*.hashes.npy"  # the hashes file is written last: it marks a complete shard
_HASH_DTYPE = np.dtype("S16")
_COMPACT_ROWS = 2048  # vector rows per read/write while merging shards


class EmbeddingCache:
    """Vectors for one embedder (``key``), looked up by item content hash.

    Layout: ``<cache_dir>/<slug>-<sha1(key)[:12]>/`` holding ``key.txt`` and immutable
    shards, each two ``.npy`` files: ``shard-<id>.vectors.npy`` (M,D) float32, written
    first, then ``shard-<id>.hashes.npy`` (M,) "S16", whose presence marks the shard
    complete. Each file goes to a temporary name and is ``os.replace``-d into place, so a
    killed process or several concurrent writers never expose a half-written shard.
    Lookups read the small hash files and memory-map the vectors, copying only the rows
    asked for; many shards are merged into one (``compact``).

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
            self._atomic_write(key_file, lambda f: f.write(key.encode()))
        self.max_shards = max_shards

    # -- reading -------------------------------------------------------------------------
    def _shards(self) -> list[Path]:
        """Hash files of complete shards, oldest first."""
        return sorted(self.path.glob(_SHARD_GLOB))

    @staticmethod
    def _vectors_file(hashes_file: Path) -> Path:
        return hashes_file.with_name(hashes_file.name.replace(".hashes.npy", ".vectors.npy"))

    def _open_all(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(hashes (M,), memory-mapped vectors (M,D))] for every readable shard; a shard
        removed meanwhile by a concurrent compaction makes it list again."""
        for _attempt in range(5):
            shards = []
            try:
                for hashes_file in self._shards():
                    try:
                        hashes = np.load(hashes_file, allow_pickle=False)
                        vectors = np.load(self._vectors_file(hashes_file), mmap_mode="r",
                                          allow_pickle=False)
                    except FileNotFoundError:
                        if not hashes_file.exists():
                            raise  # merged away by a concurrent compaction: list again
                        log.warning("ignoring embedding cache shard %s: its vectors file is missing",
                                    hashes_file.name)
                        continue
                    except (OSError, ValueError) as exc:
                        log.warning("ignoring unreadable embedding cache shard %s: %s",
                                    hashes_file.name, exc)
                        continue
                    if hashes.dtype != _HASH_DTYPE or vectors.ndim != 2 or len(vectors) != len(hashes):
                        log.warning("ignoring unreadable embedding cache shard %s: shapes %s / %s",
                                    hashes_file.name, hashes.shape, vectors.shape)
                        continue
                    shards.append((hashes, vectors))
            except FileNotFoundError:
                time.sleep(0.05)
                continue
            dims = {v.shape[1] for _, v in shards}
            if len(dims) > 1:
                raise RuntimeError(
                    f"embedding cache {self.path} mixes vector sizes {sorted(dims)}; delete the "
                    "folder to rebuild it"
                )
            return shards
        raise RuntimeError(f"embedding cache {self.path} kept changing while being read")

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Find cached vectors for ``hashes`` (N,) "S16".

        Returns ``(found (N,) bool, vectors (N,D) float32 or None)``; rows of ``vectors``
        where ``found`` is False are zero. ``vectors`` is None when nothing is cached.
        """
        return CacheSnapshot(self._open_all()).lookup(hashes)

    def snapshot(self) -> CacheSnapshot:
        """The shards present now, opened once: many fast lookups during a long run."""
        return CacheSnapshot(self._open_all())

    def __len__(self) -> int:
        """Number of distinct cached items."""
        shards = self._open_all()
        return len(np.unique(np.concatenate([h for h, _ in shards]))) if shards else 0

    # -- writing -------------------------------------------------------------------------
    def add(self, hashes: np.ndarray, vectors: np.ndarray) -> None:
        """Store ``vectors`` (M,D) float32 under content ``hashes`` (M,) "S16"."""
        hashes = np.asarray(hashes, dtype=_HASH_DTYPE)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)  # C order: compact() streams rows
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
        """Merge all shards into one (deduplicated by hash; newest vector wins).

        Streamed: only the (M,) hashes are held; vectors are copied a few thousand rows at
        a time with plain file reads and writes (no memory map), so memory does not grow
        with the size of the cache."""
        shard_files = self._shards()
        if len(shard_files) <= 1:
            return
        shards = self._open_all()
        if not shards:
            return
        newest_first = list(reversed(shards))
        hashes = np.concatenate([h for h, _ in newest_first])
        _, first = np.unique(hashes, return_index=True)
        keep = np.zeros(len(hashes), dtype=bool)
        keep[first] = True
        dim = newest_first[0][1].shape[1]
        sources = [(v.filename if v.flags.c_contiguous else v, v.offset, v.dtype, len(h))
                   for h, v in newest_first]  # a Fortran-order shard (older caches): via its map
        del shards, newest_first  # close the other memory maps

        def write_vectors(f) -> None:
            np.lib.format.write_array_header_1_0(
                f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                    "fortran_order": False, "shape": (int(keep.sum()), dim)})
            start = 0
            for source, offset, dtype, rows in sources:
                with contextlib.ExitStack() as stack:
                    src = None if isinstance(source, np.ndarray) else stack.enter_context(open(source, "rb"))
                    for lo in range(0, rows, _COMPACT_ROWS):
                        hi = min(rows, lo + _COMPACT_ROWS)
                        if src is None:
                            block = np.asarray(source[lo:hi])
                        else:
                            src.seek(offset + lo * dim * dtype.itemsize)
                            block = np.fromfile(src, dtype=dtype, count=(hi - lo) * dim).reshape(-1, dim)
                        rows_kept = block[keep[start + lo:start + hi]]
                        f.write(np.ascontiguousarray(rows_kept, dtype=np.float32).data)
                start += rows

        stem = f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        try:
            self._atomic_write(self.path / f"{stem}.vectors.npy", write_vectors)
        except FileNotFoundError:
            log.info("embedding cache %s: shards merged meanwhile by another process", self.path)
            return
        self._atomic_write(self.path / f"{stem}.hashes.npy", lambda f: np.save(f, hashes[keep]))
        for hashes_file in shard_files:  # only the shards merged; newer ones stay
            hashes_file.unlink(missing_ok=True)  # the shard disappears for readers first
            self._vectors_file(hashes_file).unlink(missing_ok=True)
        self._remove_stale_temp_files()

    def clear(self) -> None:
        """Delete every cached vector for this key."""
        for hashes_file in self._shards():
            hashes_file.unlink(missing_ok=True)
            self._vectors_file(hashes_file).unlink(missing_ok=True)

    def _write_shard(self, hashes: np.ndarray, vectors: np.ndarray) -> None:
        stem = f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        self._atomic_write(self.path / f"{stem}.vectors.npy", lambda f: np.save(f, vectors))
        self._atomic_write(self.path / f"{stem}.hashes.npy", lambda f: np.save(f, hashes))

    def _atomic_write(self, target: Path, write) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache may be shared
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _remove_stale_temp_files(self, max_age_s: float = 3600.0) -> None:
        """Temp files and orphan vector files left by killed processes (over an hour old)."""
        now = time.time()
        complete = {self._vectors_file(h).name for h in self._shards()}
        for path in [*self.path.glob(".tmp-*"), *self.path.glob("shard-*.vectors.npy")]:
            if path.name in complete:
                continue
            try:
                if now - path.stat().st_mtime > max_age_s:
                    path.unlink()
            except FileNotFoundError:
                pass

    def __repr__(self) -> str:
        return f"EmbeddingCache(key={self.key!r}, path='{self.path}')"


class CacheSnapshot:
    """Read-only view of the complete shards of a cache at one moment.

    ``known``: (K,) sorted unique "S16" hashes of every cached item (for membership tests,
    e.g. shipped to Ray tasks); :meth:`lookup` reads vectors from the memory-mapped shards.
    """

    def __init__(self, shards: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self._shards = []  # newest first: (u64 keys (M,2), order of keys[:,0], vectors (M,D))
        for cached, vectors in reversed(shards):
            keys = _as_u64_pairs(cached)
            order = np.argsort(keys[:, 0])
            self._shards.append((keys, order, keys[order, 0], vectors))
        self.dim = shards[0][1].shape[1] if shards else None
        known = [h for h, _ in shards]
        self.known = np.unique(np.concatenate(known)) if known else np.zeros(0, _HASH_DTYPE)

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(found (N,) bool, vectors (N,D) float32 or None)`` for ``hashes`` (N,) "S16"."""
        hashes = np.ascontiguousarray(hashes, dtype=_HASH_DTYPE)
        found = np.zeros(len(hashes), dtype=bool)
        if not self._shards or len(hashes) == 0:
            return found, None
        out = np.zeros((len(hashes), self.dim), dtype=np.float32)
        query = _as_u64_pairs(hashes)
        for keys, order, first_words, vectors in self._shards:
            todo = np.flatnonzero(~found)
            if len(todo) == 0:
                break
            pos = np.searchsorted(first_words, query[todo, 0]).clip(0, len(keys) - 1)
            rows = order[pos]
            # full 16-byte check, so a prefix collision is a miss, never a wrong vector
            hit = (keys[rows] == query[todo]).all(axis=1)
            if hit.any():
                take = rows[hit]
                sort = np.argsort(take)  # read the memory map in file order
                out[todo[hit][sort]] = vectors[take[sort]]
                found[todo[hit]] = True
        return found, out


def _as_u64_pairs(hashes: np.ndarray) -> np.ndarray:
    """(N,) "S16" hashes -> (N,2) uint64 view: fast to sort (first word) and compare."""
    return np.ascontiguousarray(hashes, dtype=_HASH_DTYPE).view(np.uint64).reshape(-1, 2)
