"""How should dense and lexical rankings be fused? Runs both searches once per question
(depth 50) and scores several fusions offline on document-level recall@1/5/10, MRR and
nDCG@10 (the metrics of `ragqa eval --retrieval-only`).

    python -m bench.fusion_report QUESTIONS.jsonl INDEX [LIMIT]
"""

from __future__ import annotations

import sys
from pathlib import Path

from ragqa import RAG
from ragqa.answer.retrieval import fuse
from ragqa.evaluation import metrics as M
from ragqa.evaluation.run import load_questions

ROOT = Path(__file__).resolve().parent.parent
DEPTH = 50


def rankings(rag, questions):
    store = rag._store()
    out = []
    for q in questions:
        vector = rag.embedder.embed([q["question"]])[0]
        dense = store.vectors.search(vector, DEPTH)
        lexical = store.lexical_search(q["question"], DEPTH)
        cosine = dict(dense)
        cosine.update(store.vectors.similarity(vector, [i for i, _ in lexical if i not in cosine]))
        docs = {i: c.document for i, c in store.chunks([i for i, _ in dense] + [i for i, _ in lexical]).items()}
        out.append((q, dense, lexical, cosine, docs))
    return out


def score(runs, method):
    keys = ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10")
    sums = dict.fromkeys(keys, 0.0)
    n = 0
    for q, dense, lexical, cosine, docs in runs:
        if not q["gold_doc_ids"]:
            continue
        order = method(dense, lexical, cosine)
        ranked = list(dict.fromkeys(docs[i] for i in order if i in docs))[:10]
        gold = q["gold_doc_ids"]
        sums["recall@1"] += M.recall_at(ranked, gold, 1)
        sums["recall@5"] += M.recall_at(ranked, gold, 5)
        sums["recall@10"] += M.recall_at(ranked, gold, 10)
        sums["mrr"] += M.reciprocal_rank(ranked, gold)
        sums["ndcg@10"] += M.ndcg_at(ranked, gold, 10)
        n += 1
    return {k: v / n for k, v in sums.items()}, n


def main(path, index, limit=None):
    with RAG(index) as rag:
        runs = rankings(rag, load_questions(path, limit))
    methods = {
        "dense": lambda d, lx, c: [i for i, _ in d],
        "lexical": lambda d, lx, c: [i for i, _ in lx],
    }
    for k in (60, 10):
        for wl in (1.0, 1.5, 2.0):
            methods[f"rrf k={k} lexical x{wl}"] = (lambda k, wl: lambda d, lx, c: fuse(d, lx, c, method="rrf", rrf_k=k, lexical_weight=wl))(k, wl)
    for w in (0.3, 0.4, 0.5, 0.6, 0.7):
        methods[f"convex lexical {w}"] = (lambda w: lambda d, lx, c: fuse(d, lx, c, method="convex", lexical_weight=w, dense_weight=1 - w))(w)
    print(f"{path}: {len(runs)} questions")
    print(f"{'fusion':26s} " + " ".join(f"{k:>9s}" for k in ("R@1", "R@5", "R@10", "MRR", "nDCG@10")))
    for name, method in methods.items():
        m, n = score(runs, method)
        print(f"{name:26s} " + " ".join(f"{v:9.3f}" for v in m.values()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None)
