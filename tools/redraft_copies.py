"""Bring calibration rows drafted before the example-copy guard (ragqa.answer.steps.
Answering.generate: a draft that is a worked example's answer its sources do not hold is
drafted again as a verbatim span of them) up to the pipeline as it is now, instead of drafting
every question again: only the rows whose draft is such a copy can differ, and those
questions are asked again, the whole pipeline, as `ragqa calibrate` asks them. `--verify N`
asks N other rows again too and compares draft and signals, to show that the rest of the
rows still describe the pipeline.

    python -m tools.redraft_copies out/q15-fit-rows-sc-all.jsonl out/q15-fit-rows-v2.jsonl \\
        --model qwen2.5-coder-1.5b --index indexes/squad2 --sentence-check \\
        --index-for out/qwen2.5-coder-1.5b-absent-fit/answers.jsonl=indexes/squad2-absent-fit --verify 10

With --sentence-check the rows carry the sentence check as tools/add_sentence_check.py adds
it: only for drafts the policy would not withhold before generation or by a hard check."""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from tools import row_files
from tools.fit_calibration import copies_an_example

COMPARED = ("grounding", "citation_support", "logprob_mean", "logprob_min", "logprob_first", "retrieval_top",
            "question_coverage", "question_coverage_answer", "sentence_check")


def question_of(row: dict) -> dict:
    """The question as `ragqa calibrate` read it from its file."""
    kind = row["kind"]
    return {"id": row["id"], "question": row["question"], "answerable": row["answerable"],
            "unanswerable_type": None if kind in ("answerable", "unanswerable") else kind,
            "answers": row["gold_answers"], "gold_doc_ids": row["gold_doc_ids"]}


def differences(old: dict, new: dict) -> list[str]:
    out = [f"draft {old['draft']!r} -> {new['draft']!r}"] if old["draft"] != new["draft"] else []
    for name in COMPARED:
        a, b = old["signals"].get(name), new["signals"].get(name)
        if (a is None) != (b is None) or (a is not None and abs(a - b) > 2e-3):
            out.append(f"{name} {a} -> {b}")
    return out


def main() -> None:
    from ragqa.answer.policy import before_generation, hard_check
    from ragqa.evaluation.run import collect, load_rows
    from ragqa.rag import RAG
    from ragqa.settings import Settings

    ap = row_files.arguments(__doc__.split("\n\n")[0])
    ap.add_argument("--sentence-check", action="store_true", help="the rows carry the sentence check")
    ap.add_argument("--verify", type=int, default=0, help="ask this many other rows again and compare")
    a = ap.parse_args()
    where = row_files.drafted_on(a.index_for)
    rows = load_rows(a.rows)
    copies = [i for i, r in enumerate(rows) if copies_an_example(r.get("draft") or "")]
    others = [i for i in range(len(rows)) if i not in set(copies) and rows[i].get("draft")]
    checks = random.Random(0).sample(others, min(a.verify, len(others)))
    rags: dict[str, RAG] = {}
    generator = None

    def ask_again(row: dict) -> dict:
        nonlocal generator
        index = where.get(row["id"], a.index)
        if index not in rags:
            rags[index] = RAG(index, model_path=a.model, generator=generator, question_log=0,
                              sentence_check="on" if a.sentence_check else "off")
            generator = rags[index].generator  # one model in memory for every index
        new = collect(rags[index], [question_of(row)])[0]
        s = new["signals"]
        if before_generation(s, Settings.min_relevance) is not None or hard_check(s, Settings.min_grounding) is not None:
            s.pop("sentence_check", None)  # as tools/add_sentence_check.py: never asked of such drafts
        return new

    t0 = time.perf_counter()
    report: dict = {"rows": len(rows), "copies": len(copies), "redrafted": [], "verified": len(checks), "differ": []}
    for i in copies:
        new = ask_again(rows[i])
        report["redrafted"].append({"kind": rows[i]["kind"], "old": rows[i]["draft"], "new": new["draft"],
                                    "copied": new["signals"].get("example_copied"), "right": new["right"]})
        rows[i] = new
    for i in checks:
        diff = differences(rows[i], ask_again(rows[i]))
        if diff:
            report["differ"].append({"id": rows[i]["id"], "differences": diff})
    for rag in rags.values():
        rag.close()
    Path(a.out).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report, indent=1), file=sys.stdout)


if __name__ == "__main__":
    main()
