"""`ragqa eval` and `ragqa calibrate`: measuring on labelled questions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..settings import help_for
from .common import IndexOpt, ModelOpt, app, console, err, open_rag, warn_calibration


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
    retrieval: Annotated[Optional[str], typer.Option(help=help_for("retrieval"))] = None,
    model: ModelOpt = None,
) -> None:
    """Measure retrieval, answers, abstention and calibration on labelled questions."""
    from ..evaluation.run import REPORT_KEYS, RETRIEVAL_KEYS, load_questions, report, run, write

    qs = load_questions(questions, limit)
    with open_rag(index, model_path=model, retrieval=retrieval) as rag:
        if not retrieval_only:
            warn_calibration(rag)
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
    questions: Annotated[Optional[Path], typer.Argument(help="Labelled questions, one JSON object a line.", show_default=False)] = None,
    index: IndexOpt = None,
    reviews: Annotated[bool, typer.Option("--reviews", help="Certify from your reviews of logged answers (`ragqa review`) "
                                                            "instead of a file of labelled questions.")] = False,
    prior: Annotated[bool, typer.Option(help="With --reviews: start from the calibration shipped for these models, if any.")] = True,
    target_risk: Annotated[float, typer.Option(help="Highest error rate allowed among answered questions.")] = 0.1,
    delta: Annotated[float, typer.Option(help="Allowed probability that the risk guarantee fails.")] = 0.1,
    answers: Annotated[Optional[Path], typer.Option(help="Reuse the answers.jsonl of an earlier calibrate run (no generation).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the answers collected.")] = Path("out/calibrate"),
    save: Annotated[Optional[Path], typer.Option(help="Write the calibration here instead of <index>/calibration.json.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", help="Only the first N questions.")] = None,
    model: ModelOpt = None,
) -> None:
    """Fit the confidence on labelled questions, or on your reviews (--reviews), and certify
    the abstain threshold for a target risk."""
    from ..errors import InputError
    from ..evaluation.run import collect, load_questions, load_rows, report, write

    if reviews:
        _calibrate_from_reviews(index, model, target_risk, delta, prior)
        return
    if questions is None and answers is None:
        raise InputError("give a file of labelled questions, or --reviews to certify from your reviews (`ragqa review`)")
    with open_rag(index, model_path=model) as rag:
        if answers is not None:
            rows = load_rows(answers)
        else:
            assert questions is not None
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


def _calibrate_from_reviews(index: Path | None, model: str | None, target_risk: float, delta: float, prior: bool) -> None:
    with open_rag(index, model_path=model) as rag:
        outcome = rag.reviews.certify(target_risk=target_risk, delta=delta, min_grounding=rag.settings.min_grounding,
                                      use_prior=prior)
        in_use = rag.policy.summary() if not outcome.certified else None
    if outcome.prior:
        console.print(f"prior: {outcome.prior}", highlight=False)
    if outcome.certified:
        console.print(f"[green]{outcome.message}[/]; used from the next question on", highlight=False)
    else:
        console.print(f"[yellow]{outcome.message}[/]", highlight=False)
        console.print(f"still in use: {in_use}", highlight=False)
