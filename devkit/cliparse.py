"""Parse a ragqa command line with the real CLI, without running it."""

from __future__ import annotations


def parse_cli(args: list[str]):
    """(command name, click context); raises on an unknown command (LookupError) or a
    wrong option or argument (click's usage errors)."""
    import typer

    from ragqa.cli.app import app

    group = typer.main.get_command(app)
    name, *rest = args
    ctx = group.make_context("ragqa", [name], resilient_parsing=True)
    sub = group.get_command(ctx, name)
    if sub is None:
        raise LookupError(f"no command {name!r}")
    return name, sub.make_context(name, list(rest), parent=ctx)
