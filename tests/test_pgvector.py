"""Vectors in PostgreSQL with pgvector, on a real server with the extension (tests/postgres.py):
rows and vectors in one transaction (a writer killed inside it leaves neither), search
exact and HNSW, filters, the manifest in the database, and migration both ways."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

from devkit.indexdata import CHUNKING, INFO, doc
from ragqa.errors import ConfigError, IndexMismatchError
from ragqa.index.faiss_store import VECTORS
from ragqa.index.manifest import MANIFEST, read_manifest
from ragqa.index.migrate import migrate_vectors
from ragqa.index.pgvector_store import EXACT, HNSW
from ragqa.index.store import Store, make_engine
from ragqa.types import Filters

ROOT = Path(__file__).resolve().parent.parent


def open_pg(folder: Path, url: str, **options) -> Store:
    return Store.open(folder, url, INFO, CHUNKING, write=True, vector_store="pgvector", **options)


def orphans(url: str) -> tuple[int, int]:
    """(chunks without a vector, vectors without a chunk)."""
    engine = make_engine(url)
    with engine.connect() as c:
        rows = c.execute(text("SELECT count(*) FROM chunks c LEFT JOIN chunk_vectors v ON v.chunk_id = c.id "
                              "WHERE v.chunk_id IS NULL")).scalar()
        vectors = c.execute(text("SELECT count(*) FROM chunk_vectors v LEFT JOIN chunks c ON c.id = v.chunk_id "
                                 "WHERE c.id IS NULL")).scalar()
    engine.dispose()
    return rows, vectors


def test_rows_and_vectors_are_written_together_and_the_folder_holds_nothing(tmp_path, pgvector_url):
    with open_pg(tmp_path / "idx", pgvector_url) as s:
        s.put_documents([doc("a", 3), doc("b", 2, 1)])
        assert s.counts() == {"documents": 2, "chunks": 5, "vectors": 5}
        s.put_documents([doc("a", 1, 2)])  # replace a: its old vectors went with its rows
        assert s.counts() == {"documents": 2, "chunks": 3, "vectors": 3}
        s.remove_documents(["b"])
        assert s.counts() == {"documents": 1, "chunks": 1, "vectors": 1}
    assert not (tmp_path / "idx" / MANIFEST).exists() and not (tmp_path / "idx" / VECTORS).exists()
    # another machine: its own (empty) folder, the same database
    assert read_manifest(tmp_path / "elsewhere", pgvector_url)["vectors"]["store"] == "pgvector"
    with Store.open(tmp_path / "elsewhere", pgvector_url) as r:
        assert r.counts() == {"documents": 1, "chunks": 1, "vectors": 1}
        assert r.vectors.ids() == set(r.chunks(list(r.vectors.ids())))
    assert orphans(pgvector_url) == (0, 0)


def test_a_reader_sees_each_commit_without_reopening(tmp_path, pgvector_url):
    d = doc("late", 4, 7)
    with open_pg(tmp_path / "w", pgvector_url) as w:
        w.put_documents([doc("early", 2)])
        with Store.open(tmp_path / "r", pgvector_url) as r:
            assert r.dense_search(d.vectors[1], 1)[0][1] < 0.99
            w.put_documents([d])
            (cid, score), *_ = r.dense_search(d.vectors[1], 1)
            assert r.chunks([cid])[cid].text == "late chunk 1" and score == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("kind", [EXACT, HNSW])
def test_search_exact_and_hnsw_finds_the_nearest_and_filters_are_exact(tmp_path, pgvector_url, kind):
    docs = [doc(f"dir{i % 2}/d{i}", 40, i) for i in range(10)]
    with open_pg(tmp_path / "idx", pgvector_url, hnsw_min_vectors=0 if kind == HNSW else 10**6) as s:
        s.put_documents(docs)
        s.save()
        assert s.vectors.kind == kind
        all_vectors = np.concatenate([d.vectors for d in docs])
        ids = np.asarray(sorted(s.vectors.ids()))
        for probe in (0, 77, 399):
            (cid, score), *_ = s.dense_search(all_vectors[probe], 5)
            assert cid == ids[probe] and score == pytest.approx(1.0, abs=1e-5)
        # a filter: exactly the brute-force best among the rows it keeps, whatever the index
        query = all_vectors[5] + all_vectors[205]
        query /= np.linalg.norm(query)
        kept = [cid for cid, c in s.chunks(list(ids)).items() if c.path == "dir1/d3"]
        truth = sorted(kept, key=lambda i: -float(s.vectors.vectors([i])[0] @ query))[:10]
        got = s.dense_search(query, 10, Filters(documents=["dir1/d3"]))
        assert [i for i, _ in got] == truth
        got = s.dense_search(query, 10, Filters(path_prefix="dir1/"))
        assert {s.chunks([i])[i].path[:5] for i, _ in got} == {"dir1/"}
        assert s.similarity(query, [i for i, _ in got]) == pytest.approx(dict(got), abs=1e-5)


# The child writes one batch and stops inside its transaction, before or after the vectors'
# COPY; the test kills it there.
WRITER = textwrap.dedent("""
    import time
    from ragqa.index import pgvector_store as pgvectors
    from ragqa.index.store import Store
    from devkit.indexdata import CHUNKING, INFO, doc

    real = pgvectors.copy_in
    def add(session, ids, vectors):
        if {when!r} == "after":
            real(session, ids, vectors)
        print("in the transaction", flush=True)
        time.sleep(60)
    pgvectors.copy_in = add
    store = Store.open({folder!r}, {url!r}, INFO, CHUNKING, write=True, vector_store="pgvector")
    store.put_documents([doc("doomed", 50, 9), doc("kept", 3, 1)])
""")


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_writer_killed_inside_its_transaction_leaves_no_chunk_without_its_vector(tmp_path, pgvector_url, when):
    with open_pg(tmp_path / "idx", pgvector_url) as s:
        s.put_documents([doc("kept", 3, 1), doc("other", 2, 2)])
        before = s.counts()
    script = WRITER.format(when=when, folder=str(tmp_path / "idx"), url=pgvector_url)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=ROOT)  # devkit is found from the repository's root
    line = child.stdout.readline()
    assert line.strip() == "in the transaction", child.stderr.read()
    os.kill(child.pid, signal.SIGKILL)
    child.wait(30)
    with Store.open(tmp_path / "idx", pgvector_url) as r:
        assert r.counts() == before  # the replaced "kept" is still the old one: the transaction never happened
        assert {c.document for c in r.chunks(sorted(r.vectors.ids())).values()} == {"kept", "other"}
    assert orphans(pgvector_url) == (0, 0)


def test_pgvector_needs_postgresql_and_an_index_keeps_its_store(tmp_path, pgvector_url):
    with pytest.raises(ConfigError, match="needs a PostgreSQL database"):
        open_pg(tmp_path / "lite", f"sqlite:///{tmp_path / 'lite.db'}")
    with Store.open(tmp_path / "f", f"sqlite:///{tmp_path / 'f.db'}", INFO, CHUNKING, write=True) as s:
        s.put_documents([doc("a", 2)])
    with pytest.raises(IndexMismatchError, match="migrate-vectors --to pgvector"):
        Store.open(tmp_path / "f", f"sqlite:///{tmp_path / 'f.db'}", vector_store="pgvector")


def test_migration_both_ways_keeps_ids_vectors_and_answers(tmp_path, pgvector_url):
    folder = tmp_path / "idx"
    docs = [doc(f"d{i}", 30, i) for i in range(4)]
    with Store.open(folder, pgvector_url, INFO, CHUNKING, write=True) as s:  # FAISS, rows on PostgreSQL
        s.put_documents(docs)
        ids = np.asarray(sorted(s.vectors.ids()))
        vectors = s.vectors.vectors(ids)
        query = docs[2].vectors[3]
        faiss_hits = s.dense_search(query, 5)
    with Store.open(folder, pgvector_url, write=True) as s:
        assert migrate_vectors(s, "pgvector") == "pgvector exact"
    assert not (folder / MANIFEST).exists() and not (folder / VECTORS).exists()
    with Store.open(folder, pgvector_url) as r:
        assert r.vector_store == "pgvector" and r.counts() == {"documents": 4, "chunks": 120, "vectors": 120}
        np.testing.assert_allclose(r.vectors.vectors(ids), vectors, atol=1e-7)
        assert [i for i, _ in r.dense_search(query, 5)] == [i for i, _ in faiss_hits]
    with Store.open(folder, pgvector_url, write=True) as s:
        assert migrate_vectors(s, "faiss") == "IDMap2,Flat"
    assert (folder / MANIFEST).exists() and (folder / VECTORS).exists()
    with Store.open(folder, pgvector_url) as r:
        assert r.vector_store == "faiss" and r.counts()["vectors"] == 120
        np.testing.assert_allclose(r.vectors.vectors(ids), vectors, atol=1e-7)
        assert dict(r.dense_search(query, 5)) == pytest.approx(dict(faiss_hits))
    engine = make_engine(pgvector_url)
    with engine.connect() as c:  # nothing of pgvector's left behind
        assert c.execute(text("SELECT to_regclass('chunk_vectors')")).scalar() is None
    engine.dispose()


def test_reindex_on_pgvector_builds_or_drops_hnsw_and_refuses_ivf(tmp_path, pgvector_url):
    from ragqa.errors import InputError

    with open_pg(tmp_path / "idx", pgvector_url, hnsw_min_vectors=100) as s:
        s.put_documents([doc("a", 60), doc("b", 60, 1)])
        assert s.reindex("hnsw").startswith("pgvector HNSW") and s.vectors.kind == HNSW
        assert s.reindex("flat") == "pgvector exact"
        assert s.reindex("auto").startswith("pgvector HNSW")  # 120 vectors >= hnsw_min_vectors
        with pytest.raises(InputError, match="ivf is for FAISS"):
            s.reindex("ivf")


def test_writes_of_one_document_wait_for_each_other_and_others_do_not(tmp_path, pgvector_url):
    import threading

    from sqlalchemy.orm import Session

    from ragqa.index import pgvector_store as pgvectors

    with open_pg(tmp_path / "idx", pgvector_url) as s:
        s.put_documents([doc("a", 2), doc("b", 2, 1)])
    writers = [open_pg(tmp_path / f"w{i}", pgvector_url) for i in range(2)]
    holder = Session(writers[0].engine)
    try:
        holder.begin()
        pgvectors.lock_paths(holder, ["a"])  # a transaction writing "a", not yet committed
        other = threading.Thread(target=writers[1].put_documents, args=([doc("b", 3, 2)],))
        same = threading.Thread(target=writers[1].put_documents, args=([doc("a", 3, 3)],))
        other.start()
        other.join(30)
        assert not other.is_alive()  # "b" was written while "a" is held
        same.start()
        same.join(1.0)
        assert same.is_alive()  # "a" waits for the holder
        holder.commit()
        same.join(30)
        assert not same.is_alive()
    finally:
        holder.close()
    # two writers replacing the same document over and over: no unique-key collision, one copy
    errors = []

    def replace(store, seed):
        try:
            for i in range(10):
                store.put_documents([doc("a", 4, seed + i)])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=replace, args=(w, 10 * i)) for i, w in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for w in writers:
        w.close()
    assert not errors, errors
    with Store.open(tmp_path / "r", pgvector_url) as r:
        assert r.counts() == {"documents": 2, "chunks": 7, "vectors": 7}
    assert orphans(pgvector_url) == (0, 0)
