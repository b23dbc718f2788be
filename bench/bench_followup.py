"""Follow-up questions rewritten to stand alone (ragqa.answer.followup), per reader: how
often the rewrite is kept, how often it invents, and the retrieval recall@5 (document
level) of each query against the original standalone question's.

The follow-ups are made from SQuAD the way a person makes them: two answerable questions
on the same paragraph, the second with its subject (the longest capitalised phrase it
shares with the first) replaced by "it". The conversation is the first question and its
gold answer.

    python -m bench.bench_followup [--pairs 100] [--models smollm2-135m qwen2.5-coder-0.5b qwen2.5-coder-1.5b ...]

Needs indexes/squad2 (`ragqa ingest corpora/squad2/corpus --index indexes/squad2`)."""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections import defaultdict
from pathlib import Path

from ragqa import RAG
from ragqa.answer import followup
from ragqa.evaluation.metrics import recall_at
from ragqa.evaluation.run import load_questions, ranked_documents

ROOT = Path(__file__).resolve().parent.parent
_PHRASE = re.compile(r"\b[A-Z][\w'-]*(?:\s+(?:of|the|de|and)?\s*[A-Z][\w'-]*)*")
# what may follow a subject for "it" to read as English: the end, or a verb or preposition
_AFTER = {"", "?", ",", "is", "was", "were", "are", "has", "had", "have", "did", "do", "does", "in", "of", "to", "for",
          "on", "at", "by", "with", "from", "and", "become", "became", "use", "used", "start", "started", "begin",
          "began", "get", "got", "make", "made", "take", "took", "lose", "lost", "win", "won", "end", "ended"}


def subject(first: str, second: str) -> str | None:
    """The longest capitalised phrase of `second` (not its first word), as whole words, that
    `first` holds too and that "it" can stand for (the word after it is a verb, a
    preposition or the end)."""
    body = second[second.find(" ") + 1:]
    found = []
    for p in {p.strip() for p in _PHRASE.findall(body)}:
        m = re.search(r"(?:\bthe\s+)?\b" + re.escape(p) + r"\b\s*(\w+|\?|,|$)", second)
        if m and re.search(r"\b" + re.escape(p) + r"\b", first, re.I) and m.group(1).lower() in _AFTER:
            found.append(p)
    return max(found, key=len) if found else None


def pairs(paths: list[Path], n: int, seed: int = 7) -> list[dict]:
    by_doc: dict[str, list[dict]] = defaultdict(list)
    for path in paths:
        for q in load_questions(path):
            if q["answerable"] and q["gold_doc_ids"]:
                by_doc[q["gold_doc_ids"][0]].append(q)
    out = []
    for doc in sorted(by_doc):
        qs = by_doc[doc]
        for b in qs[1:]:
            for a in qs:
                if a is b:
                    continue
                s = subject(a["question"], b["question"])
                if s and len(s) > 3:
                    follow = re.sub(r"(?:\bthe\s+)?\b" + re.escape(s) + r"\b", "it", b["question"], count=1)
                    out.append({"first": a["question"], "answer": a["answers"][0], "standalone": b["question"],
                                "followup": follow, "gold": b["gold_doc_ids"], "subject": s})
                    break
    random.Random(seed).shuffle(out)
    return out[:n]


def run(model: str, items: list[dict], index: Path) -> dict:
    with RAG(index, model_path=model) as rag:
        def r5(query: str, gold: list[str]) -> float:
            return recall_at(ranked_documents(rag.retrieve(query, 10)), gold, 5)

        out = {"model": model, "pairs": len(items), "kept": 0, "invented": 0, "dropped_words": 0}
        recalls: dict[str, list[float]] = defaultdict(list)
        started = time.perf_counter()
        for it in items:
            history = [(it["first"], it["answer"])]
            rewrite = followup.rewrite(rag.generator, history, it["followup"], rag.settings.seed)
            kept = followup.faithful(rewrite, history, it["followup"])
            out["kept"] += kept
            out["invented"] += bool(followup.invented(rewrite, history, it["followup"]))
            query = rewrite if kept else followup.fallback(history, it["followup"])
            recalls["standalone"].append(r5(it["standalone"], it["gold"]))
            recalls["follow-up alone"].append(r5(it["followup"], it["gold"]))
            recalls["rewrite, unguarded"].append(r5(rewrite or it["followup"], it["gold"]))
            recalls["ragqa (guarded)"].append(r5(query, it["gold"]))
        out["seconds_per_rewrite"] = round((time.perf_counter() - started) / max(1, len(items)), 2)
        out["recall@5"] = {k: round(sum(v) / len(v), 3) for k, v in recalls.items()}
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--models", nargs="+", default=["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
    ap.add_argument("--index", type=Path, default=ROOT / "indexes" / "squad2")
    ap.add_argument("--questions", type=Path, nargs="+", default=[ROOT / "corpora" / "squad2" / "questions_heldout.jsonl",
                                                                ROOT / "corpora" / "squad2" / "questions_calibrate.jsonl"])
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bench_followup.json")
    a = ap.parse_args()
    items = pairs(a.questions, a.pairs)
    print(f"{len(items)} follow-ups from {', '.join(p.name for p in a.questions)}, e.g. {items[0]['followup']!r} after {items[0]['first']!r}")
    results = []
    for model in a.models:
        r = run(model, items, a.index)
        results.append(r)
        print(f"{model}: rewrites kept {r['kept']}/{r['pairs']}, inventing {r['invented']}, "
              f"{r['seconds_per_rewrite']} s each; recall@5 " + ", ".join(f"{k} {v}" for k, v in r["recall@5"].items()))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"pairs": items, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
