"""The HTTP routes, one router per kind of use, each handler a thin call into the Service
(ragqa.service.state): what a client may ask of the index.

    health_routes    GET /healthz
    ask_routes       POST /v1/ask, GET /v1/models, POST /v1/chat/completions
    document_routes  POST, GET /v1/documents, DELETE /v1/documents/{name}
    job_routes       GET /v1/jobs, GET /v1/jobs/{id}
    status_routes    GET /v1/status
    ragqa.service.review_routes: the question log, reviews, the hand-off, certifying

Each router names the role a key needs for it (ragqa.service.keys): ask, review or admin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from .._version import __version__
from ..rag import MAX_QUESTION_CHARS
from ..types import Answer
from .guard import caller, needs
from .jobs import STATES
from .openai_compat import ChatRequest, ChunkStream, completion
from .scheduler import Ticket
from .state import Service
from .streaming import answer_stream, encode_ask, sse, stream

UPLOAD_PATH = "/v1/documents"


def get_service(request: Request) -> Service:
    return request.app.state.service


Svc = Annotated[Service, Depends(get_service)]


def via(request: Request) -> str:
    """The interface for the question log: the page says so in a header; other clients are http."""
    return "page" if request.headers.get("x-ragqa-client") == "page" else "http"


def asker(request: Request) -> str | None:
    """Who asked, for the question log: the key's label, never the key."""
    key = caller(request)
    return key.label if key is not None else None


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


health_routes = APIRouter()  # open
ask_routes = APIRouter(dependencies=[needs("ask")])
document_routes = APIRouter(dependencies=[needs("admin")])
job_routes = APIRouter(dependencies=[needs("admin")])
status_routes = APIRouter(dependencies=[needs("ask")])
ROUTERS = (health_routes, ask_routes, document_routes, job_routes, status_routes)


@health_routes.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@status_routes.get("/v1/status")
def status(service: Svc) -> dict[str, Any]:
    return service.status()


@ask_routes.post("/v1/ask", responses={200: {"description": "the Answer; with stream, text/event-stream"}})
async def ask(service: Svc, req: AskRequest, request: Request) -> Response:
    filters = req.filters.model_dump() if req.filters else None
    history = [(t.question, t.answer) for t in req.history]

    def produce() -> Iterator[str | Answer]:
        return answer_stream(service.rag, req.question, history, req.top_k, filters, interface=via(request),
                             asker=asker(request))

    if req.stream:
        return await stream(service.scheduler, produce, encode_ask, lambda body: sse("error", body))
    answer = await service.scheduler.run(lambda _t: [p for p in produce() if isinstance(p, Answer)][-1])
    return JSONResponse(answer.to_dict())


@ask_routes.get("/v1/models")
def models(service: Svc) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": service.model_name, "object": "model", "owned_by": "ragqa"}]}


@ask_routes.post("/v1/chat/completions")
async def chat_completions(service: Svc, req: ChatRequest, request: Request) -> Response:
    rag = service.rag
    question, history = req.question_and_history()
    options = req.ragqa
    top_k, filters = (options.top_k, options.filters) if options else (None, None)

    def produce() -> Iterator[str | Answer]:
        return answer_stream(rag, question, history, top_k, filters, interface="openai", asker=asker(request))

    model = req.model or service.model_name
    if req.stream:
        chunks = ChunkStream(model)
        return await stream(service.scheduler, produce, chunks.item, chunks.error, start=chunks.start())

    def answer(_t: Ticket) -> Answer:
        return [part for part in produce() if isinstance(part, Answer)][-1]

    return JSONResponse(completion(await service.scheduler.run(answer), model))


@document_routes.post(UPLOAD_PATH, status_code=202)
def upload(service: Svc, file: UploadFile = File(..., description="a .txt .md .rst .html .pdf or .docx file")) -> Response:
    job = service.jobs.upload(file.filename, file.file)
    return JSONResponse({"job": job.to_dict(), "document": Path(job.payload["upload"]).stem},
                        status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})


@document_routes.get(UPLOAD_PATH)
def documents(service: Svc) -> dict[str, Any]:
    return {"documents": service.admin.documents()}


@document_routes.delete(UPLOAD_PATH + "/{name}")
def delete_document(service: Svc, name: str) -> dict[str, Any]:
    return {"deleted": name, "paths": service.admin.delete_document(name)}


@job_routes.get("/v1/jobs/{job_id}")
def job(service: Svc, job_id: int) -> dict[str, Any]:
    return service.jobs.get(job_id).to_dict()


@job_routes.get("/v1/jobs")
def jobs(service: Svc, state: str | None = Query(None, pattern="^(" + "|".join(STATES) + ")$"),
         limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    return {"jobs": [j.to_dict() for j in service.jobs.queue.list(state, limit)]}
