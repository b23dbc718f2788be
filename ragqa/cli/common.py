"""What every command shares: the Typer app, the consoles, the options that stand for a
setting (their help is the setting's own, ragqa.settings.help_for; tests/test_cli.py checks
every one), and opening the library."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console

from ..settings import help_for

if TYPE_CHECKING:
    from ..rag import RAG

app = typer.Typer(
    name="ragqa", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Answers questions from your own documents, locally, with checked citations, or says it cannot.",
)
console = Console()
err = Console(stderr=True)

IndexOpt = Annotated[Optional[Path], typer.Option("--index", "-i", help=help_for("index_dir"))]
ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help=help_for("model_path"))]
TopKOpt = Annotated[Optional[int], typer.Option("--top-k", "-k", help=help_for("top_k"))]


def open_rag(index: Path | None, **overrides: Any) -> "RAG":
    from ..rag import RAG

    return RAG(index, **overrides)


def warn_calibration(rag: "RAG") -> None:
    if rag.policy.warning:  # a calibration exists for other models
        err.print(f"[yellow]warning:[/] {rag.policy.warning}", highlight=False, soft_wrap=True)
