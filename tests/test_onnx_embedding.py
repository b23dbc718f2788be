"""The onnx and onnx-int8 embedding backends on the real bundled MiniLM: the export (once,
atomic, keyed to the model), agreement with torch, and an index that refuses vectors of
another kind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ragqa.errors import IndexMismatchError, ModelError
from ragqa.models import onnx_export as ox
from ragqa.models.onnx_embed import OnnxEmbedder
from ragqa.models.paths import default_embedder_path

pytestmark = pytest.mark.integration  # the real bundled MiniLM

TEXTS = [
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy.",
    "Thomas Savery patented the first practical steam engine in 1698; it pumped water out of mines.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "When was the Erie Canal completed?",
    "short",
    "A much longer passage, repeated to pass the window of the model. " * 40,
]
# The lowest cosine between int8 and torch vectors over 600 SQuAD paragraphs was 0.9895
# (mean 0.9944); float ONNX agreed to 0.99999. The bounds leave a little room.
MIN_COSINE_INT8 = 0.98
MIN_COSINE_FLOAT = 0.9999


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def in_cache(cache, monkeypatch) -> Path:
    monkeypatch.setenv("RAGQA_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    from ragqa.models.torch_embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder().embed(TEXTS)


@pytest.mark.parametrize("quantized,bound", [(False, MIN_COSINE_FLOAT), (True, MIN_COSINE_INT8)])
def test_onnx_vectors_agree_with_torch(in_cache, torch_vectors, quantized, bound):
    from ragqa.models.torch_embed import SentenceTransformerEmbedder

    emb = OnnxEmbedder(quantized=quantized)
    vectors = emb.embed(TEXTS)
    assert vectors.shape == torch_vectors.shape and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * torch_vectors).sum(axis=1)
    assert cosines.min() >= bound, cosines
    # one text alone gives the vector it gets in a batch (padding does not leak in)
    assert float(emb.embed([TEXTS[1]])[0] @ vectors[1]) > 0.9999
    ref = SentenceTransformerEmbedder()
    assert (emb.dimension, emb.max_tokens) == (ref.dimension, ref.max_tokens)
    assert [emb.count_tokens(t) for t in TEXTS] == [ref.count_tokens(t) for t in TEXTS]
    assert emb.embed([]).shape == (0, ref.dimension)


def test_export_happens_once_and_is_reused(in_cache):
    first = ox.ensure_export(default_embedder_path())
    stamp = (first / ox.INT8_FILE).stat().st_mtime_ns
    again = ox.ensure_export(default_embedder_path())
    assert again == first and (again / ox.INT8_FILE).stat().st_mtime_ns == stamp
    assert {p.name for p in first.iterdir()} == {ox.FLOAT_FILE, ox.INT8_FILE, "export.json"}
    assert not list(first.parent.glob(".export-*"))


def test_a_changed_model_gets_a_new_key(tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(default_embedder_path(), copy)
    before = ox.export_key(copy)
    assert before == ox.export_key(copy)
    config = json.loads((copy / "config.json").read_text())
    config["layer_norm_eps"] = 1e-11
    (copy / "config.json").write_text(json.dumps(config))
    assert ox.export_key(copy) != before


def test_an_export_killed_midway_leaves_no_export_and_the_next_one_completes(tmp_path, monkeypatch):
    """SIGKILL while the int8 model is being written: no folder under the final name; the
    next process exports whole, and a leftover part older than an hour is removed."""
    cache = tmp_path / "cache"
    script = (
        "import os, signal\n"
        "from ragqa.models import onnx_export as ox\n"
        "from ragqa.models.paths import default_embedder_path\n"
        "def killed(src, out):\n"
        "    out.write_bytes(b'half a model')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "ox._quantize = killed\n"
        "ox.ensure_export(default_embedder_path())\n"
    )
    env = {**os.environ, "RAGQA_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=300)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    exports = cache / "onnx"
    assert [p.name for p in exports.iterdir() if not p.name.startswith(".export-")] == []
    parts = list(exports.glob(".export-*"))
    assert len(parts) == 1 and (parts[0] / ox.INT8_FILE).read_bytes() == b"half a model"
    old = time.time() - 2 * 3600
    os.utime(parts[0], (old, old))

    monkeypatch.setenv("RAGQA_CACHE_DIR", str(cache))
    final = ox.ensure_export(default_embedder_path())
    assert (final / "export.json").is_file() and (final / ox.INT8_FILE).stat().st_size > 1_000_000
    assert not list(exports.glob(".export-*"))
    assert OnnxEmbedder(quantized=True).embed(["a test"]).shape == (1, 384)


def test_a_failed_export_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGQA_CACHE_DIR", str(tmp_path))

    def fails(src, out):
        raise OSError("disk full")

    monkeypatch.setattr(ox, "_quantize", fails)
    with pytest.raises(ModelError, match="disk full.*RAGQA_CACHE_DIR"):
        ox.ensure_export(default_embedder_path())
    assert list((tmp_path / "onnx").iterdir()) == []


def test_a_cache_that_cannot_be_written_is_one_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("RAGQA_CACHE_DIR", str(blocker))
    with pytest.raises(ModelError, match="cannot write the ONNX export.*RAGQA_EMBED_BACKEND=torch"):
        OnnxEmbedder(quantized=True).embed(["a question"])


def test_a_model_with_more_than_pooling_is_refused(tmp_path):
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]))
    with pytest.raises(ModelError, match="Dense.*RAGQA_EMBED_BACKEND=torch"):
        ox.pooling_mode(tmp_path)
    with pytest.raises(ModelError, match="no modules.json"):
        ox.pooling_mode(tmp_path / "nothing")


def one_file_folder(tmp_path: Path, name: str, text: str) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / name).write_text(text)
    return docs


def test_an_index_keeps_its_backend_and_refuses_vectors_of_another_kind(tmp_path, in_cache):
    from ragqa import RAG

    docs = one_file_folder(tmp_path, "a.txt", "The Erie Canal was completed in 1825 and linked the Hudson River to Lake Erie.")
    with RAG(tmp_path / "ix", embed_backend="onnx-int8") as rag:
        rag.ingest([docs])
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["embedder"]["backend"] == "onnx-int8"
    with RAG(tmp_path / "ix") as rag:  # no setting: the index's own backend
        assert rag.embedder.backend == "onnx-int8"
        assert rag.retrieve("When was the Erie Canal completed?")[0].chunk.document == "a"
    with RAG(tmp_path / "ix", embed_backend="torch") as rag, pytest.raises(IndexMismatchError, match="int8 vectors"):
        rag.retrieve("When was the Erie Canal completed?")
    with RAG(tmp_path / "ix", embed_backend="onnx") as rag, pytest.raises(IndexMismatchError, match="not mixed"):
        rag.ingest([docs])


def test_float_backends_share_an_index(tmp_path, in_cache):
    """torch and float ONNX vectors agree to 0.99999: an index made with one is searched with the other."""
    from ragqa import RAG

    docs = one_file_folder(tmp_path, "b.txt", "Thomas Savery patented the first practical steam engine in 1698.")
    with RAG(tmp_path / "ix", embed_backend="torch") as rag:
        rag.ingest([docs])
    with RAG(tmp_path / "ix", embed_backend="onnx") as rag:
        hit = rag.retrieve("Who patented the steam engine?")[0]
        assert hit.chunk.document == "b" and hit.score > 0.5


def test_embedding_with_an_export_made_does_not_import_torch(in_cache):
    """What makes a cold ask on an ONNX index cheaper: tokenizers and onnxruntime only."""
    ox.ensure_export(default_embedder_path())
    code = ("import sys\n"
            "from ragqa.models.onnx_embed import OnnxEmbedder\n"
            "v = OnnxEmbedder(quantized=True).embed(['When was the Erie Canal completed?'])\n"
            "assert v.shape == (1, 384)\n"
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "RAGQA_CACHE_DIR": str(in_cache)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
