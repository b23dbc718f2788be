"""Opening the vector store an index's manifest records (`vectors.store`), by name
(RAGatouille reads its index kind back the same way). Besides this factory, only
ragqa.index.migrate, which moves vectors from one to the other, knows the stores by name."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from ..errors import ConfigError
from .faiss_store import FaissStore
from .manifest import FAISS, PGVECTOR
from .pgvector_store import PgVectorStore
from .vectors import VECTOR_STORES, VectorOptions, VectorStore


def open_vectors(name: str, *, index_dir: Path, engine: Engine, manifest: dict,
                 options: VectorOptions) -> VectorStore:
    """The vector store an index's manifest names."""
    if name == FAISS:
        return FaissStore(index_dir, engine, manifest, options)
    if name == PGVECTOR:
        return PgVectorStore(engine, manifest, options, index_dir)
    raise ConfigError(f"vector store {name!r}: use one of {', '.join(VECTOR_STORES)}")
