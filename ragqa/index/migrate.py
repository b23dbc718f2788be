"""Moving an index's vectors between FAISS and pgvector, keeping their chunk ids.

Each way, the new copy is complete before the manifest that points at it is, and the old
copy goes last: a crash leaves the index whole in one store or the other, and the
migration can be run again. The one module that knows both stores by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from ..errors import InputError
from . import faiss_store
from . import manifest as mf
from . import pgvector_store as pg
from .db import MetaRow
from .factory import open_vectors
from .faiss_index import FaissIndex
from .vectors import VECTOR_STORES

if TYPE_CHECKING:
    from .store import Store


def migrate_vectors(store: "Store", to: str) -> str:
    """Move the vectors of a store opened for writing to `to`; the new vector index's description."""
    if to not in VECTOR_STORES:
        raise InputError(f"vector store {to!r}: use one of {', '.join(VECTOR_STORES)}")
    if to == store.vector_store:
        return store.vectors.describe()
    if not store.write:
        raise RuntimeError("this index was opened for reading")
    mf.require_postgres(store.database_url)
    if to == mf.PGVECTOR:
        _to_pgvector(store)
    else:
        _to_faiss(store)
    return store.vectors.describe()


def _to_pgvector(store: "Store") -> None:
    source = store.vectors
    assert isinstance(source, faiss_store.FaissStore)
    if source.needs_repair():
        source.reconcile()
    ids, vectors = source.dump()
    pg.ensure(store.engine, store.dimension)
    manifest = store.manifest
    manifest["vectors"] = mf.vectors_entry(mf.PGVECTOR, pg.EXACT)
    with Session(store.engine) as s, s.begin():  # the vectors and the manifest that points at them
        pg.lock_writes(s)
        s.execute(text(f"DELETE FROM {pg.TABLE}"))  # a migration a crash interrupted
        pg.copy_in(s, ids, vectors)
        s.merge(mf.manifest_row(manifest))
    (store.index_dir / mf.MANIFEST).unlink(missing_ok=True)  # from here on the database's manifest is read
    (store.index_dir / faiss_store.VECTORS).unlink(missing_ok=True)
    (store.index_dir / faiss_store.PENDING).unlink(missing_ok=True)
    source.writer_lock.release()
    store.vectors = open_vectors(mf.PGVECTOR, index_dir=store.index_dir, engine=store.engine, manifest=manifest,
                                 options=store.options)
    store.vectors.save()  # HNSW, if the collection is large enough


def _to_faiss(store: "Store") -> None:
    source = store.vectors
    manifest = store.manifest
    target = faiss_store.FaissStore(store.index_dir, store.engine, manifest, store.options)
    store.index_dir.mkdir(parents=True, exist_ok=True)
    target.writer_lock.acquire(store.options.lock_timeout)
    ids, vectors = source.dump()
    index = FaissIndex(store.dimension, nprobe=store.options.nprobe)
    index.add(ids, vectors)
    index.adapt(store.options.ivf_min_vectors)
    manifest["vectors"] = mf.vectors_entry(mf.FAISS, index.factory)
    index.save(store.index_dir / faiss_store.VECTORS)
    target.write_manifest()  # to the folder (the manifest now says faiss): from here on it is read
    with Session(store.engine) as s, s.begin():
        s.execute(text(f"DROP TABLE IF EXISTS {pg.TABLE}"))
        s.execute(delete(MetaRow).where(MetaRow.key == "manifest"))
    target.load()
    store.vectors = target
