"""The job queue on SQLite and on a real PostgreSQL server: states, leases, fencing, and
two worker processes racing for the same jobs (each done exactly once)."""

import multiprocessing as mp
import time
from pathlib import Path

import pytest

from ragqa.index.db import make_engine
from ragqa.service.jobs import DONE, FAILED, QUEUED, RUNNING, JobQueue


@pytest.fixture
def queue(db_url):
    engine = make_engine(db_url)
    yield JobQueue(engine, lease_s=30, max_attempts=2)
    engine.dispose()


def test_jobs_are_claimed_oldest_first_and_finished(queue):
    a = queue.enqueue("ingest", {"paths": ["/a.txt"]})
    b = queue.enqueue("ingest", {"paths": ["/b.txt"]})
    assert a.state == QUEUED and a.attempts == 0 and a.created_at > 1.7e9  # the database's clock, epoch seconds
    first = queue.claim("w1")
    assert (first.id, first.state, first.worker, first.attempts) == (a.id, RUNNING, "w1", 1)
    assert first.payload == {"paths": ["/a.txt"]}
    assert queue.claim("w2").id == b.id
    assert queue.claim("w3") is None  # nothing left to claim
    assert queue.finish(first, result={"added": ["/a.txt"]})
    done = queue.get(a.id)
    assert done.state == DONE and done.result == {"added": ["/a.txt"]} and done.finished_at >= done.started_at
    assert queue.counts() == {"queued": 0, "running": 1, "done": 1, "failed": 0}
    assert [j.id for j in queue.list()] == [b.id, a.id] and [j.id for j in queue.list(DONE)] == [a.id]


def test_a_failed_job_keeps_its_reason(queue):
    queue.enqueue("ingest", {"paths": ["/bad.pdf"]})
    job = queue.claim("w1")
    assert queue.finish(job, error="/bad.pdf: not a PDF file")
    got = queue.get(job.id)
    assert got.state == FAILED and got.error == "/bad.pdf: not a PDF file"
    assert got.to_dict()["error"] == "/bad.pdf: not a PDF file"


def test_an_expired_lease_lets_another_worker_take_the_job_and_fences_the_first(db_url):
    engine = make_engine(db_url)
    queue = JobQueue(engine, lease_s=0.3, max_attempts=3)
    queue.enqueue("ingest", {"paths": ["/a.txt"]})
    stale = queue.claim("dead-worker")
    assert queue.claim("w2") is None  # leased
    time.sleep(0.5)
    taken = queue.claim("w2")
    assert taken.id == stale.id and taken.worker == "w2" and taken.attempts == 2
    assert not queue.renew(stale) and not queue.finish(stale, result={})  # the old worker cannot write
    assert queue.renew(taken) and queue.finish(taken, result={"ok": True})
    assert queue.get(taken.id).state == DONE and queue.get(taken.id).worker == "w2"
    engine.dispose()


def test_a_job_abandoned_too_often_fails(db_url):
    engine = make_engine(db_url)
    queue = JobQueue(engine, lease_s=0.2, max_attempts=2)
    job = queue.enqueue("ingest", {"paths": ["/crashes-workers.pdf"]})
    assert queue.claim("w1") and (time.sleep(0.3) or True)
    assert queue.claim("w2") and (time.sleep(0.3) or True)
    assert queue.claim("w3") is None
    failed = queue.get(job.id)
    assert failed.state == FAILED and "abandoned" in failed.error and failed.attempts == 2
    engine.dispose()


def test_release_puts_a_job_back_without_counting_the_attempt(queue):
    queue.enqueue("ingest", {"paths": ["/a.txt"]})
    job = queue.claim("w1")
    assert queue.release(job)
    again = queue.get(job.id)
    assert again.state == QUEUED and again.attempts == 0 and again.worker is None
    assert queue.claim("w2").attempts == 1


def _race(url: str, name: str, start, out: str) -> None:
    """A worker loop that records every job it runs, then marks it done."""
    engine = make_engine(url)
    queue = JobQueue(engine, lease_s=60)
    start.wait()
    with open(out, "a", encoding="utf-8") as log:
        while (job := queue.claim(name)) is not None:
            log.write(f"{job.id}\n")
            log.flush()
            time.sleep(0.005)  # some work, so that the two interleave
            assert queue.finish(job, result={"by": name})
    engine.dispose()


def test_two_workers_racing_do_every_job_exactly_once(db_url, tmp_path):
    engine = make_engine(db_url)
    queue = JobQueue(engine)
    ids = {queue.enqueue("ingest", {"paths": [f"/doc{i}.txt"]}).id for i in range(80)}
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    procs = [ctx.Process(target=_race, args=(db_url, f"w{i}", start, str(log))) for i, log in enumerate(logs, 1)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # both processes up and waiting
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    runs = [[int(x) for x in Path(log).read_text().split()] for log in logs]
    every = runs[0] + runs[1]
    assert sorted(every) == sorted(ids)  # each job run once: none twice, none missed
    assert runs[0] and runs[1]  # both workers took part in the race
    assert queue.counts() == {"queued": 0, "running": 0, "done": 80, "failed": 0}
    assert {j.result["by"] for j in queue.list(limit=100)} == {"w1", "w2"}
    engine.dispose()
