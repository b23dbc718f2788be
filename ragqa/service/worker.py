"""Ingestion workers: claim a job from the queue (ragqa.service.jobs), run it, record the outcome.

Run as many as the load needs, as processes on one machine or on several that share the
database and the index folder (`ragqa worker`; `--scale worker=N` in docker-compose).
A job runs the same code as `ragqa ingest` (RAG.ingest), with the writer lock taken
only while each batch is written, so workers embed in parallel and write one at a time.
While a job runs, a thread renews its lease; if the worker dies, the lease runs out and
another worker takes the job over (ingest is idempotent by content hash, so redoing
part of a job is harmless)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import IndexLockedError, RagqaError
from .jobs import INGEST, IngestJobs, Job, JobQueue, worker_name

if TYPE_CHECKING:
    from ..rag import RAG

log = logging.getLogger(__name__)

def run_job(rag: "RAG", job: Job) -> tuple[dict[str, Any] | None, str | None]:
    """Do one job: (result, error). An error raised on purpose is the job's failure."""
    if job.kind != INGEST:
        return None, f"unknown job kind {job.kind!r}"
    payload = job.payload
    report = rag.ingest(payload["paths"], prune=bool(payload.get("prune")), hold_lock=False)
    result = report.to_dict()
    error = None
    if report.failed and not (report.added or report.updated or report.unchanged or report.removed):
        error = "; ".join(f"{path}: {reason}" for path, reason in report.failed)
    return result, error


class Worker:
    def __init__(self, rag: "RAG", *, queue: JobQueue | None = None, name: str | None = None,
                 poll_s: float = 1.0):
        self.rag = rag
        self.queue = queue or IngestJobs(rag.settings).queue
        self.name = name or worker_name()
        self.poll_s = poll_s
        self.stopping = threading.Event()

    def stop(self) -> None:
        """Finish the job at hand, then return from run()."""
        self.stopping.set()

    def run(self, *, exit_when_idle: bool = False, on_job: Callable[[Job], None] | None = None) -> int:
        """Work until stop() (or, with exit_when_idle, until the queue is empty). Returns
        the number of jobs finished."""
        finished = 0
        while not self.stopping.is_set():
            job = self.queue.claim(self.name)
            if job is None:
                if exit_when_idle:
                    break
                self.stopping.wait(self.poll_s)
                continue
            outcome = self.process(job)
            if outcome is not None:
                finished += 1
                if on_job:
                    on_job(outcome)
        return finished

    def process(self, job: Job) -> Job | None:
        """Run a claimed job and record its outcome; returns the job as recorded (None when
        it went back to the queue, or was taken over by another worker)."""
        done = threading.Event()
        heartbeat = threading.Thread(target=self._renew, args=(job, done), daemon=True, name=f"lease-{job.id}")
        heartbeat.start()
        try:
            try:
                result, error = run_job(self.rag, job)
            except IndexLockedError as e:  # another writer held the index too long: retry later
                log.warning("job %d goes back to the queue: %s", job.id, e)
                self.queue.release(job)
                return None
            except RagqaError as e:
                result, error = None, str(e)
            except Exception as e:  # a bug must fail this job, not kill the worker
                log.exception("job %d failed", job.id)
                result, error = None, f"{type(e).__name__}: {e}"
        finally:
            done.set()
            heartbeat.join()
        if not self.queue.finish(job, result=result, error=error):
            log.warning("job %d was taken over by another worker after this one's lease ran out", job.id)
            return None
        log.info("job %d %s: %s%s", job.id, "failed" if error else "done", ", ".join(job.payload.get("paths", [])),
                 f" ({error})" if error else "")
        return self.queue.get(job.id)

    def _renew(self, job: Job, done: threading.Event) -> None:
        while not done.wait(self.queue.lease_s / 3):
            try:
                if not self.queue.renew(job):
                    log.warning("lost the lease on job %d", job.id)
                    return
            except Exception:  # the database blinked: try again at the next beat
                log.exception("could not renew the lease on job %d", job.id)
