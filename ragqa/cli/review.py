"""`ragqa log` (the questions asked, ragqa.review.log) and `ragqa review` (a person's verdict
on them, and answers to the withheld ones: ragqa.review.desk)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from .common import IndexOpt, ModelOpt, app, console, err, open_rag

if TYPE_CHECKING:
    from rich.text import Text

    from ..review.desk import Desk

KEYS = {"r": "right", "w": "wrong", "n": "unanswerable", "a": "answer"}
HELP_LINE = ("judge the draft by the documents: [bold]r[/] right   [bold]w[/] wrong   [bold]n[/] the documents do not answer this   "
             "[bold]a[/] type the right answer   [bold]s[/] skip   [bold]q[/] quit")
HANDOFF_LINE = ("[bold]a[/] type the answer   [bold]r[/] the draft is right   [bold]n[/] the documents do not answer "
                "this   [bold]s[/] skip   [bold]q[/] quit")


@app.command("log")
def log_(
    index: IndexOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="At most this many, newest first (0: all).")] = 20,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object a line (JSONL), newest first.")] = False,
    export: Annotated[Optional[Path], typer.Option("--export", help="Write every logged question to this JSONL file, oldest first.")] = None,
) -> None:
    """The question log: every question asked (any interface), the sources shown, the draft,
    given or withheld and why, the confidence and signals. RAGQA_QUESTION_LOG=0 turns it off."""
    from rich.table import Table

    from .render import printable

    with open_rag(index) as rag:
        qlog = rag.question_log
        if export is not None:
            n = 0
            with export.open("w", encoding="utf-8") as f:
                for entry in qlog.entries(None, newest_first=False):
                    f.write(json.dumps(entry) + "\n")
                    n += 1
            console.print(f"wrote {n} logged questions to {export}", highlight=False)
            return
        entries = list(qlog.entries(limit or None))
    if json_out:
        for entry in entries:
            console.print(json.dumps(entry), highlight=False, soft_wrap=True, markup=False)
        return
    table = Table(title=f"questions asked of {rag.index_dir} (newest first)")
    for col in ("id", "asked", "via", "verdict", "confidence", "question", "answer or draft"):
        table.add_column(col, overflow="fold")
    for e in entries:
        verdict = "withheld" if e["abstained"] else "answered"
        table.add_row(str(e["id"]), e["asked_at"] or "", e["interface"], verdict, f"{e['confidence']:.2f}",
                      printable(e["question"]), printable(e["draft"] if e["abstained"] else e["answer"]))
    console.print(table)


@app.command()
def review(
    index: IndexOpt = None,
    model: ModelOpt = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="Apply labels from this file (the format of `ragqa eval`: "
                                                                    "question, answers, answerable), matched by question; no keyboard.")] = None,
    handoff: Annotated[bool, typer.Option("--handoff", help="Answer the withheld questions, oldest first (not counted for certification).")] = False,
    reviewer: Annotated[Optional[str], typer.Option("--as", help="Your name, recorded with each review.")] = None,
    progress: Annotated[bool, typer.Option("--progress", help="Only say what there is to certify with.")] = False,
) -> None:
    """Review logged answers one at a time, drawn at random from the unreviewed ones (what a
    certificate from reviews needs): one key per verdict. Then `ragqa calibrate --reviews`."""
    with open_rag(index, model_path=model) as rag:
        desk = rag.reviews
        if labels is not None:
            from ..evaluation.run import load_questions

            counts = desk.apply_labels(load_questions(labels, None), reviewer=reviewer or labels.name)
            console.print(f"{counts['matched']} logged questions labelled from {counts['labels']} labels "
                          f"({counts['unmatched']} labels match no logged question)", highlight=False)
        elif not progress:
            _review_loop(desk, handoff, reviewer)
        _print_progress(desk.progress())


def _review_loop(desk: "Desk", handoff: bool, reviewer: str | None) -> None:
    import random

    rng = random.SystemRandom()
    skipped: set[int] = set()
    done = 0
    while True:
        if handoff:
            entry = next((e for e in desk.handoff(len(skipped) + 1) if e["id"] not in skipped), None)
        else:
            entry = desk.next(rng, exclude=sorted(skipped))
        if entry is None:
            console.print("only skipped questions are left" if skipped else "nothing left to review")
            return
        _show(entry, handoff)
        key = _key("a r n s q" if handoff else "r w n a s q")
        if key == "q":
            return
        if key == "s":
            skipped.add(entry["id"])
            continue
        answer = typer.prompt("the right answer") if key == "a" else None
        verdict = KEYS[key]
        if handoff and key == "a":
            verdict = "answer"
        desk.record(entry["id"], verdict, answer=answer, how="chosen" if handoff else "random", reviewer=reviewer)
        done += 1
        console.print(f"[green]recorded:[/] {verdict}" + (f" ({answer})" if answer else ""), highlight=False)


def _key(allowed: str) -> str:
    """One key press (a line when the input is not a terminal, as in tests and pipes)."""
    import sys

    keys = allowed.split()
    while True:
        if sys.stdin.isatty():
            ch = typer.getchar().lower()
        else:
            line = sys.stdin.readline()
            if not line:
                return "q"
            ch = line.strip().lower()[:1]
        if ch in keys:
            return ch
        err.print(f"press one of: {', '.join(keys)}")


def _show(entry: dict[str, Any], handoff: bool) -> None:
    from rich.panel import Panel

    from .render import printable

    verdict = "withheld" if entry["abstained"] else "answered"
    console.rule(f"question {entry['id']} · asked {entry['asked_at']} via {entry['interface']}")
    console.print(f"[bold]{printable(entry['question'])}[/]", highlight=False)
    draft = entry["draft"] or "(no draft)"
    console.print(f"ragqa's draft: [bold]{printable(draft)}[/]  ({verdict}, confidence {entry['confidence']:.2f})", highlight=False)
    console.print(f"why: {entry['reason']}", highlight=False, style="dim")
    quotes = [c.get("quote", "") for c in entry.get("citations") or []]
    for s in entry.get("sources") or []:
        console.print(Panel(_highlighted(s.get("text", ""), quotes), title=f"[{s['n']}] {s.get('document', '')}",
                            title_align="left"))
    console.print(HANDOFF_LINE if handoff else HELP_LINE)


def _highlighted(text: str, quotes: list[str]) -> "Text":
    """The source's text with the passages the draft cites in reverse video."""
    from rich.text import Text

    out = Text(text)
    for quote in quotes:
        at = text.find(quote) if quote else -1
        if at >= 0:
            out.stylize("reverse", at, at + len(quote))
    return out


def _print_progress(p: dict[str, Any]) -> None:
    console.print(f"reviews of these models' answers that can certify: {p['reviews_for_these_models']} "
                  f"({p['wrong']} wrong; {p['fitting']} fitting, {p['testing']} testing) · unreviewed: {p['unreviewed']} · "
                  f"withheld and not yet answered by a person: {p['handoff_open']} · certification attempts: "
                  f"{len(p['attempts'])}", highlight=False)
    console.print("certify a threshold from them: ragqa calibrate --reviews --target-risk 0.1", highlight=False)
