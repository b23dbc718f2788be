"""Answers streamed to HTTP clients as they are written: the work runs on the scheduler's
thread (one question at a time), its pieces cross to the event loop, and a client that
leaves stops the generation. Server-sent events for /v1/ask; the OpenAI chunk shape is
ragqa.service.openai_compat."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from fastapi.responses import StreamingResponse

from ..errors import RagqaError
from ..rag import RAG
from ..types import Answer
from .guard import INTERNAL_MESSAGE, error_body, ragqa_error_body
from .scheduler import Scheduler, Ticket

log = logging.getLogger(__name__)


async def stream(scheduler: Scheduler, produce: Callable[[], Iterator[str | Answer]], encode: Callable[[Any], str],
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

    ticket = scheduler.submit(work)
    try:
        await scheduler.wait_turn(ticket)
        first = await items.get()
    except BaseException:
        scheduler.abandon(ticket)
        raise
    if first[0] == "error":
        raise first[1]

    async def body() -> AsyncIterator[str]:
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
            scheduler.abandon(ticket)  # stops the work if the client left early

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


def answer_stream(rag: RAG, question: str, history: Sequence[tuple[str, str]], top_k: int | None,
                  filters: dict[str, Any] | None, *, interface: str, asker: str | None = None) -> Iterator[str | Answer]:
    """The answer's pieces, then the Answer (logged with the interface and who asked);
    after earlier turns, the question is first rewritten to stand alone for retrieval."""
    query = rag.condense(history, question) if history else question
    yield from rag.stream(question, top_k=top_k, filters=filters, retrieval_query=query if query != question else None,
                          interface=interface, asker=asker)


def encode_ask(part: str | Answer) -> str:
    return sse("answer", part.to_dict()) if isinstance(part, Answer) else sse("token", {"text": part})
