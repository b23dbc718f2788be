"""`ragqa serve`: the HTTP API (FastAPI on uvicorn), a thin layer over ragqa.rag.RAG.

    GET    /healthz                liveness; open without a key (with the page's files)
    GET    /v1/status              index, models, calibration, jobs, question queue
    POST   /v1/ask                 {"question", "top_k"?, "filters"?, "stream"?} -> the Answer of `ragqa ask --json`;
                                   "stream": true -> server-sent events `token`..., then `answer`
    POST   /v1/documents           multipart field `file` -> 202 and its ingestion job
    GET    /v1/documents           the documents of the index
    DELETE /v1/documents/{name}    a document, its chunks, vectors and uploaded file
    GET    /v1/jobs, /v1/jobs/{id} ingestion jobs: queued, running, done, failed (with the reason)
    POST   /v1/chat/completions    OpenAI-compatible (ragqa.service.openai_compat); GET /v1/models
    GET    /v1/questions/{id}      a logged question, and a person's answer once given
    /v1/log, /v1/reviews..., /v1/handoff, POST /v1/calibrate: a person in the loop (ragqa.service.review_routes)
    Keys have roles (ask, review, admin: ragqa.service.keys); a call without its role is a 403 naming it.
    OpenAPI: /openapi.json, /docs

The routes are ragqa.service.routes (one router per kind of use), the state they share
ragqa.service.state, the streamed answers ragqa.service.streaming.

Questions go through one Scheduler (one at a time, FIFO, bounded, 503 past the bound).
Uploads are ingested by workers: one in this process unless `worker=False`, and any
number of `ragqa worker` processes sharing the database. The server sees what they
write without a restart: RAG reopens the index when its vectors file changes."""

from __future__ import annotations

from fastapi import FastAPI

from .._version import __version__
from ..rag import RAG
from ..settings import Settings
from . import page, review_routes, routes
from .guard import ApiKeyMiddleware, BodyLimitMiddleware, install_error_handlers
from .routes import UPLOAD_PATH
from .state import Service


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
    app.add_middleware(ApiKeyMiddleware, keys=service.keys)  # outermost: no key, nothing read
    install_error_handlers(app)
    page.install(app)

    for router in (*routes.ROUTERS, *review_routes.ROUTERS):
        app.include_router(router)
    return app


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, worker: bool = True,
          log_level: str = "info") -> None:
    """Run the API until interrupted (uvicorn, one process: one model in memory)."""
    import uvicorn

    uvicorn.run(create_app(settings, worker=worker), host=host, port=port, log_level=log_level,
                timeout_graceful_shutdown=30)
