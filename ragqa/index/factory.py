"""Opening the vector store an index's manifest records (`vectors.store`), by name
(RAGatouille reads its index kind back the same way). Besides this factory, only
ragqa.index.migrate, which moves vectors from one to the other, knows the stores by name."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from ..errors import ConfigError
from .faiss_store import VECTORS, FaissStore, file_stamp
from .manifest import FAISS, PGVECTOR, require_postgres
from .pgvector_store import PgVectorStore
from .vectors import VECTOR_STORES, VectorOptions, VectorStore

DEFAULT_STORE = FAISS  # for a new index (RAGQA_VECTOR_STORE unset)


def prepare_new(name: str, index_dir: Path, database_url: str) -> None:
    """Before a new index of this store is made: its folder (FAISS), or a PostgreSQL database (pgvector)."""
    if name == PGVECTOR:
        require_postgres(database_url)
    else:
        index_dir.mkdir(parents=True, exist_ok=True)


def default_index_type(name: str) -> str:
    """The index type a new index of this store starts with (exact search)."""
    return "exact" if name == PGVECTOR else "IDMap2,Flat"


def saved_stamp(index_dir: Path) -> tuple | None:
    """What changes when a writer saves vectors that an open reader would not see (the
    FAISS file, replaced on save; pgvector readers see every commit at once: None)."""
    return file_stamp(Path(index_dir) / VECTORS)


def open_vectors(name: str, *, index_dir: Path, engine: Engine, manifest: dict,
                 options: VectorOptions) -> VectorStore:
    """The vector store an index's manifest names."""
    if name == FAISS:
        return FaissStore(index_dir, engine, manifest, options)
    if name == PGVECTOR:
        return PgVectorStore(engine, manifest, options, index_dir)
    raise ConfigError(f"vector store {name!r}: use one of {', '.join(VECTOR_STORES)}")
