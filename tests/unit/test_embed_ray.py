"""engine="ray" on a local Ray (2 CPUs): the same vectors as the local engine on real
Fashion-MNIST and the same cache, resume after an interrupted run (model calls counted in
the actors) with a worker killed mid-run in the same resumed run, a corrupt file, and the
Parquet round trip into Session.open (the named model built in the actors, equal to the
local engine, in both); decoding in the model actors (the CPU default) and, in the corrupt
file test, in Ray tasks (the GPU layout). One local Ray for the module: every Ray run starts fresh model actors
(a Python process importing Ray and torch each), so runs are shared where a test can
prove two things with one."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
import uuid
import warnings
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

import dfwidgets as dfw
from dfwidgets.data import ImageSource
from dfwidgets.embed_cache import EmbeddingCache
from dfwidgets.embed_ray_import import STAND_IN_PATH, start_ray

embed_mod = importlib.import_module("dfwidgets.embed")
embed_ray = importlib.import_module("dfwidgets.embed_ray")

N = 256  # Fashion-MNIST test images used by the equality test


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray (2 CPUs) for the module."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    for attempt in (1, 2):  # Ray's raylet gives its agents a fixed 15 s to start
        try:  # (ray-project/ray#65983): on a loaded machine the first start can fail
            start_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # CountingEmbedder
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def fmnist_small():
    return dfw.datasets.fashion_mnist(split="test").subset(np.arange(N))


@pytest.fixture(scope="module")
def local_vectors(fmnist_small, tmp_path_factory):
    return dfw.embed(fmnist_small, model="efficientnet_lite0", progress=False,
                     cache_dir=tmp_path_factory.mktemp("local-cache"))


class _CountingModule:
    """Wraps a model: writes one file per call holding the batch size (works across Ray's
    processes); on call number ``crash_at`` of a fresh log it kills its process once."""

    def __init__(self, inner, log_dir: Path, crash_at: int | None) -> None:
        self.inner, self.log_dir, self.crash_at = inner, log_dir, crash_at

    def __call__(self, x):
        marker = self.log_dir / "crashed"
        if (self.crash_at is not None and not marker.exists()
                and len(list(self.log_dir.glob("call-*"))) >= self.crash_at):
            marker.write_text(str(os.getpid()))
            os._exit(1)  # a worker dying mid-run, not an exception
        (self.log_dir / f"call-{uuid.uuid4().hex}").write_text(str(len(x)))
        return self.inner(x)


class CountingEmbedder:
    """The offline backbone, counting the rows its model sees (an Embedder object)."""

    def __init__(self, log_dir: Path, *, crash_at: int | None = None, key: str = "count") -> None:
        inner = dfw.get_embedder("efficientnet_lite0", device="cpu")
        self.name, self.dim, self.image_size = inner.name, inner.dim, inner.image_size
        self.cache_key = f"{inner.cache_key}|{key}"
        self.supports_text, self.transform, self.device = False, inner.transform, "cpu"
        self.module = _CountingModule(inner.module, log_dir, crash_at)

    def embed_text(self, texts):  # pragma: no cover - image only
        raise ValueError("image only")


def rows_computed(log_dir: Path) -> int:
    return sum(int(p.read_text()) for p in log_dir.glob("call-*"))


def _write_images(folder: Path, images: np.ndarray) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, a in enumerate(images):
        paths.append(folder / f"img{i:03d}.png")
        PIL.Image.fromarray(a).save(paths[-1])
    return paths


# ----------------------------------------------------------------------------- no Ray
def test_without_ray_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(ImportError, match=r'pip install "dfwidgets\[ray\]"'):
        dfw.embed(np.zeros((2, 8, 8), np.uint8), model="pixels", engine="ray", cache=False)
    with pytest.raises(ValueError, match="engine must be"):
        dfw.embed(np.zeros((2, 8, 8), np.uint8), model="pixels", engine="spark", cache=False)


def test_the_iri_grammar_is_built_on_first_use_with_the_same_answers():
    """Issue 17: `import ray` imports jsonschema, which builds an RFC 3987 parser at import
    (~70% of `import ray`); embed_ray defers it to the first IRI check. A fresh process,
    because jsonschema may already be imported here."""
    pytest.importorskip("rfc3987_syntax")
    code = textwrap.dedent("""
        import sys
        from dfwidgets.embed_ray import _iri_grammar_on_first_use
        with _iri_grammar_on_first_use():
            import jsonschema
        assert "rfc3987_syntax" not in sys.modules, "the grammar was built at import"
        check = jsonschema.FormatChecker()
        answers = [check.conforms(v, f) for v, f in [
            ("http://example.com/\u00e4?x=1", "iri"), ("no spaces allowed", "iri"),
            ("../a/b", "iri-reference"), ("http://[bad", "iri-reference")]]
        assert "rfc3987_syntax.syntax_helpers" in sys.modules  # the real parser answered
        print(answers)
    """)
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                         text=True, timeout=600, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[True, False, True, False]"


def test_ray_processes_get_a_stand_in_that_builds_the_grammar_on_first_use():
    """The processes of a Ray that dfwidgets starts find dfwidgets/_ray_path first on their
    PYTHONPATH: jsonschema imports without building the grammar, answers come from the
    real package, and the driver's environment is restored after start-up."""
    pytest.importorskip("rfc3987_syntax")
    code = textwrap.dedent("""
        import sys
        import jsonschema
        assert "rfc3987_syntax.syntax_helpers" not in sys.modules, "grammar built at import"
        check = jsonschema.FormatChecker()
        print([check.conforms(v, f) for v, f in [
            ("http://example.com/\u00e4?x=1", "iri"), ("no spaces allowed", "iri"),
            ("../a/b", "iri-reference"), ("http://[bad", "iri-reference")]])
        assert "_ray_path" not in sys.modules["rfc3987_syntax"].__file__  # the real one
    """)
    env = {**os.environ, "PYTHONPATH": STAND_IN_PATH}
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                         text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[True, False, True, False]"
    from dfwidgets.embed_ray_import import stand_in_on_pythonpath

    before = os.environ.get("PYTHONPATH")
    with stand_in_on_pythonpath():
        assert os.environ["PYTHONPATH"].split(os.pathsep)[0] == STAND_IN_PATH
    assert os.environ.get("PYTHONPATH") == before


def test_local_engine_streams_a_parquet_of_paths_and_reads_back_by_id(tmp_path, monkeypatch):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    parquet_mod = importlib.import_module("dfwidgets.embed_parquet")
    monkeypatch.setattr(parquet_mod, "_CHUNK", 7)  # several chunks and row groups
    images = np.random.default_rng(0).integers(0, 256, size=(20, 16, 16), dtype=np.uint8)
    paths = [str(p) for p in _write_images(tmp_path / "imgs", images)]
    paths[3] = str(tmp_path / "imgs" / "gone.png")  # a missing file
    table = tmp_path / "paths.parquet"
    pq.write_table(pa.table({"id": [f"item{i}" for i in range(20)], "path": paths}), table)
    out = tmp_path / "emb.parquet"
    with pytest.warns(UserWarning, match="1 of 20 images could not be read"):
        problems = dfw.embed_to_parquet(table, out, model="pixels", cache_dir=tmp_path / "c",
                                        progress=False)
    assert problems[["id", "reason"]].values.tolist() == [["item3", "missing: file not found"]]
    assert pq.ParquetFile(out).metadata.num_row_groups == 3
    parquet_ids = np.array([f"item{i}" for i in (19, 0, 5)], dtype=object)
    vectors, model = parquet_mod.read_embeddings_parquet(out, parquet_ids)
    ref = dfw.embed(ImageSource.from_paths([paths[19], paths[0], paths[5]]), model="pixels",
                    cache_dir=tmp_path / "c2", progress=False)
    assert model == "pixels"
    np.testing.assert_allclose(vectors, ref, atol=1e-6)
    with pytest.raises(ValueError, match=r"no vector for 1 of 2 items.*'nope'"):
        parquet_mod.read_embeddings_parquet(out, np.array(["item1", "nope"], dtype=object))


# ----------------------------------------------------------------------------- with Ray
def test_interrupted_run_resumes_only_the_missing_items_through_a_dying_worker(
        ray_local, fmnist_small, local_vectors, tmp_path, monkeypatch):
    """Two Ray runs over 256 Fashion-MNIST images: one interrupted, one resumed in which an
    actor process dies. The rerun sends exactly the missing rows to the model (counted in
    the actors), the retried batch completes the result, the vectors equal the local
    engine's, and the local engine finds them all in the shared cache."""
    logs = tmp_path / "calls"
    logs.mkdir()
    model = CountingEmbedder(logs, key="resume")
    real = embed_ray.embed_rows

    def interrupted(*args, **kwargs):  # Ctrl-C on the driver after 2 batches arrived
        for i, batch in enumerate(real(*args, **kwargs)):
            if i == 2:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(embed_ray, "embed_rows", interrupted)
    monkeypatch.setattr(embed_ray, "FLUSH_EVERY", 32)
    with pytest.raises(KeyboardInterrupt):
        dfw.embed(fmnist_small, model=model, engine="ray", cache_dir=tmp_path, batch_size=32,
                  progress=False)
    monkeypatch.setattr(embed_ray, "embed_rows", real)
    kept = len(EmbeddingCache(model.cache_key, cache_dir=tmp_path))
    assert kept == 64  # the two batches that reached the driver are in the cache
    for p in logs.glob("call-*"):
        p.unlink()
    # the same model (same cache key), whose actor kills its own process at its 3rd call
    dying = CountingEmbedder(logs, crash_at=2, key="resume")
    emb = dfw.embed(fmnist_small, model=dying, engine="ray", cache_dir=tmp_path, batch_size=32,
                    progress=False)
    assert (logs / "crashed").exists()  # the actor process really died once, mid-run
    # the call that died logged nothing; the retried batch and the rest did: the rows
    # missing from the cache reached the model, plus at most one batch the dying actor had
    # finished but not yet handed on (Ray retries the whole task: at-least-once)
    assert N - kept <= rows_computed(logs) <= N - kept + 32
    assert emb.shape == local_vectors.shape == (N, 512)
    np.testing.assert_allclose(emb, local_vectors, atol=1e-5)  # complete and equal
    # the Ray runs wrote the shared cache: the local engine now computes nothing
    calls = []
    monkeypatch.setattr(embed_mod, "_compute", lambda *a, **k: calls.append(1))
    again = dfw.embed(fmnist_small, model=dying, cache_dir=tmp_path, progress=False)
    assert calls == [] and np.array_equal(again, emb)


def test_a_corrupt_file_is_reported_like_the_local_engine(ray_local, fmnist_small, tmp_path,
                                                         monkeypatch):
    """Decoding in Ray tasks (the layout with GPU actors); the other Ray tests decode in the
    model actors (the CPU default)."""

    class TaskDecoding(embed_ray.RayOptions):
        def __init__(self, **kwargs):
            super().__init__(decode="tasks", **kwargs)

    monkeypatch.setattr(embed_ray, "RayOptions", TaskDecoding)
    folder = tmp_path / "imgs"
    _write_images(folder, fmnist_small.array[:12])
    good = (folder / "img000.png").read_bytes()
    (folder / "img005.png").write_bytes(good[: len(good) // 2])  # header fine, data cut
    (folder / "img007.png").write_bytes(b"not an image at all")
    runs = {}
    for engine in ("local", "ray"):
        src = ImageSource.from_folder(folder)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            emb = dfw.embed(src, model="efficientnet_lite0", engine=engine, progress=False,
                            cache_dir=tmp_path / f"cache-{engine}")
        assert any("could not be read" in str(w.message) for w in caught)
        runs[engine] = (emb, src.problems)
    (emb_l, prob_l), (emb_r, prob_r) = runs["local"], runs["ray"]
    assert prob_r["index"].tolist() == prob_l["index"].tolist() == [5, 7]
    assert prob_r["reason"].tolist() == prob_l["reason"].tolist()
    assert prob_r["reason"][0].startswith("decode failed")
    np.testing.assert_allclose(emb_r, emb_l, atol=1e-5)  # placeholders included


def test_parquet_round_trip_into_session_open(ray_local, fmnist_small, local_vectors, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    folder = tmp_path / "imgs"
    _write_images(folder, fmnist_small.array[:40])
    out = tmp_path / "emb.parquet"
    problems = dfw.embed_to_parquet(folder, out, model="efficientnet_lite0", engine="ray",
                                    cache_dir=tmp_path / "cache", progress=False)
    assert len(problems) == 0
    table = pq.read_table(out)
    assert table.column_names == ["id", "path", "vector", "problem"] and table.num_rows == 40
    src = ImageSource.from_folder(folder)
    local = dfw.embed(src, model="efficientnet_lite0", cache_dir=tmp_path / "cache-local",
                      progress=False)
    session = dfw.Session.open(tmp_path / "proj", source=src, embeddings=out, auto_fit=False)
    try:
        np.testing.assert_allclose(session.embeddings, local, atol=1e-5)
    finally:
        session.close()
    # the local engine writes the same file (rows in any order; aligned by id)
    out_local = tmp_path / "emb-local.parquet"
    dfw.embed_to_parquet(sorted(map(str, folder.glob("*.png"))), out_local,
                         model="efficientnet_lite0", cache_dir=tmp_path / "cache-local",
                         progress=False)
    assert pq.read_table(out_local).num_rows == 40
    # a project over more images than the file holds: the missing ones are named
    _write_images(tmp_path / "more", fmnist_small.array[:41])
    with pytest.raises(ValueError, match=r"no vector for 1 of 41 items.*'img040.png'"):
        dfw.Session.open(tmp_path / "proj2", source=ImageSource.from_folder(tmp_path / "more"),
                         embeddings=out, auto_fit=False)
