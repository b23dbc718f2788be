"""One index: SQL rows (documents, chunks) and vectors kept in step, and a manifest.

Two places for the vectors (the manifest's `vectors.store`):

- faiss (the default): a file in the index folder, kept in step with the rows as below.
- pgvector: a table in the index's PostgreSQL database (ragqa.pgvectors), written in the
  rows' own transaction, and the manifest in the database too (table `index_meta`), so
  that servers and workers on several machines share nothing but the database. None of
  the folder's lock, marker or repair below applies: transaction-scoped advisory locks, one
  per document path, serialise the writes of one document (each batch's few statements,
  not the embedding), and readers see each commit at once. `migrate_vectors` moves an index between the two, with its ids.

Layout of an index directory (faiss):
    manifest.json   embedder name and dimension, chunking, ragqa version
    ragqa.db        the SQLite database (unless RAGQA_DATABASE_URL names another)
    vectors.faiss   vectors keyed by chunk id
    .write.lock     held by the one process writing (see ragqa.locks)
    .write.pending  present while a write is under way; left behind by a crash

The database is the record; the vectors follow it. Writes commit the rows first, then
change the vectors in memory, then save them atomically. A crash between the two
leaves rows without vectors or vectors without rows; `reconcile()` drops both, and the
next ingest redoes the documents whose rows it dropped. It runs when a writer finds
`.write.pending` left behind, or rows and vectors that differ in number. Chunk ids are never
reused (AUTOINCREMENT), so a stale vector can never be taken for a new chunk.

Two ways to write. `Store.open(..., write=True)` holds the writer lock until close (a
bulk `ragqa ingest`: vectors saved every few thousand chunks). With `hold_lock=False`
(ingestion workers, several at once) the lock is taken only around each
`with store.writing():` block, which first reloads vectors another writer saved, and
saves before it lets go: the slow part of ingest, embedding, runs in parallel."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from .. import __version__
from ..errors import ConfigError, IndexMismatchError, IndexNotFoundError, InputError
from ..models.embed import VECTOR_KIND
from ..types import Chunk, ChunkSpan, Filters
from . import lexical
from . import pgvector_store as pgvectors
from .db import Base, ChunkRow, DocumentRow, MetaRow, make_engine
from .faiss_store import IVF_MIN_VECTORS, NPROBE, VectorIndex, plan
from .locks import WriterLock
from .pgvector_store import EF_SEARCH, HNSW_MIN_VECTORS, PgVectorIndex

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
PENDING = ".write.pending"
FAISS, PGVECTOR = "faiss", "pgvector"
VECTOR_STORES = (FAISS, PGVECTOR)


@dataclass(frozen=True)
class NewDocument:
    path: str
    name: str
    sha256: str
    size: int
    mtime: float
    chunks: Sequence[ChunkSpan]
    vectors: "np.ndarray"


def _where(filters: Filters) -> tuple[str, dict]:
    """SQL condition on a document row (alias `d`) for these filters, with its parameters."""
    parts, params = [], {}
    if filters.documents:
        names = ", ".join(f":doc{i}" for i in range(len(filters.documents)))
        parts.append(f"d.name IN ({names})")
        params.update({f"doc{i}": name for i, name in enumerate(filters.documents)})
    if filters.path_prefix:  # exact and case-sensitive, unlike LIKE on SQLite
        parts.append("substr(d.path, 1, :prefix_len) = :prefix")
        params.update({"prefix": filters.path_prefix, "prefix_len": len(filters.path_prefix)})
    return (" AND ".join(parts) or "1 = 1"), params


class Store:
    """Open with `Store.open(...)` to read, `Store.open(..., write=True)` to change."""

    def __init__(self, index_dir: Path, database_url: str, manifest: dict, write: bool, *,
                 ivf_min_vectors: int = IVF_MIN_VECTORS, nprobe: int = NPROBE, lock_timeout: float = 0.0,
                 ef_search: int = EF_SEARCH, hnsw_min_vectors: int = HNSW_MIN_VECTORS):
        self.index_dir = index_dir
        self.ivf_min_vectors = ivf_min_vectors
        self.nprobe = nprobe
        self.ef_search, self.hnsw_min_vectors = ef_search, hnsw_min_vectors
        self.database_url = database_url
        self.manifest = manifest
        self.write = write
        self.lock_timeout = lock_timeout
        self.engine = make_engine(database_url)
        self.lock = WriterLock(index_dir, self.engine)
        self._lexical: bool | None = None
        self.vectors: VectorIndex | PgVectorIndex
        if write:
            try:
                if self.in_database:  # no folder lock: the transactions serialise the writes
                    with pgvectors.setup_lock(self.engine):
                        self._create_tables()
                        self._adopt_or_write_manifest()
                else:
                    self.lock.acquire(lock_timeout)
                    self._create_tables()
            except BaseException:
                self.lock.release()
                self.engine.dispose()
                raise
        self._load_vectors()

    def _create_tables(self) -> None:
        Base.metadata.create_all(self.engine)
        lexical.ensure(self.engine)
        if self.in_database:
            pgvectors.ensure(self.engine, self.dimension)

    def _adopt_or_write_manifest(self) -> None:
        """pgvector: the manifest another process recorded first wins (two workers may start a
        new index at once); otherwise record this one."""
        found = _db_manifest(self.engine)
        if found is not None and vector_store_of(found) == PGVECTOR:
            check_embedder(found, self.manifest["embedder"], self.index_dir)
            self.manifest = found
        self._write_manifest()

    @property
    def vector_store(self) -> str:
        return vector_store_of(self.manifest)

    @property
    def in_database(self) -> bool:
        return self.vector_store == PGVECTOR

    @property
    def dimension(self) -> int:
        return int(self.manifest["embedder"]["dimension"])

    def _load_vectors(self) -> None:
        if self.in_database:
            self._vectors_stamp = None
            self.vectors = PgVectorIndex(self.engine, self.dimension, ef_search=self.ef_search,
                                         hnsw_min=self.hnsw_min_vectors)
            return
        path = self.index_dir / VECTORS
        self._vectors_stamp = file_stamp(path)
        self.vectors = VectorIndex.load(path, self.dimension, self.nprobe)

    # --- opening -----------------------------------------------------------------

    @classmethod
    def open(cls, index_dir: Path, database_url: str, embedder_info: dict | None = None,
             chunking: dict | None = None, write: bool = False, hold_lock: bool = True,
             vector_store: str | None = None, **options) -> "Store":
        """Open an index. With write=True, create it if missing (embedder_info and
        chunking are then recorded in its manifest) and repair a crashed write; the
        writer lock is then held until close, or, with hold_lock=False, only inside
        `writing()` blocks. `lock_timeout` (seconds) is how long to wait for it.
        `vector_store`: faiss or pgvector for a new index; for an existing one, None or
        the store it has (else IndexMismatchError: migrate it first)."""
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
            vector_store = vector_store or FAISS
            if vector_store == PGVECTOR:
                require_postgres(database_url)
            else:
                index_dir.mkdir(parents=True, exist_ok=True)
            manifest = {
                "format": 1,
                "ragqa_version": __version__,
                "created_at": _now().isoformat(timespec="seconds"),
                "embedder": embedder_info,
                "chunking": chunking,
                "vectors": _vectors_entry(vector_store, pgvectors.EXACT if vector_store == PGVECTOR else "IDMap2,Flat"),
            }
        else:
            raise no_index(index_dir)
        store = cls(index_dir, database_url, manifest, write, **options)
        if write:
            try:
                if not store.in_database:  # (pgvector: recorded under its setup lock)
                    store._write_manifest()
                if store._needs_repair():
                    store.reconcile()
                if hold_lock and not store.in_database:
                    store._mark_pending()
                else:
                    store.lock.release()
            except BaseException:
                store.close()
                raise
        return store

    @contextmanager
    def writing(self) -> Iterator["Store"]:
        """A write section. Under a held lock (write=True), nothing more to do. Otherwise
        take the lock, catch up with what other writers saved (repairing a write a crash
        interrupted), and save the vectors before letting the lock go."""
        if not self.write:
            raise RuntimeError("this index was opened for reading")
        if self.lock.held or self.in_database:
            yield self
            return
        self.lock.acquire(self.lock_timeout)
        try:
            if file_stamp(self.index_dir / VECTORS) != self._vectors_stamp:
                self._load_vectors()
            if self._needs_repair():
                self.reconcile()
            self._mark_pending()
            yield self
            if self.vectors.dirty:
                self.save()
            (self.index_dir / PENDING).unlink(missing_ok=True)
        finally:
            self.lock.release()

    def _needs_repair(self) -> bool:
        """A write was interrupted (its marker is left), or rows and vectors differ in number."""
        if self.in_database:
            return False
        if (self.index_dir / PENDING).exists():
            return True
        with Session(self.engine) as s:
            return (s.scalar(select(func.count()).select_from(ChunkRow)) or 0) != len(self.vectors)

    def _mark_pending(self) -> None:
        (self.index_dir / PENDING).touch()

    def close(self) -> None:
        try:
            if self.lock.held:
                if self.vectors.dirty:
                    self.save()
                (self.index_dir / PENDING).unlink(missing_ok=True)
        finally:
            self.lock.release()
            self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _write_manifest(self) -> None:
        if self.in_database:
            with Session(self.engine) as s, s.begin():
                s.merge(self._manifest_row())
            return
        path = self.index_dir / MANIFEST
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    def _manifest_row(self) -> MetaRow:
        return MetaRow(key="manifest", value=json.dumps(self.manifest, indent=2))

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
            if self.in_database:
                pgvectors.lock_paths(s, [d.path for d in docs])
            replaced = s.scalars(select(DocumentRow.id).where(DocumentRow.path.in_([d.path for d in docs]))).all()
            old_chunk_ids = _delete_documents(s, list(replaced))
            now = _now()
            rows = [DocumentRow(name=d.name, path=d.path, sha256=d.sha256, size=d.size, mtime=d.mtime,
                                n_chunks=len(d.chunks), updated_at=now) for d in docs]
            s.add_all(rows)
            s.flush()
            chunks = [ChunkRow(document_id=row.id, ordinal=i, text=c.text, start=c.start, end=c.end, page=c.page,
                               n_tokens=c.n_tokens) for row, d in zip(rows, docs) for i, c in enumerate(d.chunks)]
            s.add_all(chunks)
            s.flush()
            new_ids = np.asarray([c.id for c in chunks], dtype=np.int64)  # in the order of the vectors below
            vectors = np.concatenate([d.vectors for d in docs if len(d.chunks)]) if len(new_ids) else None
            if isinstance(self.vectors, PgVectorIndex):  # in this transaction (the old ones went with their rows)
                self.vectors.add(s, new_ids, vectors)
                return
        # committed: now the vectors follow
        assert isinstance(self.vectors, VectorIndex)
        self.vectors.remove(old_chunk_ids)
        if len(new_ids):
            self.vectors.add(new_ids, vectors)

    def remove_documents(self, paths: Iterable[str]) -> int:
        paths = list(paths)
        if not paths:
            return 0
        with Session(self.engine) as s, s.begin():
            if self.in_database:
                pgvectors.lock_paths(s, paths)
            doc_ids = s.scalars(select(DocumentRow.id).where(DocumentRow.path.in_(paths))).all()
            chunk_ids = _delete_documents(s, doc_ids)  # pgvector: their vectors with them (ON DELETE CASCADE)
        if isinstance(self.vectors, VectorIndex):
            self.vectors.remove(chunk_ids)
        return len(doc_ids)

    def save(self) -> None:
        """Save the vectors, first switching the index type if the collection's size calls for it
        (pgvector: nothing to save; the HNSW index is built once the collection is large enough)."""
        if isinstance(self.vectors, PgVectorIndex):
            if self.vectors.adapt():
                log.info("vectors of %s now in %s", self.index_dir, self.vectors.describe())
            return
        if self.vectors.adapt(self.ivf_min_vectors):
            log.info("vectors of %s now in %s", self.index_dir, self.vectors.describe())
        self._write_vectors()

    def reindex(self, kind: str = "auto", nlist: int = 0) -> str:
        """Rebuild the vectors as `kind` and save: FAISS flat, ivf, or auto (what the size calls
        for); pgvector hnsw, flat (exact: no ANN index) or auto."""
        if isinstance(self.vectors, PgVectorIndex):
            if kind == "ivf":
                raise InputError("pgvector indexes are hnsw or flat (exact); ivf is for FAISS")
            if kind == "auto":
                kind = pgvectors.HNSW if len(self.vectors) >= self.hnsw_min_vectors else pgvectors.EXACT
            self.vectors.rebuild(pgvectors.EXACT if kind == "flat" else kind)
            return self.vectors.describe()
        if kind == "hnsw":
            raise InputError("hnsw is for pgvector; FAISS indexes are flat or ivf")
        if kind == "auto":
            kind, nlist = plan(len(self.vectors), self.ivf_min_vectors)
        self.vectors.rebuild(kind, nlist)
        self._write_vectors()
        return self.vectors.describe()

    def _write_vectors(self) -> None:
        """Save the vectors, the manifest first recording their index type if it changed."""
        assert isinstance(self.vectors, VectorIndex)
        if self.manifest.get("vectors", {}).get("faiss") != self.vectors.factory:
            self.manifest["vectors"] = _vectors_entry(FAISS, self.vectors.factory)
            self._write_manifest()
        self.vectors.save(self.index_dir / VECTORS)
        self._vectors_stamp = file_stamp(self.index_dir / VECTORS)

    def reconcile(self) -> dict[str, int]:
        """Make rows and vectors agree after a crash: the rows are the record."""
        assert isinstance(self.vectors, VectorIndex)
        with Session(self.engine) as s:
            chunk_ids = set(s.scalars(select(ChunkRow.id)).all())
        vector_ids = self.vectors.ids()
        orphans = vector_ids - chunk_ids
        missing = chunk_ids - vector_ids
        dropped = 0
        if orphans:
            self.vectors.remove(orphans)
        if missing:
            with Session(self.engine) as s, s.begin():
                doc_ids = s.scalars(select(ChunkRow.document_id).where(ChunkRow.id.in_(missing)).distinct()).all()
                stale = _delete_documents(s, doc_ids)
                dropped = len(doc_ids)
            self.vectors.remove(stale)
        if orphans or missing:
            log.warning("repaired index %s: %d orphan vectors removed, %d half-written documents dropped",
                        self.index_dir, len(orphans), dropped)
            self.save()
        return {"orphan_vectors": len(orphans), "dropped_documents": dropped}

    # --- reading -----------------------------------------------------------------

    def chunks(self, ids: Sequence[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        with Session(self.engine) as s:
            rows = s.execute(
                select(ChunkRow, DocumentRow.name, DocumentRow.path)
                .join(DocumentRow, DocumentRow.id == ChunkRow.document_id)
                .where(ChunkRow.id.in_(list(ids)))
            ).all()
        return {
            c.id: Chunk(id=c.id, document_id=c.document_id, document=name, path=path, ordinal=c.ordinal,
                        text=c.text, start=c.start, end=c.end, page=c.page)
            for c, name, path in rows
        }

    def dense_search(self, query: "np.ndarray", k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """The k nearest chunks (id, cosine), best first, among those the filters allow."""
        if isinstance(self.vectors, PgVectorIndex):  # the filter is SQL beside the vectors
            return self.vectors.search(query, k, _where(filters) if filters else None)
        allowed = self.chunk_ids(filters) if filters else None
        if allowed is not None and not allowed:
            return []
        return self.vectors.search(query, k, allowed)

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
        return lexical.search(self.engine, query, k, _where(filters) if filters else None) if self._lexical else []

    def chunk_ids(self, filters: Filters) -> list[int]:
        """Ids of the chunks of the documents these filters allow."""
        condition, params = _where(filters)
        sql = text(f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE {condition}")
        with self.engine.connect() as conn:
            return [int(r[0]) for r in conn.execute(sql, params)]

    # --- moving the vectors -----------------------------------------------------------

    def migrate_vectors(self, to: str) -> str:
        """Move the vectors to the other store (faiss <-> pgvector), with the same chunk ids.
        Each way, the new copy is complete before the manifest that points at it is, and the
        old copy goes last: a crash leaves the index whole in one store or the other, and the
        migration can be run again. Returns the new vector index's description."""
        if to not in VECTOR_STORES:
            raise InputError(f"vector store {to!r}: use one of {', '.join(VECTOR_STORES)}")
        if to == self.vector_store:
            return self.vectors.describe()
        if not self.write:
            raise RuntimeError("this index was opened for reading")
        require_postgres(self.database_url)
        import numpy as np

        if to == PGVECTOR:
            assert isinstance(self.vectors, VectorIndex)
            if self._needs_repair():
                self.reconcile()
            ids = np.sort(np.fromiter(self.vectors.ids(), dtype=np.int64))
            vectors = self.vectors.vectors(ids)
            pgvectors.ensure(self.engine, self.dimension)
            self.manifest["vectors"] = _vectors_entry(PGVECTOR, pgvectors.EXACT)
            with Session(self.engine) as s, s.begin():  # the vectors and the manifest that points at them
                pgvectors.lock_writes(s)
                s.execute(text(f"DELETE FROM {pgvectors.TABLE}"))  # a migration a crash interrupted
                PgVectorIndex.add(s, ids, vectors)
                s.merge(self._manifest_row())
            (self.index_dir / MANIFEST).unlink(missing_ok=True)  # from here on the database's manifest is read
            (self.index_dir / VECTORS).unlink(missing_ok=True)
            (self.index_dir / PENDING).unlink(missing_ok=True)
            self.lock.release()
            self._load_vectors()
            self.save()  # HNSW, if the collection is large enough
            return self.vectors.describe()
        assert isinstance(self.vectors, PgVectorIndex)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self.lock.acquire(self.lock_timeout)
        ids, vectors = self.vectors.dump()
        faiss_index = VectorIndex(self.dimension, nprobe=self.nprobe)
        faiss_index.add(ids, vectors)
        faiss_index.adapt(self.ivf_min_vectors)
        self.manifest["vectors"] = _vectors_entry(FAISS, faiss_index.factory)
        faiss_index.save(self.index_dir / VECTORS)
        self._write_manifest()  # to the folder (the manifest now says faiss): from here on it is read
        with Session(self.engine) as s, s.begin():
            s.execute(text(f"DROP TABLE IF EXISTS {pgvectors.TABLE}"))
            s.execute(delete(MetaRow).where(MetaRow.key == "manifest"))
        self._load_vectors()
        return self.vectors.describe()

    def counts(self) -> dict[str, int]:
        with Session(self.engine) as s:
            try:
                docs = s.scalar(select(func.count()).select_from(DocumentRow)) or 0
                chunks = s.scalar(select(func.count()).select_from(ChunkRow)) or 0
            except Exception:  # an index whose database was never written
                docs = chunks = 0
        return {"documents": docs, "chunks": chunks, "vectors": len(self.vectors)}


def no_index(index_dir: Path) -> IndexNotFoundError:
    return IndexNotFoundError(f"no index at {index_dir} (run `ragqa ingest PATH --index {index_dir}` first)")


def _delete_documents(s: Session, doc_ids: Sequence[int]) -> list[int]:
    """Delete these documents and their chunks in the session's transaction; returns the
    chunk ids deleted (their vectors go once the transaction has committed)."""
    if not doc_ids:
        return []
    chunk_ids = list(s.scalars(select(ChunkRow.id).where(ChunkRow.document_id.in_(doc_ids))).all())
    s.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(doc_ids)))
    s.execute(delete(DocumentRow).where(DocumentRow.id.in_(doc_ids)))
    s.flush()
    return chunk_ids


def check_embedder(manifest: dict, embedder_info: dict, index_dir: Path) -> None:
    recorded = manifest.get("embedder", {})
    if recorded.get("name") != embedder_info.get("name") or int(recorded.get("dimension", -1)) != int(embedder_info["dimension"]):
        raise IndexMismatchError(
            f"the index at {index_dir} was built with embedder {recorded.get('name')!r} "
            f"({recorded.get('dimension')} dimensions), not {embedder_info.get('name')!r} "
            f"({embedder_info.get('dimension')}): use that embedder, or ingest into a new --index"
        )
    made, asked = recorded.get("backend") or "torch", embedder_info.get("backend")
    if asked and VECTOR_KIND.get(made) != VECTOR_KIND.get(asked):
        raise IndexMismatchError(
            f"the index at {index_dir} was embedded with the {made} backend ({VECTOR_KIND.get(made)} vectors); "
            f"RAGQA_EMBED_BACKEND={asked} makes {VECTOR_KIND.get(asked)} vectors, which are not mixed into it: "
            f"unset RAGQA_EMBED_BACKEND (the index's own backend is then used), or ingest into a new --index"
        )


def read_manifest(index_dir: Path, database_url: str | None = None) -> dict | None:
    """An index's manifest, or None when there is no index there: the index folder's file
    (faiss), else, on PostgreSQL, the one kept in the database (pgvector)."""
    path = Path(index_dir) / MANIFEST
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    if not database_url or not database_url.startswith("postgresql"):
        return None
    engine = make_engine(database_url)
    try:
        return _db_manifest(engine)
    finally:
        engine.dispose()


def _db_manifest(engine) -> dict | None:
    """The manifest kept in the database (pgvector), or None."""
    with engine.connect() as conn:
        if not conn.execute(text("SELECT to_regclass('index_meta') IS NOT NULL")).scalar():
            return None
        found = conn.execute(select(MetaRow.value).where(MetaRow.key == "manifest")).scalar()
    return json.loads(found) if found else None


def vector_store_of(manifest: dict) -> str:
    """Where an index keeps its vectors (faiss for manifests that predate the choice)."""
    return manifest.get("vectors", {}).get("store") or FAISS


def _vectors_entry(store: str, index: str) -> dict:
    return {"store": store, "index" if store == PGVECTOR else "faiss": index, "metric": "inner_product"}


def require_postgres(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        raise ConfigError("the pgvector vector store needs a PostgreSQL database: set RAGQA_DATABASE_URL="
                          "postgresql+psycopg://... (its server needs the pgvector extension)")


def recorded_backend(index_dir: Path, database_url: str | None = None) -> str | None:
    """The embedding backend an existing index was built with (torch when its manifest
    predates backends), or None when there is no index yet (or none that can be read:
    opening it says why)."""
    try:
        manifest = read_manifest(index_dir, database_url)
    except Exception:
        return None
    return None if manifest is None else manifest.get("embedder", {}).get("backend") or "torch"


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What identifies one saved version of a file (a save replaces it by rename)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
