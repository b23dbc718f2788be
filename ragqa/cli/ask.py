"""`ragqa ask` and `ragqa chat`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..settings import help_for
from .common import IndexOpt, ModelOpt, TopKOpt, app, console, open_rag, warn_calibration


def _generation_options(model: str | None, n_ctx: int | None, n_gpu_layers: int | None, threads: int | None,
                        temperature: float | None, top_p: float | None, sample_top_k: int | None, max_tokens: int | None,
                        seed: int | None, system_prompt: str | None) -> dict[str, Any]:
    return {"model_path": model, "n_ctx": n_ctx, "n_gpu_layers": n_gpu_layers, "n_threads": threads,
            "temperature": temperature, "top_p": top_p, "top_k_sampling": sample_top_k, "max_tokens": max_tokens,
            "seed": seed, "system_prompt": system_prompt}


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.", show_default=False)],
    index: IndexOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of streaming.")] = False,
    top_k: TopKOpt = None,
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
    with open_rag(index, **gen) as rag:
        warn_calibration(rag)
        filters = Filters(documents=tuple(document or ()),
                          path_prefix=str(Path(path).expanduser().resolve()) + ("/" if path.endswith("/") else "") if path else None)
        if json_out:
            answer = rag.ask(question, top_k=top_k, filters=filters, interface="cli")
            console.print_json(json.dumps(answer.to_dict()))
            return
        answer = print_stream(console, rag.stream(question, top_k=top_k, filters=filters, interface="cli"))
        if show_sources:
            console.print(sources_table(answer))


@app.command()
def chat(
    index: IndexOpt = None,
    top_k: TopKOpt = None,
    model: ModelOpt = None,
) -> None:
    """Interactive questions and answers in the terminal (/help for commands)."""
    from .chat import run_chat

    with open_rag(index, model_path=model) as rag:
        warn_calibration(rag)
        run_chat(rag, console, top_k=top_k)
