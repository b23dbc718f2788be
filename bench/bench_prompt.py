"""Prompt budget benchmark, run on purpose: for each setting of (top_k, context_tokens),
the tokens of sources put in the prompt, the answer quality and the generation time of
the bundled model on the answerable SQuAD 2.0 questions of the calibrate split (the
held-out split is kept for the final report).

    python -m bench.bench_prompt [N_QUESTIONS] [INDEX]

The index must hold corpora/squad2/corpus (`ragqa ingest corpora/squad2/corpus --index indexes/squad2`).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from ragqa import RAG
from ragqa.answer.citations import strip_markers
from ragqa.evaluation import metrics as M

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = [(2, 0), (1, 0), (1, 32), (1, 48), (2, 32), (2, 48), (2, 64), (2, 96), (3, 48), (3, 64)]  # (top_k, context_tokens); 0 = whole chunks


def main(n: int = 100, index: str = "indexes/squad2") -> None:
    qs = [json.loads(line) for line in (ROOT / "corpora/squad2/questions_calibrate.jsonl").read_text().splitlines()]
    qs = [q for q in qs if q["answerable"]][:n]
    print(f"{len(qs)} answerable questions, index {index}")
    print(f"{'top_k':>5} {'budget':>6} {'ctx tok':>8} {'right':>6} {'F1':>6} {'gen s p50':>9}")
    for top_k, budget in SETTINGS:
        tokens, right, f1, gen = [], 0, [], []
        with RAG(index, calibration="off", min_relevance=-1, top_k=top_k, context_tokens=budget) as rag:
            for q in qs:
                a = rag.ask(q["question"])
                draft = a.draft
                tokens.append(a.signals["context_tokens"])
                right += M.is_right(draft, q["answers"], True)
                f1.append(M.squad_scores(strip_markers(draft), q["answers"])[1])
                gen.append(a.timings["generate_s"])
        print(f"{top_k:>5} {budget or 'whole':>6} {statistics.mean(tokens):8.1f} {right:>6} "
              f"{statistics.mean(f1):6.3f} {statistics.median(gen):9.2f}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100, sys.argv[2] if len(sys.argv) > 2 else "indexes/squad2")
