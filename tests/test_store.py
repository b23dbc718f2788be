"""The index's rows and vectors kept in step, on SQLite and on a real PostgreSQL server."""

import numpy as np
import pytest

from devkit.indexdata import CHUNKING, INFO, doc
from ragqa.errors import IndexLockedError, IndexMismatchError, IndexNotFoundError
from ragqa.index.locks import WriterLock
from ragqa.index.store import Store, make_engine


def open_w(tmp_path, db_url):
    """A writer that does not wait for another (lock_timeout 0: IndexLockedError at once)."""
    return Store.open(tmp_path / "idx", db_url, INFO, CHUNKING, write=True, lock_timeout=0)


def test_rows_and_vectors_stay_in_step(tmp_path, db_url):
    with open_w(tmp_path, db_url) as s:
        s.put_documents([doc("a", 3), doc("b", 2, 1)])
        assert s.counts() == {"documents": 2, "chunks": 5, "vectors": 5}
        s.put_documents([doc("a", 1, 2)])  # replace a
        assert s.counts() == {"documents": 2, "chunks": 3, "vectors": 3}
        s.remove_documents(["b"])
        assert s.counts() == {"documents": 1, "chunks": 1, "vectors": 1}
    with Store.open(tmp_path / "idx", db_url) as r:  # saved on close, reopened
        assert r.counts() == {"documents": 1, "chunks": 1, "vectors": 1}
        assert r.vectors.ids() == set(r.chunks(list(r.vectors.ids())))


def test_search_returns_the_chunk_of_the_nearest_vector(tmp_path, db_url):
    with open_w(tmp_path, db_url) as s:
        d = doc("a", 4, 3)
        s.put_documents([d])
        (cid, score), *_ = s.vectors.search(d.vectors[2], 1)
        assert s.chunks([cid])[cid].text == "a chunk 2"
        assert score == pytest.approx(1.0, abs=1e-5)


def test_chunk_ids_are_never_reused(tmp_path, db_url):
    with open_w(tmp_path, db_url) as s:
        s.put_documents([doc("a", 3)])
        first = s.vectors.ids()
        s.remove_documents(["a"])
        s.put_documents([doc("a", 3)])
        assert not first & s.vectors.ids()


def test_crash_after_db_commit_before_vector_save_is_repaired(tmp_path, db_url):
    with open_w(tmp_path, db_url) as s:
        s.put_documents([doc("kept", 2)])
    # a second writer commits rows, then "crashes" before the vectors are saved
    s = open_w(tmp_path, db_url)
    s.put_documents([doc("lost", 3, 1)])
    s.vectors.dirty = False  # the process dies: nothing saved, its locks freed
    s.vectors.writer_lock.release()
    s.engine.dispose()
    with open_w(tmp_path, db_url) as s2:
        assert s2.counts() == {"documents": 1, "chunks": 2, "vectors": 2}
        assert set(s2.documents_by_path()) == {"kept"}  # "lost" will be ingested again


def test_orphan_vectors_are_removed_on_open(tmp_path, db_url):
    with open_w(tmp_path, db_url) as s:
        s.put_documents([doc("a", 2)])
        s.vectors.add(np.array([999], dtype=np.int64), doc("x", 1).vectors)  # vector with no row
        s.save()
    with open_w(tmp_path, db_url) as s:
        assert 999 not in s.vectors.ids()
        assert s.counts()["vectors"] == 2


def test_other_embedder_is_refused(tmp_path, db_url):
    with open_w(tmp_path, db_url):
        pass
    with pytest.raises(IndexMismatchError, match="hash-embedder"):
        Store.open(tmp_path / "idx", db_url, {**INFO, "name": "other"}, CHUNKING, write=True)


def test_missing_index_is_a_clear_error(tmp_path, db_url):
    with pytest.raises(IndexNotFoundError, match="ragqa ingest"):
        Store.open(tmp_path / "nothing", db_url)


def test_one_writer_at_a_time(tmp_path, db_url):
    with open_w(tmp_path, db_url):
        with pytest.raises(IndexLockedError):
            open_w(tmp_path, db_url)


def test_writers_on_other_machines_sharing_a_postgresql_database_take_turns(tmp_path, postgres_url):
    """Two folders stand for two machines (each its own flock): the database's advisory
    lock still lets one write at a time, and a writer that dies frees it."""
    engines = [make_engine(postgres_url), make_engine(postgres_url)]
    a, b = WriterLock(tmp_path / "machine1", engines[0]), WriterLock(tmp_path / "machine2", engines[1])
    a.acquire()
    with pytest.raises(IndexLockedError):
        b.acquire(timeout=0.3)
    a.release()
    b.acquire(timeout=0.3)
    b._pg.invalidate()  # the holder's session ends, as when its process dies
    b._pg = None
    a.acquire(timeout=2)
    a.release(), b.release()
    for e in engines:
        e.dispose()
