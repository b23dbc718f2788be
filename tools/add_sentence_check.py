"""Add the `sentence_check` signal (ragqa.answer.steps.Answering.sentence_check) to rows that
`ragqa calibrate` wrote without it, instead of drafting every question again: for each row
whose draft passes the hard checks, the question's sources are rebuilt by the same steps
(retrieve, select context; deterministic), the draft's citations checked again, and the
model asked the one short question. A row whose rebuilt sources do not give back its
recorded grounding is counted and left without the signal.

    python -m tools.add_sentence_check out/q15-fit-rows.jsonl out/q15-fit-rows-sc.jsonl \\
        --model qwen2.5-coder-1.5b --index indexes/squad2 \\
        --index-for out/qwen2.5-coder-1.5b-absent-fit/answers.jsonl=indexes/squad2-absent-fit

The figures it prints (and the rows it writes) are what docs/readers.md reports for the lever."""

from __future__ import annotations

import json
import sys
import time

from tools import row_files


def main() -> None:
    from ragqa.answer.citations import check as check_citations
    from ragqa.answer.policy import before_generation, hard_check
    from ragqa.answer.steps import Answering, Attempt
    from ragqa.evaluation.run import load_rows
    from ragqa.rag import RAG
    from ragqa.settings import Settings
    from ragqa.types import Filters

    ap = row_files.arguments(__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    where = row_files.drafted_on(a.index_for)
    rows = load_rows(a.rows)
    if a.limit:
        rows = rows[: a.limit]
    rags: dict[str, tuple[RAG, Answering]] = {}
    generator = None

    def steps_for(index: str) -> Answering:
        nonlocal generator
        if index not in rags:
            rag = RAG(index, model_path=a.model, generator=generator, sentence_check="on", question_log=0)
            generator = rag.generator  # one model in memory for every index
            rags[index] = (rag, Answering(rag._retriever(), rag.embedder, rag.generator, rag.policy, rag.settings))
        return rags[index][1]

    counts = {"rows": len(rows), "checked": 0, "not_rebuilt": 0, "skipped_hard_check": 0}
    t0 = time.perf_counter()
    with open(a.out, "w", encoding="utf-8") as out:
        for i, row in enumerate(rows):
            s = row["signals"]
            row["signals"].pop("sentence_check", None)
            if before_generation(s, Settings.min_relevance) is not None or hard_check(s, Settings.min_grounding) is not None \
                    or not row.get("draft"):
                counts["skipped_hard_check"] += 1
            else:
                steps = steps_for(where.get(row["id"], a.index))
                att = Attempt(row["question"], None, Filters.of(None))
                steps.retrieve(att, None)
                steps.select_context(att)
                rebuilt_tokens = att.signals.get("context_tokens")
                att.draft = row["draft"]
                att.checked = check_citations(att.draft, att.hits)
                att.signals = dict(s)
                if abs(att.checked.grounding - s.get("grounding", -1)) > 1e-3 or \
                        rebuilt_tokens != s.get("context_tokens"):
                    counts["not_rebuilt"] += 1
                else:
                    row["signals"].update(steps.sentence_check(att))
                    counts["checked"] += 1
            out.write(json.dumps(row) + "\n")
            if (i + 1) % 100 == 0:
                print(f"{i + 1}/{len(rows)} {counts} {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    for rag, _ in rags.values():
        rag.close()
    print(json.dumps({**counts, "seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
