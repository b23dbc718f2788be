"""What the app holds (`Service`): the RAG that answers, a second one for bookkeeping, the
job queue, the question line in front of the model, and the in-process worker."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from ..errors import IndexNotFoundError, RagqaError
from ..index.db import make_engine
from ..rag import RAG, embedder_for
from ..settings import Settings
from .jobs import IngestJobs
from .keys import Keys
from .scheduler import Scheduler, Ticket
from .worker import Worker
from .yielding import YieldingEmbedder


class Service:
    """What the app holds: the RAG that answers (used on the scheduler's thread only), a
    second one for bookkeeping (status, jobs, uploads, deletes: no model loads), and
    the in-process worker."""

    def __init__(self, settings: Settings, *, rag: RAG | None = None, worker: bool = True):
        self.settings = settings
        self.rag = rag or RAG(settings=settings)
        self.admin = self.rag.companion()
        self.jobs = IngestJobs(settings)
        self.keys = Keys(make_engine(settings.resolved_database_url), settings.api_key)
        self.admin_lock = threading.Lock()
        self.drawn: set[int] = set()  # questions /v1/reviews/next drew at random, not yet reviewed
        self.scheduler = Scheduler(settings.ask_queue, settings.ask_timeout)
        self.model_name = "ragqa"
        self.worker: Worker | None = None
        if worker:
            inner = rag.embedder if rag else embedder_for(settings)
            embedder = YieldingEmbedder(inner, self.scheduler.busy)
            self.worker = Worker(RAG(settings=settings, embedder=embedder), poll_s=0.5)
        self._worker_thread: threading.Thread | None = None

    def warm(self, _ticket: Ticket) -> str:
        """Load the models before the first question (fails fast on a missing model)."""
        gen = self.rag.generator
        gen.load()
        self.rag.embedder  # noqa: B018
        self.rag.policy.find()  # the calibration, with a warning if one exists for other models
        return gen.name

    @asynccontextmanager
    async def lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        self.jobs.queue  # noqa: B018 - creates the job table
        self.model_name = await self.scheduler.run(self.warm)
        if self.worker is not None:
            self._worker_thread = threading.Thread(target=self.worker.run, name="ragqa-worker", daemon=True)
            self._worker_thread.start()
        try:
            yield
        finally:
            if self.worker is not None:
                self.worker.stop()
                if self._worker_thread is not None:
                    self._worker_thread.join(60)
                self.worker.rag.close()
            self.scheduler.close()
            self.rag.close()
            self.admin.close()
            self.jobs.close()
            self.keys.engine.dispose()

    def status(self) -> dict[str, Any]:
        with self.admin_lock:
            try:
                info = {**self.admin.status(), "ready": True}
            except IndexNotFoundError:
                info = {"index": str(self.admin.index_dir), "documents": 0, "chunks": 0, "vectors": 0, "ready": False}
            info["jobs"] = self.jobs.queue.counts()
        try:  # the abstain threshold in use (above 1: none certified), for the page's confidence bar
            info["threshold"] = self.admin.policy.threshold
        except RagqaError:
            info["threshold"] = None
        info["questions"] = self.scheduler.stats()
        info["in_process_worker"] = self.worker is not None
        return info
