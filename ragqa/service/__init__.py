"""ragqa as a service: the HTTP API (`ragqa serve`) and the ingestion workers
(`ragqa worker`), over the core library. The core never imports this package.

    app.py            the FastAPI app: routes, the question line, streaming
    guard.py          API key, request size limits, errors as JSON (never a traceback)
    scheduler.py      one question at a time in front of the model, with a bounded line
    uploads.py        checked upload names, atomic writes into the upload folder
    openai_compat.py  the OpenAI chat-completions shape
    jobs.py           the job queue in the database; ingest jobs (batches, uploads)
    worker.py         the worker loop: claim, run, renew the lease, record
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..settings import Settings

__all__ = ["create_app", "serve"]


def create_app(settings: "Settings | None" = None, **options: Any) -> "FastAPI":
    from .app import create_app as _create_app

    return _create_app(settings, **options)


def serve(settings: "Settings", **options: Any) -> None:
    from .app import serve as _serve

    _serve(settings, **options)
