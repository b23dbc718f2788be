"""The vector index type follows the collection's size: exact search while small, an
inverted file past a threshold, the same ids and answers either side of a switch."""

import numpy as np
import pytest

from ragqa import RAG
from ragqa.index.faiss_index import FLAT, IVF, FaissIndex, plan
from ragqa.testing import ExtractiveGenerator, HashEmbedder


def clustered(n, d=32, clusters=40, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, d))
    x = centers[rng.integers(0, clusters, n)] + 0.4 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def top(index, queries, k=10):
    return [[i for i, _ in index.search(q, k)] for q in queries]


def test_plan_follows_faiss_guidelines():
    assert plan(10) == (FLAT, 0) and plan(199_999) == (FLAT, 0)
    assert plan(1_000_000) == (IVF, 4096)  # 4 x sqrt(1M) = 4000 -> 4096
    assert plan(100_000, ivf_min=50_000) == (IVF, 1024)  # 4 x 316 = 1265 -> 1024


def test_switch_to_ivf_keeps_ids_and_exact_results_when_every_list_is_searched(tmp_path):
    x = clustered(4000)
    ids = np.arange(4000, dtype=np.int64) * 7 + 3  # arbitrary ids, as chunk row ids are
    queries = clustered(30, seed=1)
    flat = FaissIndex(32)
    flat.add(ids, x)
    exact = top(flat, queries)

    index = FaissIndex(32, nprobe=64)
    index.add(ids, x)
    assert not index.adapt(ivf_min=5000)  # below the threshold: stays exact
    assert index.adapt(ivf_min=4000) and index.kind == IVF and index.nlist == 256
    assert index.ids() == set(ids.tolist())
    assert FaissIndex(32, index.index).describe() == "IVF256,Flat (nprobe 32)"  # default: an eighth of the lists
    index.nprobe = index.nlist
    assert top(index, queries) == exact  # every list searched: the same top 10, in order
    index.nprobe = 16
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top(index, queries), exact)])
    assert recall >= 0.9
    # cosine by id and removals work on the inverted file too
    q = queries[0]
    sims = index.similarity(q, ids[:3])
    assert sims == pytest.approx(dict(zip(ids[:3].tolist(), (x[:3] @ q).tolist())), abs=1e-5)
    assert index.remove(ids[:100]) == 100 and len(index) == 3900 and not (set(ids[:100].tolist()) & index.ids())
    # saved and loaded as an inverted file
    index.save(tmp_path / "v.faiss")
    loaded = FaissIndex.load(tmp_path / "v.faiss", 32, nprobe=16)
    assert loaded.kind == IVF and loaded.ids() == index.ids()
    assert top(loaded, queries) == top(index, queries)


def test_shrinking_below_half_the_threshold_goes_back_to_exact_search():
    x = clustered(1000)
    ids = np.arange(1000, dtype=np.int64)
    index = FaissIndex(32)
    index.add(ids, x)
    index.rebuild(IVF, 32)
    index.remove(ids[:400])
    assert not index.adapt(ivf_min=1000)  # 600 >= 500: stays
    index.remove(ids[400:600])
    assert index.adapt(ivf_min=1000) and index.kind == FLAT and index.ids() == set(range(600, 1000))


def test_ingest_switches_on_its_own_and_reindex_switches_back(tmp_path, docs):
    rag = RAG(tmp_path / "idx", embedder=HashEmbedder(), generator=ExtractiveGenerator(), ivf_min_vectors=3, calibration="off",
              min_confidence=0.5)
    rag.ingest([docs])
    status = rag.status()
    assert status["vectors"] >= 3 and status["vector_index"].startswith("IVF")
    assert '"faiss": "IVF' in (tmp_path / "idx" / "manifest.json").read_text()
    answer = rag.ask("Which town did Etna destroy in 1669?")
    assert not answer.abstained and answer.citations[0].document == "volcanoes"
    assert rag.reindex("flat") == "IDMap2,Flat"
    assert rag.ask("Which town did Etna destroy in 1669?").answer == answer.answer  # the reader sees the new file
    rag.close()
