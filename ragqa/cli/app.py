"""`ragqa` on the command line: a thin layer over ragqa.pipeline.RAG.

Each command opens the library and calls one method. A RagqaError prints one red line
and exits 1; no traceback reaches a person for a foreseeable mistake."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ..errors import RagqaError
from ..settings import help_for

app = typer.Typer(
    name="ragqa", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Answers questions from your own documents, locally, with checked citations, or says it cannot.",
)
console = Console()
err = Console(stderr=True)

IndexOpt = Annotated[Optional[Path], typer.Option("--index", "-i", help=help_for("index_dir"))]
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help=help_for("model_path"))]


def _rag(index: Path | None, **overrides):
    from ..rag import RAG

    return RAG(index, **overrides)


def _warn_calibration(rag) -> None:
    rag.scorer  # noqa: B018 - finds the calibration for these models
    if rag.calibration_warning:
        err.print(f"[yellow]warning:[/] {rag.calibration_warning}", highlight=False, soft_wrap=True)


def _generation_options(model, n_ctx, n_gpu_layers, threads, temperature, top_p, sample_top_k, max_tokens, seed, system_prompt) -> dict:
    return {"model_path": model, "n_ctx": n_ctx, "n_gpu_layers": n_gpu_layers, "n_threads": threads,
            "temperature": temperature, "top_p": top_p, "top_k_sampling": sample_top_k, "max_tokens": max_tokens,
            "seed": seed, "system_prompt": system_prompt}


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

        with _rag(index) as rag:
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

    with _rag(index) as rag:
        progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[chunks]} chunks · {task.fields[rate]}"), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), console=err, disable=json_out, transient=False)
        state = {"chunks": 0, "task": None}
        import time as _time

        t0 = _time.perf_counter()

        def on_event(kind: str, **data) -> None:
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
def ask(
    question: Annotated[str, typer.Argument(help="The question.", show_default=False)],
    index: IndexOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of streaming.")] = False,
    top_k: Annotated[Optional[int], typer.Option("--top-k", "-k", help=help_for("top_k"))] = None,
    show_sources: Annotated[bool, typer.Option("--sources", help="Also print every source given to the model.")] = False,
    document: Annotated[Optional[list[str]], typer.Option(
        "--document", "-d", help="Answer only from this document (file name without extension); repeatable.")] = None,
    path: Annotated[Optional[str], typer.Option("--path", help="Answer only from documents whose path starts with this (made absolute).")] = None,
    model: ModelOpt = None,
    n_ctx: Annotated[Optional[int], typer.Option(help=help_for("n_ctx"))] = None,
    n_gpu_layers: Annotated[Optional[int], typer.Option(help=help_for("n_gpu_layers"))] = None,
    threads: Annotated[Optional[int], typer.Option(help=help_for("n_threads"))] = None,
    temperature: Annotated[Optional[float], typer.Option(help=help_for("temperature"))] = None,
    top_p: Annotated[Optional[float], typer.Option(help=help_for("top_p"))] = None,
    sample_top_k: Annotated[Optional[int], typer.Option("--sample-top-k", help=help_for("top_k_sampling"))] = None,
    max_tokens: Annotated[Optional[int], typer.Option(help=help_for("max_tokens"))] = None,
    seed: Annotated[Optional[int], typer.Option(help=help_for("seed"))] = None,
    system_prompt: Annotated[Optional[str], typer.Option(help=help_for("system_prompt"))] = None,
) -> None:
    """Answer a question from the index, with citations, or abstain."""
    from ..types import Filters
    from .render import print_stream, sources_table

    gen = _generation_options(model, n_ctx, n_gpu_layers, threads, temperature, top_p, sample_top_k, max_tokens, seed, system_prompt)
    with _rag(index, **gen) as rag:
        _warn_calibration(rag)
        filters = Filters(documents=tuple(document or ()),
                          path_prefix=str(Path(path).expanduser().resolve()) + ("/" if path.endswith("/") else "") if path else None)
        if json_out:
            answer = rag.ask(question, top_k=top_k, filters=filters)
            console.print_json(json.dumps(answer.to_dict()))
            return
        answer = print_stream(console, rag.stream(question, top_k=top_k, filters=filters))
        if show_sources:
            console.print(sources_table(answer))


@app.command()
def chat(
    index: IndexOpt = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", "-k", help=help_for("top_k"))] = None,
    model: ModelOpt = None,
) -> None:
    """Interactive questions and answers in the terminal (/help for commands)."""
    from .chat import run_chat

    with _rag(index, model_path=model) as rag:
        _warn_calibration(rag)
        run_chat(rag, console, top_k=top_k)


def _eval_progress(total: int, retrieval_only: bool):
    """A rich progress bar and the on_row callback that shows running figures on it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..evaluation.run import report

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[figures]}"), TimeElapsedColumn(), TextColumn("ETA"),
                        TimeRemainingColumn(), console=err)
    task = progress.add_task("questions", total=total, figures="")

    def on_row(row, rows) -> None:
        if len(rows) % 5 == 0 or len(rows) == total:
            r = report(rows, retrieval_only)
            figs = [f"R@5 {r['recall@5']:.2f}" if r["recall@5"] is not None else ""]
            if not retrieval_only:
                risk = "-" if r["selective_risk"] is None else f"{r['selective_risk']:.2f}"
                figs += [f"coverage {r['coverage']:.2f}", f"risk {risk}", f"right drafts {r['drafts_right']}"]
            progress.update(task, figures=" · ".join(f for f in figs if f))
        progress.advance(task)

    return progress, on_row


@app.command("eval")
def eval_(
    questions: Annotated[Path, typer.Argument(help="Questions, one JSON object a line.", show_default=False)],
    index: IndexOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.json, answers.jsonl and the plots.")] = Path("out/eval"),
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", help="Only the first N questions.")] = None,
    retrieval_only: Annotated[bool, typer.Option("--retrieval-only", help="Retrieval metrics only; no generation.")] = False,
    retrieval: Annotated[Optional[str], typer.Option(help="hybrid, dense or lexical [env RAGQA_RETRIEVAL].")] = None,
    model: ModelOpt = None,
) -> None:
    """Measure retrieval, answers, abstention and calibration on labelled questions."""
    from ..evaluation.run import REPORT_KEYS, RETRIEVAL_KEYS, load_questions, report, run, write

    qs = load_questions(questions, limit)
    with _rag(index, model_path=model, retrieval=retrieval) as rag:
        if not retrieval_only:
            _warn_calibration(rag)
        progress, on_row = _eval_progress(len(qs), retrieval_only)
        with progress:
            rows = run(rag, qs, retrieval_only=retrieval_only, on_row=on_row)
    rep = report(rows, retrieval_only)
    paths = write(out, rows, rep, retrieval_only)
    _print_figures(rep, RETRIEVAL_KEYS if retrieval_only else REPORT_KEYS)
    console.print("wrote " + ", ".join(str(p) for p in paths))


def _print_figures(rep: dict, keys) -> None:
    from rich.table import Table

    table = Table(show_header=False)
    for key in keys:
        v = rep.get(key)
        table.add_row(key, "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v)))
    console.print(table)


@app.command()
def calibrate(
    questions: Annotated[Path, typer.Argument(help="Labelled questions, one JSON object a line.", show_default=False)],
    index: IndexOpt = None,
    target_risk: Annotated[float, typer.Option(help="Highest error rate allowed among answered questions.")] = 0.1,
    delta: Annotated[float, typer.Option(help="Allowed probability that the risk guarantee fails.")] = 0.1,
    answers: Annotated[Optional[Path], typer.Option(help="Reuse the answers.jsonl of an earlier calibrate run (no generation).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the answers collected.")] = Path("out/calibrate"),
    save: Annotated[Optional[Path], typer.Option(help="Write the calibration here instead of <index>/calibration.json.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", help="Only the first N questions.")] = None,
    model: ModelOpt = None,
) -> None:
    """Fit the confidence on labelled questions and choose the abstain threshold for a target risk."""
    from ..evaluation.run import collect, load_questions, load_rows, report, write

    with _rag(index, model_path=model) as rag:
        if answers is not None:
            rows = load_rows(answers)
        else:
            qs = load_questions(questions, limit)
            progress, on_row = _eval_progress(len(qs), False)
            with progress:
                rows = collect(rag, qs, on_row=on_row)
            write(out, rows, report(rows))
        cal, path = rag.calibrate(rows, target_risk=target_risk, delta=delta, save=save)
    _print_figures(cal.fitted["measured"], list(cal.fitted["measured"]))
    console.print(f"threshold {cal.threshold:.3f} for target risk {target_risk} (delta {delta}); wrote {path}")
    if cal.threshold > 1:
        err.print(f"[yellow]warning:[/] no threshold keeps the risk at or below {target_risk} with probability "
                  f"{1 - delta:.2f} on these questions: ragqa will abstain on every question", highlight=False)


@app.command()
def reindex(
    index: IndexOpt = None,
    kind: Annotated[str, typer.Option("--kind", help="auto (what the index's size calls for), flat (exact), "
                                                     "ivf (FAISS) or hnsw (pgvector).")] = "auto",
    nlist: Annotated[int, typer.Option("--nlist", help="Inverted lists for ivf (0: about 4 x sqrt(vectors)).")] = 0,
) -> None:
    """Rebuild the vector index: exact while small; when large, an inverted file (IVF,
    FAISS) or HNSW (pgvector). Ingest switches on its own as the collection grows; this
    forces a type."""
    with _rag(index) as rag:
        described = rag.reindex(kind, nlist)
    console.print(f"vectors of {rag.index_dir} now in {described}", highlight=False)


@app.command("migrate-vectors")
def migrate_vectors(
    to: Annotated[str, typer.Option("--to", help="faiss (a file in the index folder) or pgvector (the PostgreSQL "
                                                 "database of RAGQA_DATABASE_URL).")],
    index: IndexOpt = None,
) -> None:
    """Move an index's vectors between FAISS and pgvector, with the same chunk ids. The
    rows stay where they are (on PostgreSQL for pgvector); safe to run again after a crash."""
    with _rag(index) as rag:
        described = rag.migrate_vectors(to)
    console.print(f"vectors of {rag.index_dir} now in {described}", highlight=False)


@app.command()
def status(
    index: IndexOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Documents, chunks, vectors, models and sizes on disk of an index."""
    from rich.table import Table

    with _rag(index) as rag:
        info = rag.status()
    if json_out:
        console.print_json(json.dumps(info))
        return
    table = Table(title=f"Index {info['index']}", show_header=False)
    for key in ("documents", "chunks", "vectors", "vector_store", "vector_index", "database", "model", "calibration", "created_at", "ragqa_version"):
        table.add_row(key, str(info[key]))
    emb = info["embedder"] or {}
    table.add_row("embedder", f"{emb.get('name')} ({emb.get('dimension')} dims, {emb.get('max_tokens')} tokens)")
    table.add_row("chunking", str(info["chunking"]))
    cpu = info["cpu"]
    table.add_row("cpu", f"{cpu['name']} ({', '.join(cpu['flags']) or 'no SIMD flags read'})")
    table.add_row("llama.cpp", info["llama_cpp"])
    for name, size in info["bytes_on_disk"].items():
        table.add_row(name, f"{size / 1024:.1f} KiB")
    console.print(table)


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
    if not loopback and not settings.api_key:
        err.print(f"[yellow]warning:[/] listening on {host} without RAGQA_API_KEY: anyone who can reach this "
                  "port can read and change the index", highlight=False, soft_wrap=True)
    run_server(settings, host=host, port=port, worker=worker, log_level=log_level)


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

    with _rag(index) as rag:
        w = Worker(rag, poll_s=poll)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: w.stop())  # finish the job at hand, then leave
        err.print(f"worker {w.name} on {rag.index_dir} ({redact(rag.settings.resolved_database_url)})", highlight=False)

        def on_job(job) -> None:
            line = f"job {job.id} {job.state}: {', '.join(job.payload.get('paths', []))}"
            err.print(line + (f" [red]{job.error}[/]" if job.error else ""), highlight=False, soft_wrap=True)

        done = w.run(exit_when_idle=exit_when_idle, on_job=on_job)
    err.print(f"worker {w.name} stopped after {done} jobs", highlight=False)


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

    with _rag(index) as rag:
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


def main() -> None:
    try:
        app()
    except RagqaError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        sys.exit(130)
    except Exception as e:  # the database is unreachable or refuses: one line, not a traceback
        from sqlalchemy.exc import SQLAlchemyError

        if not isinstance(e, SQLAlchemyError):
            raise
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        err.print(f"[bold red]error:[/] database: {reason}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
