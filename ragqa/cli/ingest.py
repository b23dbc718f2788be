"""`ragqa ingest` (here, or queued for workers) and `ragqa jobs`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .common import IndexOpt, app, console, err, open_rag


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest.", show_default=False)],
    index: IndexOpt = None,
    prune: Annotated[bool, typer.Option("--prune", help="Remove documents whose files are gone.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    queue: Annotated[bool, typer.Option("--queue", help="Queue jobs for `ragqa worker` processes instead of ingesting here.")] = False,
    files_per_job: Annotated[int, typer.Option("--files-per-job", min=1, help="With --queue: files in one job (larger files go alone past 2 MiB).")
    ] = 16,
) -> None:
    """Add files and folders to an index (.txt .md .rst .html .pdf .docx). Unchanged files are skipped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .render import failures_table, ingest_summary, skipped_table

    if queue:
        if prune:
            raise typer.BadParameter("--prune runs here, not in workers: run it without --queue")
        from ..service.jobs import IngestJobs

        with open_rag(index) as rag:
            queued = IngestJobs(rag.settings)
            try:
                jobs = queued.enqueue(paths, files_per_job=files_per_job)
            finally:
                queued.close()
        if json_out:
            console.print_json(json.dumps([j.to_dict() for j in jobs]))
        else:
            console.print(f"queued {len(jobs)} jobs (ids {jobs[0].id}-{jobs[-1].id}) for `ragqa worker`; "
                          f"`ragqa jobs` shows their state", highlight=False)
        return

    with open_rag(index) as rag:
        progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[chunks]} chunks · {task.fields[rate]}"), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), console=err, disable=json_out, transient=False)
        state: dict[str, Any] = {"chunks": 0, "task": None}
        import time as _time

        t0 = _time.perf_counter()

        def on_event(kind: str, **data: Any) -> None:
            if kind == "start":
                progress.start()  # started here, so an early error prints no empty progress line
                state["task"] = progress.add_task("ingesting", total=data["files"], chunks=0, rate="")
            elif kind == "file":
                progress.advance(state["task"])
            elif kind == "embedded":
                state["chunks"] += data["chunks"]
                rate = state["chunks"] / max(1e-9, _time.perf_counter() - t0)
                progress.update(state["task"], chunks=state["chunks"], rate=f"{rate:.0f} chunks/s")

        try:
            report = rag.ingest(paths, prune=prune, on_event=on_event)
        finally:
            progress.stop()
    if json_out:
        console.print_json(json.dumps(report.to_dict()))
    else:
        if report.chunks_embedded == 0 and not report.failed and report.unchanged:
            console.print(f"Nothing to do: all {len(report.unchanged)} files are unchanged (no embedding work).")
        console.print(ingest_summary(report))
        if report.failed:
            console.print(failures_table(report))
        if report.skipped:
            console.print(skipped_table(report))
    if report.failed:
        raise typer.Exit(2)


@app.command()
def jobs(
    index: IndexOpt = None,
    state: Annotated[Optional[str], typer.Option(help="Only jobs in this state: queued, running, done or failed.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many, newest first.")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Ingestion jobs and their state."""
    from rich.table import Table

    from ..service.jobs import IngestJobs

    with open_rag(index) as rag:
        queued = IngestJobs(rag.settings)
        try:
            found = queued.queue.list(state, limit)
            counts = queued.queue.counts()
        finally:
            queued.close()
    if json_out:
        console.print_json(json.dumps({"counts": counts, "jobs": [j.to_dict() for j in found]}))
        return
    table = Table(title=" · ".join(f"{k} {v}" for k, v in counts.items()))
    for col in ("id", "state", "file", "attempts", "finished", "error"):
        table.add_column(col)
    for j in found:
        d = j.to_dict()
        table.add_row(str(j.id), j.state, ", ".join(j.payload.get("paths", [])), str(j.attempts),
                      d["finished_at"] or "", j.error or "")
    console.print(table)
