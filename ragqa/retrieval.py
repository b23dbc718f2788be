"""Retrieval: the question's embedding against the FAISS vectors, hits joined to their rows."""

from __future__ import annotations

from .embedding import Embedder
from .store import Store
from .types import Hit


class DenseRetriever:
    def __init__(self, store: Store, embedder: Embedder):
        self.store = store
        self.embedder = embedder

    def search(self, query: str, k: int) -> list[Hit]:
        vector = self.embedder.embed([query])[0]
        pairs = self.store.vectors.search(vector, k)
        chunks = self.store.chunks([i for i, _ in pairs])
        # a vector whose row is gone (a crashed write not yet repaired) is skipped
        found = [(chunks[i], s) for i, s in pairs if i in chunks]
        return [Hit(chunk=c, score=s, rank=r) for r, (c, s) in enumerate(found, start=1)]
