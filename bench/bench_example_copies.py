"""What the copy guard costs when it acts: the held-out questions whose first draft is a
worked example's answer (the default reader, docs/readers.md), asked in one warm process,
side by side question by question, each with the question's prompt already in llama.cpp's
cache: the first draft alone (the answer prompt, as the guard first asks it) and the ask's
generate step (the first draft, then the second under the span grammar), and the whole
ask. Prints per question the drafts and times, and the p50s.

Needs indexes/squad2 (`ragqa ingest corpora/squad2/corpus --index indexes/squad2`).

    python -m bench.bench_example_copies [--model NAME] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# SQuAD 2.0 held-out questions (adversarial: the passage found does not answer them) on which
# Qwen2.5-Coder-1.5B's first draft was "1825 [1]" or "the Ptolemaic Kingdom [1]"
QUESTIONS = ["In what year was D'Olier Street built in Dublin?",
             "What Huguenot French family had the largest brandy distilling business in South Africa?",
             "Who did the Normans serve under in the 10th century?"]


def main() -> None:
    from ragqa import RAG
    from ragqa.answer.steps import Answering, Attempt
    from ragqa.models.catalogue import default_name
    from ragqa.types import Filters

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="catalogue name or GGUF path (default: the default reader)")
    ap.add_argument("--index", type=Path, default=ROOT / "indexes" / "squad2")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    first: list[float] = []
    whole: list[float] = []
    generate: list[float] = []
    with RAG(a.index, model_path=a.model, question_log=0, min_relevance=-1.0) as rag:
        steps = Answering(rag._retriever(), rag.embedder, rag.generator, rag.policy, rag.settings)
        for q in QUESTIONS:  # warm: each question's sources once through the model
            rag.ask(q, log=False)
        for r in range(a.rounds):
            for q in QUESTIONS:
                att = Attempt(q, None, Filters.of(None))
                steps.retrieve(att, None)
                steps.select_context(att)
                _first(steps, att)  # the question's prompt into llama.cpp's cache, for both measures below
                t0 = time.perf_counter()
                answer = rag.ask(q, log=False)
                whole.append(time.perf_counter() - t0)
                generate.append(answer.timings["generate_s"])
                t0 = time.perf_counter()
                draft = "".join(_first(steps, att))
                first.append(time.perf_counter() - t0)
                if r == 0:
                    print(f"{q[:60]!r}: first draft {draft!r} {first[-1]:.2f} s; ask {whole[-1]:.2f} s "
                          f"(generate {answer.timings['generate_s']:.2f} s), draft {answer.draft!r}, "
                          f"copied {answer.signals.get('example_copied')!r}, given: {not answer.abstained}")
    print(f"model {a.model or default_name()}; {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{a.rounds} rounds x {len(QUESTIONS)} questions, warm")
    print(f"first draft alone p50 {statistics.median(first):.2f} s; the ask's generate step (both drafts) p50 "
          f"{statistics.median(generate):.2f} s; whole ask p50 {statistics.median(whole):.2f} s")


def _first(steps, att) -> list[str]:
    """The first draft as the guard's first pass makes it: the answer prompt, free text."""
    from ragqa.answer.prompts import answer_messages

    messages = answer_messages(att.question, att.hits, steps.settings.system_prompt)
    return list(steps.generator.chat(messages, steps.sampling(att, extractive=False)))


if __name__ == "__main__":
    main()
