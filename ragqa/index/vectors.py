"""Where an index's vectors live: one contract (`VectorStore`), one module per backend,
one factory (ragqa.index.factory), as txtai's ann/ and httpx's transports do it.

- faiss (ragqa.index.faiss_store): a file in the index folder, saved after the rows
  commit; one writer at a time (a folder lock, and an advisory lock on PostgreSQL), and a
  crash between rows and vectors repaired by the next writer.
- pgvector (ragqa.index.pgvector_store): a table in the index's PostgreSQL database,
  written in the rows' own transaction; nothing to save or repair.

The backend an index uses is recorded in its manifest (`vectors.store`) and read back
through the factory; ragqa.index.store.Store holds the rows and drives whichever it is
through this contract, never by asking which one it has."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Protocol

from ..settings import Settings, choices
from ..types import Filters
from .manifest import FAISS, PGVECTOR

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.orm import Session

VECTOR_STORES: tuple[str, ...] = choices("vector_store")
assert set(VECTOR_STORES) == {FAISS, PGVECTOR}


@dataclass(frozen=True)
class VectorOptions:
    """The settings a vector store reads; the defaults are Settings' own."""

    ivf_min_vectors: int = Settings.ivf_min_vectors
    nprobe: int = Settings.nprobe
    hnsw_min_vectors: int = Settings.hnsw_min_vectors
    ef_search: int = Settings.ef_search
    lock_timeout: float = Settings.lock_timeout

    @classmethod
    def of(cls, settings: Settings) -> "VectorOptions":
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})


class VectorStore(Protocol):
    """Vectors keyed by their chunk's id, kept in step with the rows. Unit-length vectors:
    inner product is the cosine."""

    name: str  # faiss | pgvector: what the manifest records
    dimension: int
    manifest: dict  # this store keeps the index's manifest (in the folder, or in the database)

    def __len__(self) -> int: ...

    def describe(self) -> str:
        """The index type, in words (`ragqa status`)."""
        ...

    def sizes(self) -> dict[str, int]:
        """Bytes kept outside the index folder (the folder's own files are listed anyway)."""
        ...

    # --- opening --------------------------------------------------------------------

    def open_writer(self, create_tables: Callable[[], None]) -> None:
        """Become a writer of a new or existing index: create the tables (rows and
        vectors) and record the manifest, serialised with other writers as this store needs."""
        ...

    def load(self) -> None:
        """Read the vectors as saved (after open_writer when writing)."""
        ...

    def begin_writes(self, hold: bool) -> None:
        """After open_writer: repair what a crash left, then keep the right to write until
        close (hold) or take it per `writing()` section."""
        ...

    def writing(self) -> AbstractContextManager[None]:
        """One write section of a writer that does not hold the right to write throughout."""
        ...

    def close(self) -> None: ...

    # --- reading --------------------------------------------------------------------

    def ids(self) -> set[int]: ...

    def vectors(self, ids: "np.ndarray | Sequence[int]") -> "np.ndarray":
        """The stored vectors of these ids, in their order."""
        ...

    def dump(self) -> tuple["np.ndarray", "np.ndarray"]:
        """Every id and its vector."""
        ...

    def search(self, query: "np.ndarray", k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """The k nearest chunks (id, cosine), best first, among those the filters allow."""
        ...

    def similarity(self, query: "np.ndarray", ids: Iterable[int]) -> dict[int, float]: ...

    # --- writing, in step with the rows --------------------------------------------------

    def lock(self, session: "Session", paths: Sequence[str]) -> None:
        """Inside the rows' transaction, before they are read: serialise writers of these paths."""
        ...

    def insert(self, session: "Session", ids: "np.ndarray", vectors: "np.ndarray | None") -> None:
        """Inside the rows' transaction, once the new chunks have their ids."""
        ...

    def committed(self, removed: Iterable[int], ids: "np.ndarray", vectors: "np.ndarray | None") -> None:
        """After the rows' transaction committed: these chunks were removed, these added."""
        ...

    @property
    def dirty(self) -> bool:
        """Changes not yet saved."""
        ...

    def save(self) -> None:
        """Save what changed; the index type follows the collection's size."""
        ...

    def reindex(self, kind: str, nlist: int = 0) -> str:
        """Rebuild as `kind` (flat, auto, and ivf for FAISS or hnsw for pgvector); its description."""
        ...


__all__ = ["VectorStore", "VectorOptions", "VECTOR_STORES"]
