"""Rows and vectors for index tests: a small embedder's manifest entry, a chunking, and
documents with random unit vectors."""

from __future__ import annotations

import numpy as np

from ragqa.index.store import NewDocument
from ragqa.types import ChunkSpan

INFO = {"name": "hash-embedder", "dimension": 8, "max_tokens": 128}
CHUNKING = {"chunk_tokens": 50, "chunk_overlap": 10}


def doc(path: str, n: int, seed: int = 0) -> NewDocument:
    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(n, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    chunks = [ChunkSpan(text=f"{path} chunk {i}", start=i * 10, end=i * 10 + 9, page=None, n_tokens=3) for i in range(n)]
    return NewDocument(path=path, name=path, sha256=f"h{seed}", size=1, mtime=0.0, chunks=chunks, vectors=vecs)
