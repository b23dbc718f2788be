"""The page a person asks from (`GET /`): one HTML file, one script and one style sheet,
served by ragqa itself from ragqa/service/static/ (nothing from outside: no CDN, no
build step). The page holds no data, so it is open without the API key; everything it
shows comes from the API, which asks for the key (the page prompts for it once and sends
it as a bearer token). A Content-Security-Policy lets the page load only from this
server and run no inline script, a second guard beside the script's rule of putting
document text on the page as text only."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import Response

FILES = {"/": ("index.html", "text/html; charset=utf-8"),
         "/ui/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/ui/style.css": ("style.css", "text/css; charset=utf-8")}
PATHS = frozenset(FILES)  # open without the key (ragqa.service.guard)
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def install(app: FastAPI) -> None:
    for path, (name, media_type) in FILES.items():
        body = resources.files("ragqa.service").joinpath("static", name).read_bytes()

        def serve(body: bytes = body, media_type: str = media_type) -> Response:
            return Response(body, media_type=media_type, headers=HEADERS)

        app.add_api_route(path, serve, methods=["GET"], include_in_schema=False)
