"""One index: the SQL rows (documents, chunks: the record) and the vectors kept in step with
them, wherever they live (a VectorStore: ragqa.index.vectors), with its manifest.

`Store.open(...)` reads; `Store.open(..., write=True)` creates the index if it is missing
and becomes a writer. A writer holds the right to write until close (a bulk
`ragqa ingest`), or, with `hold_lock=False` (ingestion workers, several at once), only
inside `with store.writing():` sections, so that the slow part of ingest, embedding, runs
in parallel. Every write goes: rows in one transaction (the vector store locks and
inserts inside it where it can), then the vector store told what was committed. What
each store does at each step, and what a crash leaves, is in its own module
(ragqa.index.faiss_store, ragqa.index.pgvector_store); ragqa.index.migrate moves an
index from one to the other."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import ConfigError, IndexMismatchError
from ..types import Chunk, ChunkSpan, Filters
from . import lexical, rows
from .db import Base, ChunkRow, DocumentRow, make_engine
from .factory import DEFAULT_STORE, default_index_type, open_vectors, prepare_new
from .manifest import (
    check_embedder,
    new_manifest,
    no_index,
    read_manifest,
    vector_store_of,
)
from .vectors import VECTOR_STORES, VectorOptions, VectorStore

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Store", "NewDocument", "make_engine", "read_manifest"]


@dataclass(frozen=True)
class NewDocument:
    path: str
    name: str
    sha256: str
    size: int
    mtime: float
    chunks: Sequence[ChunkSpan]
    vectors: "np.ndarray"


class Store:
    """Open with `Store.open(...)` to read, `Store.open(..., write=True)` to change."""

    def __init__(self, index_dir: Path, database_url: str, manifest: dict, write: bool, options: VectorOptions):
        self.index_dir, self.database_url, self.write, self.options = index_dir, database_url, write, options
        self.engine = make_engine(database_url)
        self._lexical: bool | None = None
        self.vectors: VectorStore = open_vectors(vector_store_of(manifest), index_dir=index_dir, engine=self.engine,
                                                 manifest=manifest, options=options)
        if write:
            try:
                self.vectors.open_writer(self._create_tables)
            except BaseException:
                self.engine.dispose()
                raise
        self.vectors.load()

    def _create_tables(self) -> None:
        Base.metadata.create_all(self.engine)
        lexical.ensure(self.engine)

    @property
    def manifest(self) -> dict:
        return self.vectors.manifest

    @property
    def vector_store(self) -> str:
        return self.vectors.name

    @property
    def dimension(self) -> int:
        return int(self.manifest["embedder"]["dimension"])

    # --- opening -----------------------------------------------------------------

    @classmethod
    def open(cls, index_dir: Path, database_url: str, embedder_info: dict | None = None,
             chunking: dict | None = None, write: bool = False, hold_lock: bool = True,
             vector_store: str | None = None, **options: Any) -> "Store":
        """Open an index. With write=True, create it if missing (embedder_info and
        chunking are then recorded in its manifest) and repair a crashed write; the right
        to write is then held until close, or, with hold_lock=False, only inside
        `writing()` sections. `options`: the fields of VectorOptions (lock_timeout: seconds
        to wait for another writer). `vector_store`: faiss or pgvector for a new index; for
        an existing one, None or the store it has (else IndexMismatchError: migrate it first)."""
        index_dir = Path(index_dir)
        if vector_store not in (None, *VECTOR_STORES):
            raise ConfigError(f"vector store {vector_store!r}: use one of {', '.join(VECTOR_STORES)}")
        found = read_manifest(index_dir, database_url)
        if found is not None:
            manifest = found
            if embedder_info is not None:
                check_embedder(manifest, embedder_info, index_dir)
            has = vector_store_of(manifest)
            if vector_store and vector_store != has:
                raise IndexMismatchError(
                    f"the index at {index_dir} keeps its vectors in {has}, not {vector_store}: "
                    f"unset RAGQA_VECTOR_STORE, or move them with `ragqa migrate-vectors --to {vector_store}`")
        elif write:
            if embedder_info is None or chunking is None:
                raise ValueError("a new index needs embedder_info and chunking")
            vector_store = vector_store or DEFAULT_STORE
            prepare_new(vector_store, index_dir, database_url)
            manifest = new_manifest(embedder_info, chunking, vector_store, default_index_type(vector_store))
        else:
            raise no_index(index_dir)
        store = cls(index_dir, database_url, manifest, write, VectorOptions(**options))
        if write:
            try:
                store.vectors.begin_writes(hold=hold_lock)
            except BaseException:
                store.close()
                raise
        return store

    @contextmanager
    def writing(self) -> Iterator["Store"]:
        """A write section (see the module doc)."""
        if not self.write:
            raise RuntimeError("this index was opened for reading")
        with self.vectors.writing():
            yield self

    def close(self) -> None:
        try:
            self.vectors.close()
        finally:
            self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -----------------------------------------------------------------

    def paths_named(self, name: str) -> list[str]:
        """Paths of the documents known by this name (file name without extension)."""
        with Session(self.engine) as s:
            return sorted(s.scalars(select(DocumentRow.path).where(DocumentRow.name == name)))

    def documents_by_path(self) -> dict[str, DocumentRow]:
        with Session(self.engine, expire_on_commit=False) as s:
            return {d.path: d for d in s.scalars(select(DocumentRow))}

    def put_documents(self, docs: Sequence[NewDocument]) -> None:
        """Insert or replace documents, their chunks and vectors, in one transaction."""
        import numpy as np

        # a few statements for the whole batch, not a few per document (one flush per
        # document was 0.6 s of a 6.5 s ingest of 495 SQuAD paragraphs)
        with Session(self.engine) as s, s.begin():
            self.vectors.lock(s, [d.path for d in docs])
            replaced = s.scalars(select(DocumentRow.id).where(DocumentRow.path.in_([d.path for d in docs]))).all()
            old_chunk_ids = rows.delete_documents(s, list(replaced))
            now = rows.now()
            documents = [DocumentRow(name=d.name, path=d.path, sha256=d.sha256, size=d.size, mtime=d.mtime,
                                     n_chunks=len(d.chunks), updated_at=now) for d in docs]
            s.add_all(documents)
            s.flush()
            chunks = [ChunkRow(document_id=row.id, ordinal=i, text=c.text, start=c.start, end=c.end, page=c.page,
                               n_tokens=c.n_tokens) for row, d in zip(documents, docs) for i, c in enumerate(d.chunks)]
            s.add_all(chunks)
            s.flush()
            new_ids = np.asarray([c.id for c in chunks], dtype=np.int64)  # in the order of the vectors below
            vectors = np.concatenate([d.vectors for d in docs if len(d.chunks)]) if len(new_ids) else None
            self.vectors.insert(s, new_ids, vectors)
        self.vectors.committed(old_chunk_ids, new_ids, vectors)

    def remove_documents(self, paths: Iterable[str]) -> int:
        import numpy as np

        paths = list(paths)
        if not paths:
            return 0
        with Session(self.engine) as s, s.begin():
            self.vectors.lock(s, paths)
            doc_ids = s.scalars(select(DocumentRow.id).where(DocumentRow.path.in_(paths))).all()
            chunk_ids = rows.delete_documents(s, doc_ids)
        self.vectors.committed(chunk_ids, np.zeros(0, dtype=np.int64), None)
        return len(doc_ids)

    def save(self) -> None:
        """Save the vectors (their index type following the collection's size)."""
        self.vectors.save()

    def reindex(self, kind: str = "auto", nlist: int = 0) -> str:
        """Rebuild the vectors as `kind`: flat, auto (what the size calls for), ivf (FAISS)
        or hnsw (pgvector). Returns the new index's description."""
        return self.vectors.reindex(kind, nlist)

    # --- reading -----------------------------------------------------------------

    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        with Session(self.engine) as s:
            found = s.execute(
                select(ChunkRow, DocumentRow.name, DocumentRow.path)
                .join(DocumentRow, DocumentRow.id == ChunkRow.document_id)
                .where(ChunkRow.id.in_(list(ids)))
            ).all()
        return {
            c.id: Chunk(id=c.id, document_id=c.document_id, document=name, path=path, ordinal=c.ordinal,
                        text=c.text, start=c.start, end=c.end, page=c.page)
            for c, name, path in found
        }

    def dense_search(self, query: "np.ndarray", k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """The k nearest chunks (id, cosine), best first, among those the filters allow."""
        return self.vectors.search(query, k, filters)

    def similarity(self, query: "np.ndarray", ids: Sequence[int]) -> dict[int, float]:
        """Cosine of the query with these chunks' vectors."""
        return self.vectors.similarity(query, ids)

    def lexical_search(self, query: str, k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """BM25 hits (chunk id, score), best first; empty where the database has no lexical index."""
        if self._lexical is None:
            try:
                self._lexical = lexical.available(self.engine)
            except Exception:  # a database never written: nothing to search
                self._lexical = False
        return lexical.search(self.engine, query, k, rows.where(filters) if filters else None) if self._lexical else []

    def chunk_ids(self, filters: Filters) -> list[int]:
        """Ids of the chunks of the documents these filters allow."""
        return rows.chunk_ids(self.engine, filters)

    def counts(self) -> dict[str, int]:
        with Session(self.engine) as s:
            try:
                docs = s.scalar(select(func.count()).select_from(DocumentRow)) or 0
                chunks = s.scalar(select(func.count()).select_from(ChunkRow)) or 0
            except Exception:  # an index whose database was never written
                docs = chunks = 0
        return {"documents": docs, "chunks": chunks, "vectors": len(self.vectors)}
