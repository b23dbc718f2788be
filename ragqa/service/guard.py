"""What stands between the network and ragqa's HTTP API: the API key, request size
limits, and errors turned into JSON (never a stack trace).

Every error body has one shape, the one OpenAI-compatible clients already read:
    {"error": {"message": "...", "type": "invalid_request", "code": 422}}"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Depends, HTTPException
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..errors import (
    BusyError,
    IndexLockedError,
    InputError,
    NotFoundError,
    RagqaError,
    TooLargeError,
)
from .keys import Key, Keys

log = logging.getLogger(__name__)

OPEN_PATHS = {"/healthz", "/", "/ui/app.js", "/ui/style.css"}  # answered without the key: health, and the page (no data)
JSON_BODY_LIMIT = 1 << 20  # questions and chat requests; uploads have their own limit
MULTIPART_SLACK = 64 << 10  # multipart headers and boundaries around an uploaded file

INTERNAL_MESSAGE = "internal error; the server log has the details"
TYPES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         413: "too_large", 422: "invalid_request", 503: "busy", 500: "internal"}


def error_body(status: int, message: str) -> dict:
    return {"error": {"message": message, "type": TYPES.get(status, "error"), "code": status}}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


def status_of(e: RagqaError) -> int:
    if isinstance(e, TooLargeError):
        return 413
    if isinstance(e, InputError):
        return 422
    if isinstance(e, NotFoundError):
        return 404
    if isinstance(e, (BusyError, IndexLockedError)):
        return 503
    return 500  # ConfigError, ModelError, IndexMismatchError: the operator's to fix; the message says how


def ragqa_error_body(e: RagqaError) -> tuple[int, dict]:
    """The status and JSON error of an error ragqa raised on purpose (a 500 is logged)."""
    status = status_of(e)
    if status == 500:
        log.error("%s: %s", type(e).__name__, e)
    return status, error_body(status, str(e))


def ragqa_error_response(e: RagqaError) -> JSONResponse:
    status, body = ragqa_error_body(e)
    headers = {"Retry-After": str(max(1, round(getattr(e, "retry_after", 5))))} if status == 503 else None
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app) -> None:
    @app.exception_handler(RagqaError)
    async def _ragqa(_request: Request, e: RagqaError):
        return ragqa_error_response(e)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, e: RequestValidationError):
        return error_response(422, validation_message(e.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, e: StarletteHTTPException):
        return error_response(e.status_code, str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(_request: Request, e: Exception):
        log.exception("unexpected error")
        return error_response(500, INTERNAL_MESSAGE)


def validation_message(errors) -> str:
    parts = []
    for err in errors:
        if err.get("type") == "json_invalid":  # loc is (body, character offset)
            at = err.get("loc", ())[1:]
            parts.append("the request body is not valid JSON" + (f" (at character {at[0]})" if at else ""))
            continue
        where = ".".join(str(x) for x in err.get("loc", ())[1:]) or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


class RequestTooLarge(HTTPException):
    """Raised from inside the body stream; FastAPI passes HTTPExceptions through as they are."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than its {limit / (1 << 20):g} MiB limit")


class ApiKeyMiddleware:
    """With any key (RAGQA_API_KEY, or keys made with `ragqa keys add`), every request but
    OPEN_PATHS needs `Authorization: Bearer <key>`; the key found (its label and roles) is
    put in the request's state for the routes' role checks (`needs`) and the question log."""

    def __init__(self, app, keys: Keys):
        self.app = app
        self.keys = keys

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or not self.keys.required():
            return await self.app(scope, receive, send)
        auth = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = auth.partition(b" ")
        key = self.keys.lookup(token.strip()) if scheme.lower() == b"bearer" and token.strip() else None
        if key is not None:
            scope.setdefault("state", {})["ragqa_key"] = key
            return await self.app(scope, receive, send)
        response = error_response(401, "missing or wrong API key: send the header Authorization: Bearer <key>",
                                  {"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


def caller(request: Request) -> Key | None:
    """The key the request came with (None: the API is open, no key exists)."""
    return getattr(request.state, "ragqa_key", None)


def needs(role: str) -> Any:
    """A router dependency: the caller's key has `role` (or admin), else 403 naming it."""

    def check(request: Request) -> None:
        key = caller(request)
        if key is not None and not key.may(role):
            raise HTTPException(403, f"the key {key.label!r} lacks the role {role!r}, which {request.method} "
                                     f"{request.url.path} needs (it has: {', '.join(sorted(key.roles))}); "
                                     f"make one with `ragqa keys add LABEL --role {role}`")

    return Depends(check)


class BodyLimitMiddleware:
    """Refuse a body over its limit before reading it when its length is declared, and
    stop reading it at the limit when it is not (chunked), with 413 either way."""

    def __init__(self, app, upload_path: str, upload_bytes: int):
        self.app = app
        self.upload_path = upload_path
        self.upload_bytes = upload_bytes + MULTIPART_SLACK

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        limit = self.upload_bytes if scope["path"] == self.upload_path else JSON_BODY_LIMIT
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _send_error(RequestTooLarge(limit), scope, receive, send)
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLarge(limit)
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except RequestTooLarge as e:
            if not started:
                await _send_error(e, scope, receive, send)


async def _send_error(e: HTTPException, scope, receive, send) -> None:
    await error_response(e.status_code, str(e.detail))(scope, receive, send)
