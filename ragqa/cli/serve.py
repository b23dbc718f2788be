"""`ragqa serve` (the HTTP API and the page) and `ragqa worker` (ingestion jobs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from .common import IndexOpt, ModelOpt, app, err, open_rag

if TYPE_CHECKING:
    from ..service.jobs import Job
    from ..settings import Settings


@app.command()
def serve(
    index: IndexOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface; set RAGQA_API_KEY then).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    worker: Annotated[bool, typer.Option(
        "--worker/--no-worker", help="Also ingest uploads in this process (--no-worker: leave them to `ragqa worker`).")] = True,
    model: ModelOpt = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """The HTTP API: ask, stream, upload documents, jobs, status, OpenAI-compatible chat."""
    import ipaddress
    import logging

    from ..service import serve as run_server
    from ..settings import Settings

    settings = Settings.load(index=index, model=model)
    handler = logging.StreamHandler()  # the library's log (jobs done, warnings) beside uvicorn's
    handler.setFormatter(logging.Formatter("%(levelname)-9s %(name)s: %(message)s"))
    logging.getLogger("ragqa").addHandler(handler)
    logging.getLogger("ragqa").setLevel(logging.INFO)
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not _any_key(settings):
        err.print(f"[yellow]warning:[/] listening on {host} without an API key (RAGQA_API_KEY, or `ragqa keys add`): "
                  "anyone who can reach this port can read and change the index", highlight=False, soft_wrap=True)
    run_server(settings, host=host, port=port, worker=worker, log_level=log_level)


def _any_key(settings: Settings) -> bool:
    from ..index.db import make_engine
    from ..service.keys import Keys

    keys = Keys(make_engine(settings.resolved_database_url), settings.api_key)
    try:
        return keys.required()
    finally:
        keys.engine.dispose()


@app.command("worker")
def worker_(
    index: IndexOpt = None,
    exit_when_idle: Annotated[bool, typer.Option("--exit-when-idle", help="Stop when the queue is empty instead of waiting for more.")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between looks at an empty queue.")] = 1.0,
) -> None:
    """Ingest queued jobs (uploads, `ragqa ingest --queue`); run as many as the load needs."""
    import signal

    from ..index.db import redact
    from ..service.worker import Worker

    with open_rag(index) as rag:
        w = Worker(rag, poll_s=poll)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: w.stop())  # finish the job at hand, then leave
        err.print(f"worker {w.name} on {rag.index_dir} ({redact(rag.settings.resolved_database_url)})", highlight=False)

        def on_job(job: "Job") -> None:
            line = f"job {job.id} {job.state}: {', '.join(job.payload.get('paths', []))}"
            err.print(line + (f" [red]{job.error}[/]" if job.error else ""), highlight=False, soft_wrap=True)

        done = w.run(exit_when_idle=exit_when_idle, on_job=on_job)
    err.print(f"worker {w.name} stopped after {done} jobs", highlight=False)
