"""Ingestion workers (fast fakes for the models): several writers on one index take turns
and keep rows and vectors in step, on SQLite and on a real PostgreSQL server."""

import io
import multiprocessing as mp
import threading
import time
from pathlib import Path

import pytest

from devkit.indexdata import CHUNKING, INFO, doc
from ragqa import RAG
from ragqa.errors import IndexLockedError, NotFoundError
from ragqa.index.faiss_store import PENDING
from ragqa.index.store import Store
from ragqa.service.jobs import DONE, FAILED, QUEUED, IngestJobs
from ragqa.service.worker import Worker
from ragqa.testing import ExtractiveGenerator, HashEmbedder

TOPICS = ["volcano", "glacier", "harbour", "orchard", "comet", "canyon", "lagoon", "meadow"]


def fake_rag(index: Path, db_url: str, **kw) -> RAG:
    kw.setdefault("min_confidence", 0.5)  # no calibration applies to the fakes: a threshold of the test's own
    return RAG(index, database_url=db_url, embedder=HashEmbedder(), generator=ExtractiveGenerator(),
               min_relevance=0.1, **kw)


def write_docs(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        p = folder / f"note{i:03d}.txt"
        p.write_text(f"Note {i} is about the {topic} number {i}. The keeper of note{i} is called Keeper{i}.\n\n"
                     f"It was written on day {i} of the survey of the {topic}.\n", encoding="utf-8")
        paths.append(p)
    return paths


def assert_consistent(rag: RAG, n_docs: int) -> None:
    with Store.open(rag.index_dir, rag.settings.resolved_database_url) as store:
        counts = store.counts()
        assert counts["documents"] == n_docs and counts["chunks"] == counts["vectors"] > 0
        chunk_ids = set(store.chunks(sorted(store.vectors.ids())))
        assert chunk_ids == store.vectors.ids()  # every vector has its row and the other way round
    assert not (rag.index_dir / PENDING).exists()


def test_writers_without_a_held_lock_take_turns_and_see_each_other(tmp_path):
    url = f"sqlite:///{tmp_path / 'idx' / 'ragqa.db'}"
    a = Store.open(tmp_path / "idx", url, INFO, CHUNKING, write=True, hold_lock=False)
    b = Store.open(tmp_path / "idx", url, INFO, CHUNKING, write=True, hold_lock=False)
    with a.writing():
        a.put_documents([doc("a", 3)])
    with b.writing():  # b first loads what a saved, else its save would drop a's vectors
        b.put_documents([doc("b", 2, 1)])
    with a.writing():
        a.remove_documents(["b"])
        a.put_documents([doc("c", 1, 2)])
    a.close(), b.close()
    with Store.open(tmp_path / "idx", url) as r:
        assert r.counts() == {"documents": 2, "chunks": 4, "vectors": 4}
        assert r.vectors.ids() == set(r.chunks(list(r.vectors.ids())))


def test_a_writer_waits_for_the_lock_up_to_its_timeout(tmp_path):
    url = f"sqlite:///{tmp_path / 'idx' / 'ragqa.db'}"
    holder = Store.open(tmp_path / "idx", url, INFO, CHUNKING, write=True)
    with pytest.raises(IndexLockedError, match="another process is writing"):
        Store.open(tmp_path / "idx", url, write=True, lock_timeout=0.2)
    threading.Timer(0.3, holder.close).start()
    second = Store.open(tmp_path / "idx", url, write=True, lock_timeout=10)  # waits, then gets it
    second.close()


def test_an_interrupted_write_is_repaired_by_the_next_writer(tmp_path):
    url = f"sqlite:///{tmp_path / 'idx' / 'ragqa.db'}"
    with Store.open(tmp_path / "idx", url, INFO, CHUNKING, write=True) as s:
        s.put_documents([doc("kept", 2)])
    w = Store.open(tmp_path / "idx", url, INFO, CHUNKING, write=True, hold_lock=False)
    with pytest.raises(RuntimeError):
        with w.writing():
            w.put_documents([doc("lost", 3, 1)])  # rows committed ...
            raise RuntimeError("the process dies before the vectors are saved")
    w.close()
    assert (tmp_path / "idx" / PENDING).exists()
    other = Store.open(tmp_path / "idx", url, INFO, CHUNKING, write=True, hold_lock=False)
    with other.writing():
        pass
    assert other.counts() == {"documents": 1, "chunks": 2, "vectors": 2}
    other.close()


def _work(index: str, db_url: str, start) -> None:
    rag = fake_rag(Path(index), db_url)
    start.wait()
    Worker(rag, poll_s=0.05).run(exit_when_idle=True)
    rag.close()


def test_two_worker_processes_ingest_a_queued_folder_consistently(tmp_path, db_url):
    files = write_docs(tmp_path / "docs", 40)
    rag = fake_rag(tmp_path / "index", db_url)
    jobs = IngestJobs(rag.settings).enqueue([tmp_path / "docs"], files_per_job=1)  # many small jobs: many turns at the lock
    assert len(jobs) == 40 and all(j.state == QUEUED for j in jobs)
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_work, args=(str(tmp_path / "index"), db_url, start)) for _ in range(2)]
    for p in procs:
        p.start()
    time.sleep(1.0)
    start.set()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    done = IngestJobs(rag.settings).queue.list(limit=100)
    assert {j.state for j in done} == {DONE} and len(done) == 40
    assert len({j.worker for j in done}) == 2  # both workers wrote to the index
    assert_consistent(rag, len(files))
    hits = rag.retrieve("Keeper17 note17", 1)  # the reader sees every worker's vectors
    assert hits and hits[0].chunk.document == "note017"
    rag.close()


def test_a_queued_folder_is_cut_into_jobs_of_a_few_files(tmp_path):
    files = write_docs(tmp_path / "docs", 40)
    (tmp_path / "docs" / "big.txt").write_text("A long report. " * 200_000, encoding="utf-8")  # 3 MiB
    rag = fake_rag(tmp_path / "index", f"sqlite:///{tmp_path / 'ragqa.db'}")
    jobs = IngestJobs(rag.settings).enqueue([tmp_path / "docs"])
    sizes = [len(j.payload["paths"]) for j in jobs]
    assert sizes == [1, 16, 16, 8]  # big.txt, over the 2 MiB a job, alone
    assert sorted(p for j in jobs for p in j.payload["paths"]) == sorted(str(f.resolve()) for f in files + [tmp_path / "docs" / "big.txt"])
    rag.close()


def test_a_bad_file_fails_its_job_with_the_reason_and_the_rest_go_on(tmp_path):
    folder = tmp_path / "docs"
    write_docs(folder, 2)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    rag = fake_rag(tmp_path / "index", f"sqlite:///{tmp_path / 'ragqa.db'}")
    IngestJobs(rag.settings).enqueue([folder], files_per_job=1)
    finished = []
    assert Worker(rag).run(exit_when_idle=True, on_job=finished.append) == 3
    by_state = {j.payload["paths"][0].split("/")[-1]: j for j in finished}
    assert by_state["broken.pdf"].state == FAILED and "broken.pdf" in by_state["broken.pdf"].error
    assert by_state["note000.txt"].state == DONE and by_state["note000.txt"].result["added"]
    assert_consistent(rag, 2)
    rag.close()


def test_a_job_that_cannot_get_the_lock_goes_back_to_the_queue(tmp_path):
    folder = tmp_path / "docs"
    write_docs(folder, 1)
    url = f"sqlite:///{tmp_path / 'ragqa.db'}"
    rag = fake_rag(tmp_path / "index", url, lock_timeout=0.2)
    job = IngestJobs(rag.settings).enqueue([folder])[0]
    holder = Store.open(tmp_path / "index", url, {"name": "hash-embedder", "dimension": 256, "max_tokens": 128},
                        CHUNKING, write=True)
    worker = Worker(rag)
    assert worker.process(IngestJobs(rag.settings).queue.claim(worker.name)) is None
    back = IngestJobs(rag.settings).get(job.id)
    assert back.state == QUEUED and back.attempts == 0
    holder.close()
    assert Worker(rag).run(exit_when_idle=True) == 1 and IngestJobs(rag.settings).get(job.id).state == DONE
    rag.close()


def test_upload_then_delete(tmp_path):
    rag = fake_rag(tmp_path / "index", f"sqlite:///{tmp_path / 'ragqa.db'}")
    job = IngestJobs(rag.settings).upload("harbour.txt", io.BytesIO(b"The harbour master of Port Ellis is Ada Quill.\n"))
    assert job.payload["upload"] == "harbour.txt"
    assert Worker(rag).run(exit_when_idle=True) == 1
    answer = rag.ask("Who is the harbour master of Port Ellis?")
    assert not answer.abstained and answer.citations[0].document == "harbour"
    assert [d["name"] for d in rag.documents()] == ["harbour"]
    stored = tmp_path / "index" / "uploads" / "harbour.txt"
    assert rag.delete_document("harbour") == [str(stored.resolve())]
    assert not stored.exists() and rag.documents() == []
    assert rag.ask("Who is the harbour master of Port Ellis?").abstained
    with pytest.raises(NotFoundError):
        rag.delete_document("harbour")
    with pytest.raises(NotFoundError):
        IngestJobs(rag.settings).get(9999)
    rag.close()
