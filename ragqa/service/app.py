"""`ragqa serve`: the HTTP API (FastAPI on uvicorn), a thin layer over ragqa.pipeline.RAG.

    GET    /healthz                liveness; the only path open without the API key
    GET    /v1/status              index, models, calibration, jobs, question queue
    POST   /v1/ask                 {"question", "top_k"?, "filters"?, "stream"?} -> the Answer of `ragqa ask --json`;
                                   "stream": true -> server-sent events `token`..., then `answer`
    POST   /v1/documents           multipart field `file` -> 202 and its ingestion job
    GET    /v1/documents           the documents of the index
    DELETE /v1/documents/{name}    a document, its chunks, vectors and uploaded file
    GET    /v1/jobs, /v1/jobs/{id} ingestion jobs: queued, running, done, failed (with the reason)
    POST   /v1/chat/completions    OpenAI-compatible (ragqa.service.openai_compat); GET /v1/models
    OpenAPI: /openapi.json, /docs

Questions go through one Scheduler (one at a time, FIFO, bounded, 503 past the bound).
Uploads are ingested by workers: one in this process unless `worker=False`, and any
number of `ragqa worker` processes sharing the database. The server sees what they
write without a restart: RAG reopens the index when its vectors file changes."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Query, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from .. import __version__
from ..errors import IndexNotFoundError, RagqaError
from ..rag import MAX_QUESTION_CHARS, RAG, embedder_for
from ..settings import Settings
from ..types import Answer
from . import page
from .guard import (
    INTERNAL_MESSAGE,
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    error_body,
    install_error_handlers,
    ragqa_error_body,
)
from .jobs import STATES, IngestJobs
from .openai_compat import ChatRequest, ChunkStream, completion
from .scheduler import Scheduler, Ticket
from .worker import Worker

log = logging.getLogger(__name__)

UPLOAD_PATH = "/v1/documents"


class FiltersModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    documents: list[str] = Field(default_factory=list, description="document names (file names without extension)")
    path_prefix: str | None = Field(None, description="only documents whose path starts with this")


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(max_length=MAX_QUESTION_CHARS)
    answer: str = Field("", max_length=4000)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    top_k: int | None = Field(None, ge=1, le=20, description="sources given to the model")
    filters: FiltersModel | None = None
    stream: bool = False
    history: list[Turn] = Field(default_factory=list, max_length=10,
                                description="earlier turns: the question is then a follow-up, rewritten to stand "
                                            "alone for retrieval (the answer's retrieval_query)")


class YieldingEmbedder:
    """The in-process worker's embedder: it embeds in slices and, before each, waits while
    a question is being answered or one was less than `quiet` seconds ago (a client
    asking again), at most `max_wait` seconds a slice, so that ingest never starves. Torch and
    llama.cpp on the same cores slow each other down: answers
    took 1.8x as long while this process ingested, before it yielded (see the README)."""

    SLICE = 16

    def __init__(self, inner, busy: Callable[[float], bool], quiet: float = 1.0, max_wait: float = 5.0):
        self.inner, self.busy, self.quiet, self.max_wait = inner, busy, quiet, max_wait

    def __getattr__(self, name: str):  # name, dimension, max_tokens, count_tokens, close
        return getattr(self.inner, name)

    def embed(self, texts):
        import numpy as np

        texts = list(texts)
        parts = []
        for i in range(0, len(texts), self.SLICE):
            deadline = time.monotonic() + self.max_wait
            while self.busy(self.quiet) and time.monotonic() < deadline:
                time.sleep(0.05)
            parts.append(self.inner.embed(texts[i: i + self.SLICE]))
        return np.concatenate(parts) if parts else self.inner.embed([])


class Service:
    """What the app holds: the RAG that answers (used on the scheduler's thread only), a
    second one for bookkeeping (status, jobs, uploads, deletes: no model loads), and
    the in-process worker."""

    def __init__(self, settings: Settings, *, rag: RAG | None = None, worker: bool = True):
        self.settings = settings
        self.rag = rag or RAG(settings=settings)
        self.admin = RAG(settings=settings)
        self.jobs = IngestJobs(settings)
        self.admin_lock = threading.Lock()
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
        if load := getattr(gen, "load", None):
            load()
        self.rag.embedder  # noqa: B018
        self.rag.scorer  # noqa: B018 - finds the calibration, warns if it does not fit
        return getattr(gen, "name", "ragqa")

    @asynccontextmanager
    async def lifespan(self, _app: FastAPI):
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

    def status(self) -> dict[str, Any]:
        with self.admin_lock:
            try:
                info = {**self.admin.status(), "ready": True}
            except IndexNotFoundError:
                info = {"index": str(self.admin.index_dir), "documents": 0, "chunks": 0, "vectors": 0, "ready": False}
            info["jobs"] = self.jobs.queue.counts()
        try:  # the abstain threshold in use (above 1: none certified), for the page's confidence bar
            info["threshold"] = self.admin.min_confidence
        except RagqaError:
            info["threshold"] = None
        info["questions"] = self.scheduler.stats()
        info["in_process_worker"] = self.worker is not None
        return info

    async def stream(self, produce: Callable[[], Iterator[str | Answer]], encode: Callable[[Any], str],
                     encode_error: Callable[[dict], str], start: str = "") -> StreamingResponse:
        """Run `produce` on the scheduler's thread and send what it yields as it comes.
        A refusal, or an error before the first item, is an HTTP status; a later error is
        the stream's last event."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue = asyncio.Queue()

        def put(kind: str, value: Any, ticket: Ticket) -> None:
            try:
                loop.call_soon_threadsafe(items.put_nowait, (kind, value))
            except RuntimeError:  # the event loop is gone
                ticket.cancelled.set()

        def work(ticket: Ticket) -> None:
            parts = produce()
            try:
                for part in parts:
                    if ticket.cancelled.is_set():  # the client left: stop generating
                        break
                    put("item", part, ticket)
            except BaseException as e:
                put("error", e, ticket)
                return
            finally:
                close = getattr(parts, "close", None)
                if close:
                    close()
            put("end", None, ticket)

        ticket = self.scheduler.submit(work)
        try:
            await self.scheduler.wait_turn(ticket)
            first = await items.get()
        except BaseException:
            self.scheduler.abandon(ticket)
            raise
        if first[0] == "error":
            raise first[1]

        async def body():
            kind, value = first
            try:
                if start:
                    yield start
                while kind == "item":
                    text = encode(value)
                    if text:
                        yield text
                    kind, value = await items.get()
                if kind == "error":
                    yield encode_error(stream_error_body(value))
            finally:
                self.scheduler.abandon(ticket)  # stops the work if the client left early

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def stream_error_body(e: BaseException) -> dict[str, Any]:
    """The JSON error of an exception raised after a stream began."""
    if isinstance(e, RagqaError):
        return ragqa_error_body(e)[1]
    log.error("error while streaming", exc_info=e)
    return error_body(500, INTERNAL_MESSAGE)


def answer_stream(rag: RAG, question: str, history, top_k, filters) -> Iterator[str | Answer]:
    """The answer's pieces, then the Answer; after earlier turns, the question is first
    rewritten to stand alone for retrieval."""
    query = rag.condense(history, question) if history else question
    yield from rag.stream(question, top_k=top_k, filters=filters, retrieval_query=query if query != question else None)


def encode_ask(part: str | Answer) -> str:
    return sse("answer", part.to_dict()) if isinstance(part, Answer) else sse("token", {"text": part})


def create_app(settings: Settings | None = None, *, rag: RAG | None = None, worker: bool = True) -> FastAPI:
    """The app. `rag`: the RAG that answers (and whose embedder the worker uses), for an
    app embedded in your own process or tested in-process with ragqa.testing's fakes;
    by default one is built from `settings`. The app closes it when it shuts down."""
    settings = settings or (rag.settings if rag else Settings.load())
    service = Service(settings, rag=rag, worker=worker)
    app = FastAPI(title="ragqa", version=__version__, lifespan=service.lifespan,
                  description="Answers questions from your own documents, with checked citations, or abstains.")
    app.state.service = service
    app.add_middleware(BodyLimitMiddleware, upload_path=UPLOAD_PATH,
                       upload_bytes=settings.max_upload_bytes)
    app.add_middleware(ApiKeyMiddleware, key=settings.api_key)  # outermost: no key, nothing read
    install_error_handlers(app)
    page.install(app)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/v1/status")
    def status() -> dict[str, Any]:
        return service.status()

    @app.post("/v1/ask", responses={200: {"description": "the Answer; with stream, text/event-stream"}})
    async def ask(req: AskRequest):
        filters = req.filters.model_dump() if req.filters else None
        history = [(t.question, t.answer) for t in req.history]

        def produce() -> Iterator[str | Answer]:
            return answer_stream(service.rag, req.question, history, req.top_k, filters)

        if req.stream:
            return await service.stream(produce, encode_ask, lambda body: sse("error", body))
        answer = await service.scheduler.run(lambda _t: [p for p in produce() if isinstance(p, Answer)][-1])
        return JSONResponse(answer.to_dict())

    @app.post(UPLOAD_PATH, status_code=202)
    def upload(file: UploadFile = File(..., description="a .txt .md .rst .html .pdf or .docx file")):
        job = service.jobs.upload(file.filename, file.file)
        return JSONResponse({"job": job.to_dict(), "document": Path(job.payload["upload"]).stem},
                            status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    @app.get(UPLOAD_PATH)
    def documents() -> dict[str, Any]:
        return {"documents": service.admin.documents()}

    @app.delete(UPLOAD_PATH + "/{name}")
    def delete_document(name: str) -> dict[str, Any]:
        return {"deleted": name, "paths": service.admin.delete_document(name)}

    @app.get("/v1/jobs/{job_id}")
    def job(job_id: int) -> dict[str, Any]:
        return service.jobs.get(job_id).to_dict()

    @app.get("/v1/jobs")
    def jobs(state: str | None = Query(None, pattern="^(" + "|".join(STATES) + ")$"),
             limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        return {"jobs": [j.to_dict() for j in service.jobs.queue.list(state, limit)]}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": service.model_name, "object": "model", "owned_by": "ragqa"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatRequest):
        rag = service.rag
        question, history = req.question_and_history()
        options = req.ragqa
        top_k, filters = (options.top_k, options.filters) if options else (None, None)

        def produce() -> Iterator[str | Answer]:
            return answer_stream(rag, question, history, top_k, filters)

        model = req.model or service.model_name
        if req.stream:
            chunks = ChunkStream(model)
            return await service.stream(produce, chunks.item, chunks.error, start=chunks.start())

        def answer(_t: Ticket) -> Answer:
            return [part for part in produce() if isinstance(part, Answer)][-1]

        return JSONResponse(completion(await service.scheduler.run(answer), model))

    return app


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, worker: bool = True,
          log_level: str = "info") -> None:
    """Run the API until interrupted (uvicorn, one process: one model in memory)."""
    import uvicorn

    uvicorn.run(create_app(settings, worker=worker), host=host, port=port, log_level=log_level,
                timeout_graceful_shutdown=30)
