"""`ragqa eval` and the data behind `ragqa calibrate`: run labelled questions through the
pipeline, one row per question, and the report over the rows.

Question files hold one JSON object a line: `id`, `question`, `answers` (acceptable
strings; empty when the right behaviour is to abstain), `answerable`, `gold_doc_ids`
(document names: the file name without extension).

A row's `right` says whether the answer the model drafted is right (ragqa.metrics.is_right),
whether or not ragqa then gave it or withdrew it: that is what the confidence predicts.
A question abstained on before generation (nothing relevant retrieved) has no draft and
is not right."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..answer.citations import strip_markers
from ..errors import InputError
from . import metrics as M

RETRIEVAL_DEPTH = 10
REPORT_KEYS = ("n", "recall@1", "recall@5", "recall@10", "mrr", "ndcg@10", "em", "f1", "coverage", "selective_risk",
               "auroc", "ece", "brier", "aurc", "coverage_answerable", "abstain_rate_unanswerable", "false_abstain_rate_answerable",
               "citation_precision", "gold_in_context", "draft_em_answerable", "draft_f1_answerable", "draft_words_median",
               "latency_p50_s", "latency_p95_s")
RETRIEVAL_KEYS = ("n", "recall@1", "recall@5", "recall@10", "mrr", "ndcg@10")


def load_questions(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such questions file: {path}")
    out = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                q = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{n}: not JSON ({e.msg})") from None
            if not isinstance(q, dict) or not isinstance(q.get("question"), str):
                raise InputError(f"{path}:{n}: each line needs at least a \"question\" string")
            q.setdefault("id", f"{path.stem}-{n}")
            q.setdefault("answers", [])
            q.setdefault("answerable", bool(q["answers"]))
            q.setdefault("gold_doc_ids", [])
            out.append(q)
            if limit and len(out) >= limit:
                break
    if not out:
        raise InputError(f"{path} holds no questions")
    return out


def ranked_documents(hits) -> list[str]:
    """Document names in the order their first chunk was retrieved."""
    return list(dict.fromkeys(h.chunk.document for h in hits))


def evaluate_one(rag, q: dict[str, Any], retrieval_only: bool = False) -> dict[str, Any]:
    t0 = time.perf_counter()
    hits = rag.retrieve(q["question"], RETRIEVAL_DEPTH * 3)
    row: dict[str, Any] = {
        "id": q["id"], "question": q["question"], "answerable": bool(q["answerable"]),
        "kind": q.get("unanswerable_type") or ("answerable" if q["answerable"] else "unanswerable"),
        "gold_answers": q["answers"], "gold_doc_ids": q["gold_doc_ids"],
        "retrieved": ranked_documents(hits)[:RETRIEVAL_DEPTH], "retrieve_s": time.perf_counter() - t0,
    }
    if retrieval_only:
        return row
    answer = rag.ask(q["question"], log=False)  # labelled questions: measured, not logged for review
    draft = answer.draft
    em, f1 = M.squad_scores("" if answer.abstained else answer.answer, q["answers"] if q["answerable"] else [])
    shown = " ".join(h.chunk.text for h in answer.sources)
    row.update({
        "answer": answer.answer, "draft": draft, "abstained": answer.abstained,
        "gold_in_context": M.contains_any(shown, q["answers"]) if q["answerable"] else None,
        "draft_words": len(strip_markers(draft).split()),
        "right": M.is_right(draft, q["answers"], bool(q["answerable"])),
        "confidence": answer.confidence, "calibrated": answer.calibrated, "reason": answer.reason,
        "cited_documents": [c.document for c in answer.citations], "em": em, "f1": f1,
        "signals": answer.signals, "timings": answer.timings,
    })
    return row


def run(rag, questions: Sequence[dict[str, Any]], *, retrieval_only: bool = False,
        on_row: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for q in questions:
        rows.append(evaluate_one(rag, q, retrieval_only))
        if on_row:
            on_row(rows[-1], rows)
    return rows


def collect(rag, questions: Sequence[dict[str, Any]], *,
            on_row: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    """Rows for fitting a calibration: every question drafted (no relevance gate), scored
    by the uncalibrated blend, so that each row records the signals and whether the
    draft was right."""
    return run(rag.derive(min_relevance=-1.0, calibration="off"), questions, on_row=on_row)


def load_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of an answers.jsonl written by `ragqa eval` or `ragqa calibrate`."""
    path = Path(path)
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read answers from {path}: {e}") from None
    if not rows or any("signals" not in r or "right" not in r for r in rows):
        raise InputError(f"{path} is not an answers.jsonl with signals (written by `ragqa eval` or `ragqa calibrate`)")
    for r in rows:  # scored by today's rule, whichever rule the run that wrote them had
        if "draft" in r and "gold_answers" in r:
            r["right"] = M.is_right(r["draft"] or "", r["gold_answers"], bool(r.get("answerable", True)))
    return rows


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def report(rows: Sequence[dict[str, Any]], retrieval_only: bool = False) -> dict[str, Any]:
    with_gold = [r for r in rows if r["gold_doc_ids"]]
    out: dict[str, Any] = {"n": len(rows)}
    for k in (1, 5, 10):
        out[f"recall@{k}"] = _mean(M.recall_at(r["retrieved"], r["gold_doc_ids"], k) for r in with_gold)
    out["mrr"] = _mean(M.reciprocal_rank(r["retrieved"], r["gold_doc_ids"]) for r in with_gold)
    out["ndcg@10"] = _mean(M.ndcg_at(r["retrieved"], r["gold_doc_ids"], 10) for r in with_gold)
    if retrieval_only:
        return out
    conf = [r["confidence"] for r in rows]
    right = [r["right"] for r in rows]
    answered = [not r["abstained"] for r in rows]
    coverage, risk = M.selective(answered, right)
    unans = [r for r in rows if not r["answerable"]]
    ans = [r for r in rows if r["answerable"]]
    cited = [(d, r["gold_doc_ids"]) for r in ans if not r["abstained"] for d in r["cited_documents"]]
    latency = [r["timings"].get("total_s", 0.0) for r in rows]
    out.update({
        "em": _mean(r["em"] for r in rows), "f1": _mean(r["f1"] for r in rows),
        "coverage": coverage, "selective_risk": risk,
        "auroc": M.auroc(conf, right), "ece": M.ece(conf, right), "brier": M.brier(conf, right), "aurc": M.aurc(conf, right),
        "coverage_answerable": _mean(float(not r["abstained"]) for r in ans),
        "abstain_rate_unanswerable": _mean(float(r["abstained"]) for r in unans),
        "false_abstain_rate_answerable": _mean(float(r["abstained"]) for r in ans),
        "citation_precision": _mean(float(d in gold) for d, gold in cited),
        "latency_p50_s": M.percentile(latency, 50), "latency_p95_s": M.percentile(latency, 95),
        # beyond the required keys: what bounds the figures above
        "drafts_right": sum(right), "drafts_right_answerable": sum(r["right"] for r in ans),
        # the ceiling: answerable questions whose gold answer is in the excerpts the model was shown
        "gold_in_context": _mean(float(r["gold_in_context"]) for r in ans if r.get("gold_in_context") is not None),
        "draft_em_answerable": _mean(M.squad_scores(r["draft"], r["gold_answers"])[0] for r in ans),
        "draft_f1_answerable": _mean(M.squad_scores(r["draft"], r["gold_answers"])[1] for r in ans),
        "draft_words_median": M.percentile([r["draft_words"] for r in ans if r.get("draft")], 50),
        "by_kind": {kind: {"n": len(rs), "abstain_rate": _mean(float(r["abstained"]) for r in rs),
                           "drafts_right": sum(r["right"] for r in rs)}
                    for kind, rs in _group(rows, "kind").items()},
    })
    return out


def _group(rows, key) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in rows:
        out.setdefault(r[key], []).append(r)
    return out


def write(out_dir: str | Path, rows: Sequence[dict[str, Any]], rep: dict[str, Any], retrieval_only: bool = False) -> list[Path]:
    """report.json, answers.jsonl and (with generation) the two plots. Returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.json", out / "answers.jsonl"]
    paths[0].write_text(json.dumps(rep, indent=2) + "\n", encoding="utf-8")
    with paths[1].open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    if not retrieval_only and rows:
        paths += plot(out, [r["confidence"] for r in rows], [r["right"] for r in rows],
                      [not r["abstained"] for r in rows])
    return paths


def plot(out: Path, confidence, right, answered=None) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [out / "risk_coverage.png", out / "reliability.png"]
    cov, risk = M.risk_coverage(confidence, right)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=110)
    ax.plot(cov, risk, label=f"ranked by confidence (AURC {M.aurc(confidence, right):.3f})")
    base = 1 - sum(right) / len(right)
    ax.axhline(base, color="grey", ls=":", label=f"answer everything (risk {base:.2f})")
    if answered is not None:
        c, r = M.selective(answered, right)
        if r is not None:
            ax.plot([c], [r], "o", color="C3", label=f"ragqa's decisions (coverage {c:.2f}, risk {r:.2f})")
    ax.set(xlabel="coverage (share of questions answered)", ylabel="selective risk (wrong among answered)",
           xlim=(0, 1), ylim=(0, 1.02), title="Risk-coverage")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(paths[0])
    plt.close(fig)

    bins = M.reliability(confidence, right)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=110)
    ax.plot([0, 1], [0, 1], color="grey", ls=":", label="perfect calibration")
    ax.plot([b[0] for b in bins], [b[1] for b in bins], "o-", label=f"10 equal-mass bins (ECE {M.ece(confidence, right):.3f})")
    ax.set(xlabel="mean confidence in bin", ylabel="share right in bin", xlim=(0, 1), ylim=(0, 1), title="Reliability")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(paths[1])
    plt.close(fig)
    return paths
