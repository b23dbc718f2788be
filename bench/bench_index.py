"""Vector index benchmark, run on purpose: exact search against the inverted file that
ragqa switches to past `ivf_min_vectors`, on synthetic vectors shaped like real
MiniLM embeddings, at 100k and 1M vectors.

Shape: the mean and covariance of real all-MiniLM-L6-v2 embeddings of the sentences of
corpora/squad2/corpus; vectors are drawn from a mixture of Gaussian clusters with that
mean and covariance (centers ~ N(mean, cov), members ~ center + N(0, cov): at 5,000 vectors the
median nearest-neighbour cosine is then 0.64, against 0.63 for the real sentences), then
normalized; queries are drawn from the same mixture. Printed for each size: build time,
query latency p50/p95 (one query at a time, as ragqa asks), recall@10 against exact
search, memory (the index's serialized size), and ragqa's search against raw
FAISS on the same index.

When indexes/scifact holds the SciFact corpus, the comparison is first made on its real
vectors with real SciFact questions, and on synthetic vectors of the same count, as a
check that the synthetic shape is not kinder to the inverted file than real text is.

    python -m bench.bench_index [SIZES...]     # default: 100000 1000000
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

from ragqa.index.faiss_index import IVF, FaissIndex, plan
from ragqa.ingest.chunking import sentence_spans
from ragqa.models.torch_embed import SentenceTransformerEmbedder

ROOT = Path(__file__).resolve().parent.parent
N_QUERIES = 300
CLUSTER_SIZE = 50  # vectors per cluster: a document's chunks and their near neighbours
NPROBES = (16, 32, 64, 128, 256, 512)


def size(index) -> int:
    import faiss

    return int(faiss.serialize_index(index).nbytes)


def real_shape() -> tuple[np.ndarray, np.ndarray, float]:
    texts = []
    for path in sorted((ROOT / "corpora/squad2/corpus").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        texts += [text[s:e] for s, e in sentence_spans(text)]
    emb = SentenceTransformerEmbedder()
    vectors = emb.embed(texts)
    emb.close()
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1)
    return vectors.mean(axis=0), np.cov(vectors, rowvar=False), float(np.median(sims.max(axis=1)))


def synthetic(n: int, mean: np.ndarray, cov: np.ndarray, rng, centers=None) -> tuple[np.ndarray, np.ndarray]:
    """n vectors of a Gaussian mixture, and its centers (new ones unless given)."""
    d = len(mean)
    root = np.linalg.cholesky(cov + 1e-6 * np.eye(d)).astype(np.float32)
    if centers is None:
        centers = mean + rng.standard_normal((max(1, n // CLUSTER_SIZE), d), dtype=np.float32) @ root.T
    out = np.empty((n, d), dtype=np.float32)
    step = 100_000
    for i in range(0, n, step):
        m = min(step, n - i)
        out[i:i + m] = centers[rng.integers(0, len(centers), m)] + \
            rng.standard_normal((m, d), dtype=np.float32) @ root.T
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out, centers


def latencies(fn, queries) -> tuple[float, float, list]:
    times, results = [], []
    for q in queries:
        t = time.perf_counter()
        results.append(fn(q))
        times.append(time.perf_counter() - t)
    times.sort()
    return statistics.median(times) * 1000, times[int(0.95 * len(times)) - 1] * 1000, results


def recall(results, truth) -> float:
    return float(np.mean([len(set(r) & set(t)) / len(t) for r, t in zip(results, truth)]))


def run(n: int, mean, cov) -> None:
    rng = np.random.default_rng(n)
    data, centers = synthetic(n, mean, cov, rng)
    # a question lies near the documents about it: queries are new members of the same clusters
    queries, _ = synthetic(N_QUERIES, mean, cov, np.random.default_rng(n + 1), centers)
    compare(f"{n:,} synthetic vectors", data, queries)


def real(index_dir: Path, questions: Path) -> None:
    """The same comparison on a real index and its real questions (a check on the synthetic shape)."""
    import json

    stored = FaissIndex.load(index_dir / "vectors.faiss", 384)
    data = stored.vectors(stored._ids())
    emb = SentenceTransformerEmbedder()
    qs = [json.loads(line)["question"] for line in questions.read_text().splitlines()][:N_QUERIES]
    queries = emb.embed(qs)
    emb.close()
    compare(f"{len(data):,} real vectors ({index_dir.name}), {len(qs)} real questions", data, queries)


def compare(title: str, data: np.ndarray, queries: np.ndarray) -> None:
    n = len(data)
    ids = np.arange(n, dtype=np.int64) * 2 + 1  # arbitrary ids, as chunk row ids are
    sims = data[:2000] @ data.T
    sims[np.arange(min(n, 2000)), np.arange(min(n, 2000))] = -1
    print(f"\n{title} x {data.shape[1]} dims; median nearest-neighbour cosine {np.median(sims.max(axis=1)):.3f}")
    del sims

    t = time.perf_counter()
    flat = FaissIndex(data.shape[1])
    flat.add(ids, data)
    flat_build = time.perf_counter() - t
    flat_mem = size(flat.index)
    p50, p95, flat_results = latencies(lambda q: [i for i, _ in flat.search(q, 10)], queries)
    raw50, _, _ = latencies(lambda q: flat.index.search(q.reshape(1, -1), 10), queries)
    truth = flat_results
    print(f"{'index':24s} {'build s':>8s} {'mem MiB':>8s} {'p50 ms':>7s} {'p95 ms':>7s} {'R@10':>6s} {'raw p50':>8s}")
    print(f"{'exact (IDMap2,Flat)':24s} {flat_build:8.1f} {flat_mem / 2**20:8.0f} {p50:7.2f} {p95:7.2f} {1.0:6.3f} {raw50:8.2f}", flush=True)

    kind, nlist = plan(n, 1)
    t = time.perf_counter()
    flat.rebuild(IVF, nlist)  # what ragqa does on crossing ivf_min_vectors: the same ids and vectors
    ivf_build = time.perf_counter() - t
    ivf_mem = size(flat.index)
    ivf = flat
    for nprobe in NPROBES:
        ivf.nprobe = nprobe
        p50, p95, results = latencies(lambda q: [i for i, _ in ivf.search(q, 10)], queries)
        ivf.index.nprobe = nprobe
        raw50, _, _ = latencies(lambda q: ivf.index.search(q.reshape(1, -1), 10), queries)
        print(f"{f'IVF{nlist},Flat nprobe {nprobe}':24s} {ivf_build:8.1f} {ivf_mem / 2**20:8.0f} {p50:7.2f} {p95:7.2f} "
              f"{recall(results, truth):6.3f} {raw50:8.2f}", flush=True)


def main(sizes) -> None:
    mean, cov, real_nn = real_shape()
    print(f"shape from real MiniLM sentence embeddings: median nearest-neighbour cosine {real_nn:.3f}")
    scifact = ROOT / "indexes/scifact"
    if (scifact / "vectors.faiss").exists():  # `ragqa ingest ../shared/data/scifact/corpus --index indexes/scifact`
        real(scifact, ROOT.parent / "shared/data/scifact/questions_train.jsonl")
        run(len(FaissIndex.load(scifact / "vectors.faiss", 384)), mean, cov)
    for n in sizes:
        run(n, mean, cov)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000, 1_000_000])
