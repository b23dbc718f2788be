"""The ingestion job queue: a table in the index's database, shared by every worker.

    queued ──claim──▶ running ──finish──▶ done | failed
                        │ lease expires (the worker died)
                        └──▶ claimed again by another worker, up to `max_attempts` claims,
                             then failed ("abandoned")

A claim is one atomic UPDATE of the oldest claimable row: on PostgreSQL its subquery
takes the row `FOR UPDATE SKIP LOCKED`, so concurrent workers never wait on one another
nor take the same job; on SQLite the UPDATE runs in a `BEGIN IMMEDIATE` transaction,
which SQLite serialises. A claim carries a lease; the worker renews it while it works.
Finishing a job is fenced by (worker, attempt): a worker that lost its lease cannot
overwrite the outcome of the worker that took the job over.

Times come from the database's clock, not the workers', so that workers on machines
whose clocks disagree still agree on when a lease ends. Stored as seconds since the
epoch (float)."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from sqlalchemy import Float, Integer, String, Table, Text, and_, func, literal_column, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapped, mapped_column

from ..errors import InputError, NotFoundError
from ..index.db import Base
from ..settings import Settings

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STATES = (QUEUED, RUNNING, DONE, FAILED)
LEASE_S: float = Settings.job_lease
MAX_ATTEMPTS: int = Settings.job_attempts


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)  # JSON
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    state: str
    attempts: int
    worker: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    result: dict[str, Any] | None

    @classmethod
    def of(cls, row) -> "Job":
        return cls(id=row.id, kind=row.kind, payload=json.loads(row.payload), state=row.state,
                   attempts=row.attempts, worker=row.worker, created_at=row.created_at, started_at=row.started_at,
                   finished_at=row.finished_at, error=row.error,
                   result=json.loads(row.result) if row.result else None)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "state": self.state, "payload": self.payload, "attempts": self.attempts,
                "worker": self.worker, "created_at": _iso(self.created_at), "started_at": _iso(self.started_at),
                "finished_at": _iso(self.finished_at), "error": self.error, "result": self.result}


def worker_name() -> str:
    """host:pid:random, unique among the workers sharing a queue."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


JOBS = cast(Table, JobRow.__table__)


class JobQueue:
    def __init__(self, engine: Engine, *, lease_s: float = LEASE_S, max_attempts: int = MAX_ATTEMPTS):
        self.engine = engine
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        JOBS.create(engine, checkfirst=True)

    def _now(self):
        """The database's clock, in seconds since the epoch."""
        if self.engine.dialect.name == "postgresql":
            return literal_column("CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)")
        if self.engine.dialect.name == "sqlite":
            return literal_column("((julianday('now') - 2440587.5) * 86400.0)")
        return func.extract("epoch", func.now())

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A write transaction that takes the write lock up front on SQLite (a deferred
        transaction that reads first can fail to upgrade under contention)."""
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    # --- producers --------------------------------------------------------------------

    def enqueue(self, kind: str, payload: dict[str, Any]) -> Job:
        with self._transaction() as conn:
            row = conn.execute(JOBS.insert().values(
                kind=kind, payload=json.dumps(payload), state=QUEUED, attempts=0, created_at=self._now(),
            ).returning(*JOBS.c)).one()
        return Job.of(row)

    def get(self, job_id: int) -> Job | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(JOBS).where(JobRow.id == job_id)).first()
        return Job.of(row) if row is not None else None

    def list(self, state: str | None = None, limit: int = 100) -> list[Job]:
        query = select(JOBS).order_by(JobRow.id.desc()).limit(limit)
        if state:
            query = query.where(JobRow.state == state)
        with self.engine.connect() as conn:
            return [Job.of(r) for r in conn.execute(query)]

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            got = dict(conn.execute(select(JobRow.state, func.count()).group_by(JobRow.state)).all())
        return {state: int(got.get(state, 0)) for state in STATES}

    # --- workers ----------------------------------------------------------------------

    def claim(self, worker: str) -> Job | None:
        """The oldest queued job (or one whose lease expired), now running for `worker`."""
        t = JOBS
        now = self._now()
        expired = and_(t.c.state == RUNNING, t.c.lease_until < now)
        with self._transaction() as conn:
            conn.execute(update(t).where(expired, t.c.attempts >= self.max_attempts).values(
                state=FAILED, finished_at=now, lease_until=None,
                error=f"abandoned: its worker stopped before finishing it, {self.max_attempts} times"))
            oldest = (select(t.c.id).where(or_(t.c.state == QUEUED, expired)).order_by(t.c.id).limit(1)
                      .with_for_update(skip_locked=True).scalar_subquery())
            row = conn.execute(update(t).where(t.c.id == oldest).values(
                state=RUNNING, worker=worker, attempts=t.c.attempts + 1, lease_until=now + self.lease_s,
                started_at=now, error=None,
            ).returning(*t.c)).first()
        return Job.of(row) if row is not None else None

    def _mine(self, job: Job):
        t = JOBS
        return and_(t.c.id == job.id, t.c.state == RUNNING, t.c.worker == job.worker, t.c.attempts == job.attempts)

    def renew(self, job: Job) -> bool:
        """Extend the lease; False when the job is no longer this worker's."""
        with self._transaction() as conn:
            done = conn.execute(update(JOBS).where(self._mine(job))
                                .values(lease_until=self._now() + self.lease_s))
        return done.rowcount == 1

    def finish(self, job: Job, *, result: dict[str, Any] | None = None, error: str | None = None) -> bool:
        """Record the outcome: failed when `error` is given, else done. False (and nothing
        written) when the job is no longer this worker's."""
        with self._transaction() as conn:
            done = conn.execute(update(JOBS).where(self._mine(job)).values(
                state=FAILED if error else DONE, finished_at=self._now(), lease_until=None, error=error,
                result=json.dumps(result) if result is not None else None))
        return done.rowcount == 1

    def release(self, job: Job) -> bool:
        """Put a claimed job back in the queue without counting the attempt (the worker
        could not start it, e.g. it is stopping)."""
        with self._transaction() as conn:
            done = conn.execute(update(JOBS).where(self._mine(job)).values(
                state=QUEUED, worker=None, lease_until=None, started_at=None, attempts=JobRow.attempts - 1))
        return done.rowcount == 1


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat(timespec="seconds")


# --- ingest jobs: what `ragqa ingest --queue`, uploads and the workers share -----------

INGEST = "ingest"
# Files per queued job, and bytes: a job's fixed costs (opening the index, saving its
# vectors, a short embedding batch) made per-file jobs of 1 KiB files take 2.2x the time
# of one in-process ingest (bench/bench_service.py); large files still get a job each.
JOB_FILES = 16
JOB_BYTES = 2 << 20


def batches(files: list[Path], max_files: int = JOB_FILES, max_bytes: int = JOB_BYTES) -> Iterator[list[Path]]:
    """The files in order, grouped into jobs of at most max_files files and (unless one
    file alone is larger) max_bytes bytes."""
    batch: list[Path] = []
    size = 0
    for f in files:
        n = f.stat().st_size if f.exists() else 0
        if batch and (len(batch) >= max_files or size + n > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(f)
        size += n
    if batch:
        yield batch


class IngestJobs:
    """The index's ingest jobs: queue files (or an upload) for workers and look jobs up.
    The queue is a table in the index's database, created when first used."""

    def __init__(self, settings: "Settings"):
        self.settings = settings
        self._queue: JobQueue | None = None

    @property
    def queue(self) -> JobQueue:
        if self._queue is None:
            from ..index.db import make_engine

            s = self.settings
            self._queue = JobQueue(make_engine(s.resolved_database_url), lease_s=s.job_lease, max_attempts=s.job_attempts)
        return self._queue

    def enqueue(self, paths: Iterable[str | Path], *, files_per_job: int | None = None) -> list[Job]:
        """Queue the files under `paths`, in jobs of a few files (see `batches`: per-file
        jobs of small files cost twice the time)."""
        from ..ingest.run import IngestReport, discover

        paths = list(paths)
        found = discover(paths, IngestReport()) if paths else []  # raises InputError for a missing path
        if not found:
            raise InputError("nothing to queue: no supported files under " + ", ".join(map(str, paths)))
        return [self.queue.enqueue(INGEST, {"paths": [str(f) for f in batch]})
                for batch in batches(found, files_per_job or JOB_FILES)]

    def upload(self, filename: str | None, data: BinaryIO) -> Job:
        """Store a file sent by a client in the upload folder and queue its ingestion."""
        from . import uploads

        s = self.settings
        path = uploads.store(s.resolved_upload_dir, filename, data, s.max_upload_bytes)
        return self.queue.enqueue(INGEST, {"paths": [str(path)], "upload": path.name})

    def get(self, job_id: int) -> Job:
        found = self.queue.get(job_id)
        if found is None:
            raise NotFoundError(f"no job {job_id}")
        return found

    def close(self) -> None:
        if self._queue is not None:
            self._queue.engine.dispose()
