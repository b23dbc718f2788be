"""The FAISS vector store: the vectors in a file beside the manifest, kept in step with the
rows by one writer at a time, and repaired after a crash.

Layout of an index directory:
    manifest.json   embedder name and dimension, chunking, ragqa version
    ragqa.db        the SQLite database (unless RAGQA_DATABASE_URL names another)
    vectors.faiss   vectors keyed by chunk id (ragqa.index.faiss_index)
    .write.lock     held by the one process writing (ragqa.index.locks)
    .write.pending  present while a write is under way; left behind by a crash

The database is the record; the vectors follow it. Writes commit the rows first, then
change the vectors in memory, then save them atomically. A crash between the two
leaves rows without vectors or vectors without rows; `reconcile()` drops both, and the
next ingest redoes the documents whose rows it dropped. It runs when a writer finds
`.write.pending` left behind, or rows and vectors that differ in number. Chunk ids are never
reused (AUTOINCREMENT), so a stale vector can never be taken for a new chunk.

Two ways to write. A writer that holds the lock (`begin_writes(hold=True)`: a bulk
`ragqa ingest`) saves every few thousand chunks and at close. Otherwise (ingestion
workers, several at once) the lock is taken only around each `writing()` section, which
first reloads vectors another writer saved, and saves before it lets go: the slow part
of ingest, embedding, runs in parallel."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from ..errors import InputError
from ..types import Filters
from . import manifest as mf
from . import rows
from .faiss_index import FaissIndex, plan
from .locks import WriterLock

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.orm import Session

    from .vectors import VectorOptions

log = logging.getLogger(__name__)

VECTORS = "vectors.faiss"
PENDING = ".write.pending"


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What identifies one saved version of a file (a save replaces it by rename)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class FaissStore:
    name = mf.FAISS

    def __init__(self, index_dir: Path, engine: Engine, manifest: dict, options: "VectorOptions"):
        self.index_dir, self.engine, self.manifest, self.options = Path(index_dir), engine, manifest, options
        self.dimension = int(manifest["embedder"]["dimension"])
        self.writer_lock = WriterLock(self.index_dir, engine)
        self.index = FaissIndex(self.dimension, nprobe=options.nprobe)
        self._stamp: tuple[int, int, int] | None = None

    @property
    def path(self) -> Path:
        return self.index_dir / VECTORS

    def __len__(self) -> int:
        return len(self.index)

    def describe(self) -> str:
        return self.index.describe()

    def sizes(self) -> dict[str, int]:
        return {}

    # --- opening ------------------------------------------------------------------

    def open_writer(self, create_tables: Callable[[], None]) -> None:
        self.writer_lock.acquire(self.options.lock_timeout)
        try:
            create_tables()
            self.write_manifest()
        except BaseException:
            self.writer_lock.release()
            raise

    def load(self) -> None:
        self._stamp = file_stamp(self.path)
        self.index = FaissIndex.load(self.path, self.dimension, self.options.nprobe)

    def begin_writes(self, hold: bool) -> None:
        if self.needs_repair():
            self.reconcile()
        if hold:
            self._mark_pending()
        else:
            self.writer_lock.release()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Under a held lock, nothing more to do. Otherwise take the lock, catch up with what
        other writers saved (repairing a write a crash interrupted), and save the vectors
        before letting the lock go."""
        if self.writer_lock.held:
            yield
            return
        self.writer_lock.acquire(self.options.lock_timeout)
        try:
            if file_stamp(self.path) != self._stamp:
                self.load()
            if self.needs_repair():
                self.reconcile()
            self._mark_pending()
            yield
            self._finish_writes()
        finally:
            self.writer_lock.release()

    def close(self) -> None:
        try:
            if self.writer_lock.held:
                self._finish_writes()
        finally:
            self.writer_lock.release()

    def _finish_writes(self) -> None:
        """Save what changed, then clear the marker of a write under way."""
        if self.dirty:
            self.save()
        (self.index_dir / PENDING).unlink(missing_ok=True)

    def write_manifest(self) -> None:
        mf.write_file(self.index_dir, self.manifest)

    def _mark_pending(self) -> None:
        (self.index_dir / PENDING).touch()

    # --- crash repair -----------------------------------------------------------------

    def needs_repair(self) -> bool:
        """A write was interrupted (its marker is left), or rows and vectors differ in number."""
        if (self.index_dir / PENDING).exists():
            return True
        return rows.count_chunks(self.engine) != len(self.index)

    def reconcile(self) -> dict[str, int]:
        """Make rows and vectors agree after a crash: the rows are the record."""
        chunk_ids = set(rows.chunk_ids(self.engine))
        vector_ids = self.index.ids()
        orphans = vector_ids - chunk_ids
        missing = chunk_ids - vector_ids
        dropped = 0
        if orphans:
            self.index.remove(orphans)
        if missing:
            dropped, stale = rows.drop_documents_of_chunks(self.engine, list(missing))
            self.index.remove(stale)
        if orphans or missing:
            log.warning("repaired index %s: %d orphan vectors removed, %d half-written documents dropped",
                        self.index_dir, len(orphans), dropped)
            self.save()
        return {"orphan_vectors": len(orphans), "dropped_documents": dropped}

    # --- reading ------------------------------------------------------------------

    def ids(self) -> set[int]:
        return self.index.ids()

    def vectors(self, ids: "np.ndarray | Sequence[int]") -> "np.ndarray":
        return self.index.vectors(ids)

    def dump(self) -> tuple["np.ndarray", "np.ndarray"]:
        import numpy as np

        ids = np.sort(np.fromiter(self.index.ids(), dtype=np.int64))
        return ids, self.index.vectors(ids)

    def search(self, query: "np.ndarray", k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        allowed = rows.chunk_ids(self.engine, filters) if filters else None
        if allowed is not None and not allowed:
            return []
        return self.index.search(query, k, allowed)

    def similarity(self, query: "np.ndarray", ids: Iterable[int]) -> dict[int, float]:
        return self.index.similarity(query, ids)

    # --- writing ------------------------------------------------------------------

    def lock(self, session: "Session", paths: Sequence[str]) -> None:
        """The writer lock is held already (one writer at a time)."""

    def insert(self, session: "Session", ids: "np.ndarray", vectors: "np.ndarray | None") -> None:
        """Nothing inside the transaction: the vectors follow once the rows committed."""

    def committed(self, removed: Iterable[int], ids: "np.ndarray", vectors: "np.ndarray | None") -> None:
        self.index.remove(removed)
        if len(ids) and vectors is not None:
            self.index.add(ids, vectors)

    def add(self, ids: "np.ndarray", vectors: "np.ndarray") -> None:
        """Vectors alone, with no rows (tests of the repair; migration)."""
        self.index.add(ids, vectors)

    @property
    def dirty(self) -> bool:
        return self.index.dirty

    @dirty.setter
    def dirty(self, value: bool) -> None:
        self.index.dirty = value

    def save(self) -> None:
        """Save the vectors if they changed, first switching the index type if the
        collection's size calls for it."""
        adapted = self.index.adapt(self.options.ivf_min_vectors)
        if adapted:
            log.info("vectors of %s now in %s", self.index_dir, self.index.describe())
        if adapted or self.dirty:
            self._write()

    def reindex(self, kind: str, nlist: int = 0) -> str:
        if kind == "hnsw":
            raise InputError("hnsw is for pgvector; FAISS indexes are flat or ivf")
        if kind == "auto":
            kind, nlist = plan(len(self.index), self.options.ivf_min_vectors)
        self.index.rebuild(kind, nlist)
        self._write()
        return self.index.describe()

    def _write(self) -> None:
        """Save the vectors, the manifest first recording their index type if it changed."""
        if self.manifest.get("vectors", {}).get("faiss") != self.index.factory:
            self.manifest["vectors"] = mf.vectors_entry(mf.FAISS, self.index.factory)
            self.write_manifest()
        self.index.save(self.path)
        self._stamp = file_stamp(self.path)
