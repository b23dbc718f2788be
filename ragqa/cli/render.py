"""How an Answer and an ingest report look in a terminal (rich). Used by the CLI and the chat."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..ingest.run import IngestReport
from ..types import Answer, where


def answer_footer(console: Console, answer: Answer) -> None:
    """Everything under the streamed text: verdict, citations or closest sources, why."""
    if answer.answered_by == "person":
        console.print(Text(f"Why: {answer.reason}", style="green" if not answer.abstained else "yellow"))
        return
    if answer.abstained:
        console.print(Text(answer.answer, style="bold yellow"))
        if answer.draft:
            console.print(Text("(the draft above was withdrawn)", style="dim"))
        console.print(Text(f"Why: {answer.reason}", style="yellow"))
        if answer.sources:
            console.print(Text("Closest sources:", style="bold"))
            for n, hit in enumerate(answer.sources, start=1):
                snippet = " ".join(hit.chunk.text.split())[:160]
                console.print(Text(f"  [{n}] {where(hit.chunk.document, hit.chunk.page)} (score {hit.score:.2f}): {snippet}…", style="dim"))
        if answer.id is not None:
            console.print(Text(f"Logged as question {answer.id}: a person can answer it (`ragqa review --handoff`, or the "
                               f"page's Review panel); asked again, their answer is given.", style="dim"))
    else:
        for c in answer.citations:
            line = Text(f"  [{c.n}] ", style="bold cyan")
            line.append(where(c.document, c.page), style="cyan")
            line.append(f"  chars {c.start}-{c.end}\n      “{c.quote}”", style="default")
            console.print(line)
        console.print(Text(f"Why: {answer.reason}", style="green"))
    cal = "calibrated" if answer.calibrated else "uncalibrated"
    t = answer.timings
    console.print(Text(f"confidence {answer.confidence:.2f} ({cal}) · retrieve {t.get('retrieve_s', 0):.2f}s · "
                       f"generate {t.get('generate_s', 0):.2f}s · total {t.get('total_s', 0):.2f}s", style="dim"))


def print_stream(console: Console, parts: Iterable[str | Answer]) -> Answer:
    """Print the streamed text as it comes, then the footer; return the final Answer."""
    answer = None
    for part in parts:
        if isinstance(part, Answer):
            answer = part
        else:
            console.print(part, end="", highlight=False, markup=False, soft_wrap=True)
    console.print()
    assert answer is not None, "a stream ends with its Answer"
    answer_footer(console, answer)
    return answer


def sources_table(answer: Answer) -> Table:
    table = Table(title="Sources given to the model", show_lines=False)
    table.add_column("n", justify="right")
    table.add_column("document")
    table.add_column("score", justify="right")
    table.add_column("text")
    for n, hit in enumerate(answer.sources, start=1):
        table.add_row(str(n), where(hit.chunk.document, hit.chunk.page), f"{hit.score:.2f}",
                      " ".join(hit.chunk.text.split())[:200])
    return table


def ingest_summary(report: IngestReport) -> Table:
    table = Table(title="Ingest summary")
    table.add_column("")
    table.add_column("count", justify="right")
    for label, value in [("files seen", report.files), ("added", len(report.added)), ("updated", len(report.updated)),
                         ("unchanged", len(report.unchanged)), ("removed (pruned)", len(report.removed)),
                         ("failed", len(report.failed)), ("ignored (unsupported type)", len(report.ignored)),
                         ("skipped (link leading outside)", len(report.skipped)),
                         ("chunks embedded", report.chunks_embedded)]:
        table.add_row(label, str(value), style="red" if label == "failed" and value else None)
    rate = report.chunks_embedded / report.embed_seconds if report.embed_seconds else 0.0
    table.caption = f"{report.seconds:.1f}s in all" + (f", {rate:.0f} chunks/s embedding" if rate else "")
    return table


def failures_table(report: IngestReport) -> Table:
    return _files_table("Files that could not be ingested", report.failed, "red")


def skipped_table(report: IngestReport) -> Table:
    return _files_table("Files left out on purpose", report.skipped, "yellow")


def _files_table(title: str, rows: list[tuple[str, str]], style: str) -> Table:
    table = Table(title=title, title_style=style)
    table.add_column("file", overflow="fold")
    table.add_column("reason", overflow="fold")
    for path, reason in rows:  # Text, not markup: a file named "[red]x" is shown as named
        table.add_row(Text(printable(path)), Text(printable(reason)))
    return table


def printable(s: str) -> str:
    """s with control characters (a newline in a file name) shown as escapes."""
    return "".join(ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode() for ch in s)
