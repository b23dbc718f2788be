"""`ragqa log`: the questions asked of an index, what ragqa did, and why (ragqa.review.log)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import IndexOpt, app, console, open_rag


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
