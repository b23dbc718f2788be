"""Retrieval: dense (FAISS), lexical (BM25 in the database) or both fused.

Hybrid search fuses the two rankings: by default (setting `fusion`) a convex combination
of the scaled cosine and BM25 scores, or by weighted reciprocal rank fusion (Cormack et
al., 2009): score(chunk) = sum over searches of weight / (rrf_k + rank). Every hit keeps its
cosine similarity to the question (reconstructed from FAISS when only lexical search
found it), so `Hit.score` means the same thing in every mode."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..index.store import Store
from ..models.embed import Embedder
from ..settings import Settings, choices
from ..types import Filters, Hit

if TYPE_CHECKING:
    import numpy as np

MODES: tuple[str, ...] = choices("retrieval")
FUSIONS: tuple[str, ...] = choices("fusion")


class Retriever:
    def __init__(self, store: Store, embedder: Embedder, *, mode: str = Settings.retrieval, fusion: str = Settings.fusion,
                 dense_weight: float = Settings.dense_weight, lexical_weight: float = Settings.lexical_weight,
                 rrf_k: int = 60, depth: int = 20):
        if mode not in MODES:
            raise ConfigError(f"retrieval mode {mode!r}: use one of {', '.join(MODES)}")
        if fusion not in FUSIONS:
            raise ConfigError(f"fusion {fusion!r}: use one of {', '.join(FUSIONS)}")
        self.store, self.embedder, self.mode, self.fusion = store, embedder, mode, fusion
        self.dense_weight, self.lexical_weight, self.rrf_k, self.depth = dense_weight, lexical_weight, rrf_k, depth

    def search(self, query: str, k: int, filters: Filters | None = None, vector: "np.ndarray | None" = None) -> list[Hit]:
        """The k best chunks for the query; with filters, from the documents they allow only.
        `vector`: the query's embedding, when the caller has it already."""
        if vector is None:
            vector = self.embedder.embed([query])[0]
        depth = max(k, self.depth)
        dense = self.store.dense_search(vector, depth, filters) if self.mode != "lexical" else []
        lexical = self.store.lexical_search(query, depth, filters) if self.mode != "dense" else []
        cosine = dict(dense)
        cosine.update(self.store.similarity(vector, [i for i, _ in lexical if i not in cosine]))
        if self.mode == "hybrid":
            order = fuse(dense, lexical, cosine, method=self.fusion, dense_weight=self.dense_weight,
                         lexical_weight=self.lexical_weight, rrf_k=self.rrf_k)
        else:  # one search alone keeps its own order
            order = [i for i, _ in (dense or lexical)]
        dense_rank = {i: r for r, (i, _) in enumerate(dense, start=1)}
        lexical_rank = {i: r for r, (i, _) in enumerate(lexical, start=1)}
        chunks = self.store.chunks(order[: 4 * k])
        hits: list[Hit] = []
        for i in order:
            if i not in chunks:  # a vector whose row is gone (a crashed write not yet repaired)
                continue
            hits.append(Hit(chunk=chunks[i], score=float(cosine.get(i, 0.0)), rank=len(hits) + 1,
                            dense_rank=dense_rank.get(i), lexical_rank=lexical_rank.get(i)))
            if len(hits) == k:
                break
        return hits


def fuse(dense: Sequence[tuple[int, float]], lexical: Sequence[tuple[int, float]], cosine: dict[int, float], *,
         method: str = "rrf", dense_weight: float = 1.0, lexical_weight: float = 1.0, rrf_k: int = 60) -> list[int]:
    """Chunk ids of both rankings, best first. `rrf`: sum of weight / (rrf_k + rank).
    `convex`: dense_weight x cosine min-max scaled over the candidates + lexical_weight x
    BM25 scaled by the best BM25 (0 when lexical search missed the chunk). Ties go to
    the better dense rank, then the lower id, so that results are deterministic."""
    dense_rank = {i: r for r, (i, _) in enumerate(dense, start=1)}
    fused: dict[int, float] = {}
    if method == "rrf":
        for ranking, weight in ((dense, dense_weight), (lexical, lexical_weight)):
            for r, (i, _) in enumerate(ranking, start=1):
                fused[i] = fused.get(i, 0.0) + weight / (rrf_k + r)
    elif method == "convex":
        ids = list(dict.fromkeys([i for i, _ in dense] + [i for i, _ in lexical]))
        cos = [cosine.get(i, 0.0) for i in ids]
        lo, hi = min(cos, default=0.0), max(cos, default=0.0)
        bm25 = dict(lexical)
        top = max(bm25.values(), default=0.0)
        for i, c in zip(ids, cos):
            fused[i] = dense_weight * ((c - lo) / (hi - lo) if hi > lo else 1.0) + \
                lexical_weight * (bm25.get(i, 0.0) / top if top > 0 else 0.0)
    else:
        raise ConfigError(f"fusion {method!r}: use rrf or convex")
    last = len(dense) + 1
    return sorted(fused, key=lambda i: (-fused[i], dense_rank.get(i, last), i))
