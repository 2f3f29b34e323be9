"""Content hashes of images: blake2b-128 per item, with an on-disk cache for files.

File hashes are cached by (absolute path, size, mtime_ns) in memory per source and in a
SQLite file under ``cache_dir(sub="hashes")``, so only changed files are read again.
Every function returns an ``(N,)`` array of dtype ``S16``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from dfwidgets._config import cache_dir
from dfwidgets.data.decoding import IO_THREADS

__all__ = ["HASH_BYTES", "array_hashes", "file_hashes", "hash_file", "image_hashes"]

logger = logging.getLogger(__name__)

HASH_BYTES = 16
_HASH_CACHE_FILE = "file_hashes.sqlite"
FileMemo = dict[str, tuple[int, int, bytes]]  # abs path -> (size, mtime_ns, hash)


def array_hashes(array: np.ndarray) -> np.ndarray:
    """``(N,)`` S16 hashes of the images of a uint8 array ``(N, H, W[, C])`` (bytes + shape)."""
    base = hashlib.blake2b(repr(array.shape[1:]).encode(), digest_size=HASH_BYTES)
    out = np.empty(len(array), dtype=f"S{HASH_BYTES}")
    for i, a in enumerate(array):
        h = base.copy()
        h.update(np.ascontiguousarray(a).data)
        out[i] = h.digest()
    return out


def image_hashes(images: Any, n: int) -> np.ndarray:
    """``(N,)`` S16 hashes of ``images[0] .. images[n-1]`` decoded (pixels + shape)."""
    out = np.empty(n, dtype=f"S{HASH_BYTES}")
    for i in range(n):
        img = np.asarray(images[i])
        out[i] = hashlib.blake2b(img.tobytes() + repr(img.shape).encode(),
                                 digest_size=HASH_BYTES).digest()
    return out


def hash_file(path: str) -> bytes:
    """blake2b-128 of a file's bytes."""
    h = hashlib.blake2b(digest_size=HASH_BYTES)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.digest()


def _hash_missing(path: str, reason: str) -> bytes:
    return hashlib.blake2b(f"dfwidgets-missing:{reason}:{path}".encode(),
                           digest_size=HASH_BYTES).digest()


def _open_hash_db() -> sqlite3.Connection:
    db = sqlite3.connect(cache_dir(sub="hashes") / _HASH_CACHE_FILE, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS file_hash (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
        "mtime_ns INTEGER NOT NULL, hash BLOB NOT NULL)"
    )
    return db


def file_hashes(paths: list[str], *, memo: FileMemo) -> np.ndarray:
    """``(N,)`` S16 blake2b-128 of each file's bytes, cached by (absolute path, size, mtime_ns).

    ``memo`` (per source, in memory) is checked first, then the SQLite cache under
    ``cache_dir(sub="hashes")``; only files whose size or mtime changed are read.
    """
    n = len(paths)
    out = np.empty(n, dtype=f"S{HASH_BYTES}")
    keys: list[tuple[str, int, int] | None] = [None] * n
    misses: list[int] = []
    for i, p in enumerate(paths):
        if not p:
            out[i] = _hash_missing(p, "no path")
            continue
        try:
            st = os.stat(p)
        except OSError as exc:
            out[i] = _hash_missing(p, type(exc).__name__)
            continue
        key = (p if os.path.isabs(p) else os.path.abspath(p), st.st_size, st.st_mtime_ns)
        keys[i] = key
        hit = memo.get(key[0])
        if hit is not None and hit[0] == key[1] and hit[1] == key[2]:
            out[i] = hit[2]
        else:
            misses.append(i)
    if not misses:
        return out
    try:
        db: sqlite3.Connection | None = _open_hash_db()
        known = _lookup_hashes(db, [keys[i][0] for i in misses])  # type: ignore[index,arg-type]
    except sqlite3.Error as exc:  # e.g. a read-only cache folder: hash without the cache
        logger.warning("file hash cache unavailable (%s); hashing every file.", exc)
        db, known = None, {}
    try:
        todo = []
        for i in misses:
            key = keys[i]
            assert key is not None
            hit = known.get(key[0])
            if hit is not None and hit[0] == key[1] and hit[1] == key[2]:
                out[i] = hit[2]
                memo[key[0]] = hit
            else:
                todo.append(i)
        if todo:
            rows = _hash_todo(paths, todo, keys, out, memo)
            if db is not None:
                try:
                    with db:
                        db.executemany("INSERT OR REPLACE INTO file_hash VALUES (?, ?, ?, ?)", rows)
                except sqlite3.Error as exc:
                    logger.warning("could not update the file hash cache: %s", exc)
    finally:
        if db is not None:
            db.close()
    return out


def _hash_todo(paths: list[str], todo: list[int], keys: list[tuple[str, int, int] | None],
               out: np.ndarray, memo: FileMemo) -> list[tuple[str, int, int, bytes]]:
    """Hash files ``todo`` in threads into ``out`` and ``memo``; the rows for the cache."""
    def work(i: int) -> bytes:
        try:
            return hash_file(paths[i])
        except OSError as exc:
            return _hash_missing(paths[i], type(exc).__name__)

    with ThreadPoolExecutor(max_workers=min(IO_THREADS, os.cpu_count() or 1)) as pool:
        digests = list(pool.map(work, todo, chunksize=64))
    rows = []
    for i, d in zip(todo, digests):
        key = keys[i]
        assert key is not None
        out[i] = d
        memo[key[0]] = (key[1], key[2], d)
        rows.append((key[0], key[1], key[2], d))
    return rows


def _lookup_hashes(db: sqlite3.Connection, wanted: list[str]) -> FileMemo:
    """Cached (size, mtime_ns, hash) for the wanted absolute paths."""
    wanted_set = set(wanted)
    total = db.execute("SELECT COUNT(*) FROM file_hash").fetchone()[0]
    if total <= 4 * len(wanted_set):  # cheaper to read the whole (small) table
        rows = db.execute("SELECT path, size, mtime_ns, hash FROM file_hash")
        return {r[0]: (r[1], r[2], bytes(r[3])) for r in rows if r[0] in wanted_set}
    known: FileMemo = {}
    chunk_list = sorted(wanted_set)
    for start in range(0, len(chunk_list), 500):
        chunk = chunk_list[start:start + 500]
        rows = db.execute(
            f"SELECT path, size, mtime_ns, hash FROM file_hash WHERE path IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        known.update({r[0]: (r[1], r[2], bytes(r[3])) for r in rows})
    return known
