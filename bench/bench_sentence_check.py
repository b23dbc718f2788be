"""What the sentence check costs: one warm process, the same questions asked with the
setting sentence_check off and on, alternating question by question (side by side in one
run), on the demo index. Prints the ask's p50 / p95 both ways, the check step's own time,
and how many drafts were checked (a draft a hard check withholds is not).

    python -m bench.bench_sentence_check [--model NAME] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
from pathlib import Path

from .bench_cold_ask import QUESTIONS as DEMO_QUESTIONS

ROOT = Path(__file__).resolve().parent.parent
# the cold-ask bench's demo questions, and one the documents do not answer
QUESTIONS = [*DEMO_QUESTIONS, "Who invented the telephone?", "What year did the Normans first arrive in Italy?"]


def p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, round(0.95 * len(xs)) - 1)]


def main() -> None:
    from ragqa import RAG
    from ragqa.models.catalogue import default_name

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="catalogue name or GGUF path (default: the default reader)")
    ap.add_argument("--rounds", type=int, default=3, help="passes over the questions")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = RAG(Path(tmp) / "index", model_path=a.model, question_log=0)
        base.ingest([ROOT / "corpora" / "demo"])
        runs = {"off": RAG(base.index_dir, embedder=base.embedder, generator=base.generator, sentence_check="off",
                           question_log=0),
                "on": RAG(base.index_dir, embedder=base.embedder, generator=base.generator, sentence_check="on",
                          question_log=0)}
        runs["on"].ask(QUESTIONS[0])  # loads the model and fills the prompt cache
        total: dict[str, list[float]] = {"off": [], "on": []}
        check: dict[str, list[float]] = {"off": [], "on": []}
        checked = 0
        for _ in range(a.rounds):
            for q in QUESTIONS:
                for mode in ("off", "on"):
                    ans = runs[mode].ask(q)
                    total[mode].append(ans.timings["total_s"])
                    check[mode].append(ans.timings.get("check_s", 0.0))
                    checked += mode == "on" and "sentence_check" in ans.signals
        for r in runs.values():
            r.close()
        base.close()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; reader {a.model or default_name()}; "
          f"{len(QUESTIONS)} demo questions x {a.rounds} rounds, warm process, off/on alternating")
    for mode in ("off", "on"):
        print(f"sentence_check {mode:3}: ask p50 {statistics.median(total[mode]):.2f} s, p95 {p95(total[mode]):.2f} s; "
              f"check step p50 {statistics.median(check[mode]):.3f} s")
    print(f"drafts checked: {checked} of {len(QUESTIONS) * a.rounds} (the others were withheld before or by a hard check); "
          f"ask p50 ratio on/off {statistics.median(total['on']) / statistics.median(total['off']):.2f}x")


if __name__ == "__main__":
    main()
