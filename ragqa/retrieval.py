"""Retrieval: dense (FAISS), lexical (BM25 in the database) or both fused.

Hybrid search fuses the two rankings by weighted reciprocal rank fusion (Cormack et al.,
2009): score(chunk) = sum over searches of weight / (rrf_k + rank). Every hit keeps its
cosine similarity to the question (reconstructed from FAISS when only lexical search
found it), so `Hit.score` means the same thing in every mode."""

from __future__ import annotations

from .embedding import Embedder
from .errors import ConfigError
from .store import Store
from .types import Hit

MODES = ("hybrid", "dense", "lexical")


class Retriever:
    def __init__(self, store: Store, embedder: Embedder, *, mode: str = "hybrid", dense_weight: float = 1.0,
                 lexical_weight: float = 1.0, rrf_k: int = 60, depth: int = 20):
        if mode not in MODES:
            raise ConfigError(f"retrieval mode {mode!r}: use one of {', '.join(MODES)}")
        self.store, self.embedder, self.mode = store, embedder, mode
        self.dense_weight, self.lexical_weight, self.rrf_k, self.depth = dense_weight, lexical_weight, rrf_k, depth

    def search(self, query: str, k: int) -> list[Hit]:
        vector = self.embedder.embed([query])[0]
        depth = max(k, self.depth)
        dense = self.store.vectors.search(vector, depth) if self.mode != "lexical" else []
        lexical = self.store.lexical_search(query, depth) if self.mode != "dense" else []
        dense_rank = {i: r for r, (i, _) in enumerate(dense, start=1)}
        lexical_rank = {i: r for r, (i, _) in enumerate(lexical, start=1)}
        fused: dict[int, float] = {}
        for ranks, weight in ((dense_rank, self.dense_weight), (lexical_rank, self.lexical_weight)):
            for i, r in ranks.items():
                fused[i] = fused.get(i, 0.0) + weight / (self.rrf_k + r)
        # ties (same fused score) go to the better dense rank, then the lower id: deterministic
        order = sorted(fused, key=lambda i: (-fused[i], dense_rank.get(i, depth + 1), i))
        chunks = self.store.chunks(order)
        cosine = dict(dense)
        missing = [i for i in order[: 4 * k] if i not in cosine and i in chunks]
        cosine.update(self.store.vectors.similarity(vector, missing))
        hits = []
        for i in order:
            if i not in chunks:  # a vector whose row is gone (a crashed write not yet repaired)
                continue
            hits.append(Hit(chunk=chunks[i], score=float(cosine.get(i, 0.0)), rank=len(hits) + 1,
                            dense_rank=dense_rank.get(i), lexical_rank=lexical_rank.get(i)))
            if len(hits) == k:
                break
        return hits
