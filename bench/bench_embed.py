"""Embedding backends side by side, in one run (run on purpose; ~10 minutes on 2 cores):

    python -m bench.bench_embed [--squad DIR] [--scifact DIR] [--out FILE]

For each corpus (SQuAD 2.0 paragraphs with questions_calib.jsonl, SciFact abstracts with
questions_train.jsonl; ../shared/data by default, the shipped corpora/squad2 otherwise)
and each backend (torch, onnx, onnx-int8), a fresh process ingests the corpus into a new
index with `ragqa`'s whole pipeline (read, chunk, embed, write), re-ingests the unchanged
folder, embeds 50 questions one at a time, and measures dense and hybrid retrieval
(recall@5, nDCG@10, document level, as `ragqa eval --retrieval-only`). Another process
times raw `SentenceTransformer.encode` (torch) on the very same chunk texts and
questions: the baseline each ratio is against. Each process reports its own peak memory.
The ONNX export is made before any timing (it happens once per model) and its time is
printed apart.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ragqa.ingest.file_reader import peak_rss_mb

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("torch", "onnx", "onnx-int8")
N_QUESTIONS_TIMED = 50


def _questions(path: Path) -> list[dict]:
    from ragqa.evaluation.run import load_questions

    return [q for q in load_questions(path) if q.get("gold_doc_ids")]


def child_backend(backend: str, corpus: Path, questions: Path, texts_out: Path) -> dict:
    from ragqa import RAG
    from ragqa.evaluation.run import report, run

    qs = _questions(questions)
    with tempfile.TemporaryDirectory() as tmp:
        rag = RAG(Path(tmp) / "index", embed_backend=backend, calibration="off")
        rag.embedder.embed(["warm the model up"])  # load outside the timing, as raw encode's model is
        t = time.perf_counter()
        ingested = rag.ingest([corpus])
        ingest_s = time.perf_counter() - t
        t = time.perf_counter()
        rag.ingest([corpus])
        reingest_s = time.perf_counter() - t
        store = rag._store()
        texts = [c.text for c in store.chunks(sorted(store.vectors.ids())).values()]
        texts_out.write_text(json.dumps(texts), encoding="utf-8")
        times = []
        for q in qs[:N_QUESTIONS_TIMED]:
            t = time.perf_counter()
            rag.embedder.embed([q["question"]])
            times.append(time.perf_counter() - t)
        quality = {}
        for mode in ("dense", "hybrid"):
            r = RAG(Path(tmp) / "index", embedder=rag.embedder, retrieval=mode, calibration="off")
            rep = report(run(r, qs, retrieval_only=True), retrieval_only=True)
            quality[mode] = {"recall@5": rep["recall@5"], "ndcg@10": rep["ndcg@10"]}
        rag.close()
    return {"backend": backend, "chunks": ingested.chunks_embedded, "ingest_s": ingest_s, "reingest_s": reingest_s,
            "question_p50_ms": statistics.median(times) * 1000, "quality": quality, "peak_mb": peak_rss_mb()}


def child_raw(texts_file: Path, questions: Path) -> dict:
    """Raw sentence-transformers on torch, at every core, batches of 32 (its default)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from ragqa.models.paths import default_embedder_path

    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    torch.set_num_threads(os.cpu_count() or 1)
    model = SentenceTransformer(str(default_embedder_path()), device="cpu")
    model.encode(["warm the model up"])
    t = time.perf_counter()
    model.encode(texts, batch_size=32, normalize_embeddings=True)
    encode_s = time.perf_counter() - t
    times = []
    for q in _questions(questions)[:N_QUESTIONS_TIMED]:
        t = time.perf_counter()
        model.encode([q["question"]], normalize_embeddings=True)
        times.append(time.perf_counter() - t)
    return {"texts": len(texts), "encode_s": encode_s, "question_p50_ms": statistics.median(times) * 1000,
            "peak_mb": peak_rss_mb()}


def _child(*args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    shared = ROOT.parent / "shared" / "data"
    ap = argparse.ArgumentParser()
    ap.add_argument("--squad", type=Path, default=shared / "squad2" if (shared / "squad2").is_dir() else ROOT / "corpora" / "squad2")
    ap.add_argument("--scifact", type=Path, default=shared / "scifact")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bench_embed.json")
    a = ap.parse_args()
    sets = [("squad2", a.squad / "corpus", next(p for p in (a.squad / "questions_calib.jsonl", a.squad / "questions_calibrate.jsonl")
                                              if p.is_file()))]
    if (a.scifact / "corpus").is_dir():
        sets.append(("scifact", a.scifact / "corpus", a.scifact / "questions_train.jsonl"))

    from ragqa.models import llama_check
    from ragqa.models import onnx_export as onnx_embedding
    from ragqa.models.paths import default_embedder_path

    t = time.perf_counter()
    folder = onnx_embedding.ensure_export(default_embedder_path())
    print(f"ONNX export: {folder} ({time.perf_counter() - t:.1f} s here; "
          f"{json.loads((folder / 'export.json').read_text())['seconds']} s when it was made)")
    cpu = llama_check.cpu()
    print(f"cores: {os.cpu_count()}; cpu: {cpu['name']}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, corpus, questions in sets:
            texts_file = Path(tmp) / f"{name}-texts.json"
            rows = [_child("--child", b, str(corpus), str(questions), str(texts_file)) for b in BACKENDS]
            raw = _child("--raw", str(texts_file), str(questions))
            results.append({"corpus": name, "raw_torch": raw, "backends": rows})
            _print(name, raw, rows)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"cpu": cpu["name"], "cores": os.cpu_count(), "results": results}, indent=2) + "\n")
    print(f"saved {a.out}")


def _print(name: str, raw: dict, rows: list[dict]) -> None:
    raw_rate = raw["texts"] / raw["encode_s"]
    torch_row = rows[0]
    print(f"\n{name}: {rows[0]['chunks']} chunks; raw torch encode {raw['encode_s']:.1f} s "
          f"({raw_rate:.1f} chunks/s), question {raw['question_p50_ms']:.1f} ms p50, peak {raw['peak_mb']:.0f} MB")
    print(f"{'backend':<10} {'ingest s':>8} {'chunks/s':>8} {'x raw':>6} {'q p50 ms':>8} {'x torch':>7} "
          f"{'R@5 dense':>9} {'nDCG dense':>10} {'R@5 hyb':>7} {'nDCG hyb':>8} {'re-ingest':>9} {'peak MB':>7}")
    for r in rows:
        rate = r["chunks"] / r["ingest_s"]
        d, h = r["quality"]["dense"], r["quality"]["hybrid"]
        print(f"{r['backend']:<10} {r['ingest_s']:8.1f} {rate:8.1f} {rate / raw_rate:6.2f} {r['question_p50_ms']:8.2f} "
              f"{r['question_p50_ms'] / torch_row['question_p50_ms']:7.3f} {d['recall@5']:9.3f} {d['ndcg@10']:10.3f} "
              f"{h['recall@5']:7.3f} {h['ndcg@10']:8.3f} {r['reingest_s'] / r['ingest_s']:8.1%} {r['peak_mb']:7.0f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child_backend(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))))
    elif len(sys.argv) > 1 and sys.argv[1] == "--raw":
        print(json.dumps(child_raw(Path(sys.argv[2]), Path(sys.argv[3]))))
    else:
        main()
