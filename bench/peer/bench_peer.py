"""ragqa beside LlamaIndex, the tool a user would pick instead, doing the same job in one
run (run on purpose, never in `make test`; ~10 minutes on 2 cores, plus the first set-up):

    python -m bench.peer.bench_peer [--questions N] [--squad DIR]

LlamaIndex is installed into its own virtual environment, bench/peer/.venv (git-ignored;
bench/peer/peer-requirements.txt), with the same CPU torch and the llama-cpp-python wheel the
Makefile built, and runs bench/peer/peer_llamaindex.py there. Both sides: the same corpus
(SQuAD 2.0 paragraphs), the same first N questions of questions_calib.jsonl (answerable
and not), the same models (bundled MiniLM, SmolLM2-135M GGUF), the same threads, the
same chunk size and overlap, the same number of chunks for the answer (ragqa's top_k),
the same answer length cap, greedy decoding; model loads and a first warm-up query
are outside the timings on both sides. Both sides' rows are scored by ragqa.evaluation.metrics.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

VENV = ROOT / "bench" / "peer" / ".venv"
PEER_PY = VENV / "bin" / "python"


def setup() -> None:
    if PEER_PY.exists() and subprocess.run([str(PEER_PY), "-c", "import llama_index.core, llama_cpp"],
                                           capture_output=True).returncode == 0:
        return
    print(f"setting up {VENV} (LlamaIndex; a few minutes, once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    wheels = sorted(glob.glob(str(Path.home() / ".cache" / "ragqa" / "wheels" / "llama-cpp-python-0.3.36-*")))
    links = ["--find-links", wheels[-1]] if wheels else []  # else pip compiles llama.cpp (~15 min)
    env = {**os.environ, "CMAKE_ARGS": (ROOT / "CMAKE_ARGS").read_text().strip() if (ROOT / "CMAKE_ARGS").is_file() else
           os.environ.get("CMAKE_ARGS", "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF")}
    subprocess.run([str(PEER_PY), "-m", "pip", "install", "-q", "-r", str(ROOT / "bench" / "peer" / "peer-requirements.txt"), *links],
                   check=True, env=env)


def pct(values, q):
    from ragqa.evaluation.metrics import percentile

    return percentile(list(values), q)


def run_ragqa(corpus: Path, questions: list[dict], threads: int) -> dict:
    from ragqa import RAG
    from ragqa.models.paths import bundled_gguf_path

    with tempfile.TemporaryDirectory() as tmp:
        rag = RAG(Path(tmp) / "index", n_threads=threads, embed_processes=threads, model_path=str(bundled_gguf_path()))
        rag.embedder.embed(["warm the model up"])
        t = time.perf_counter()
        report = rag.ingest([corpus])
        ingest_s = time.perf_counter() - t
        rag.ask("What is this collection about?")  # warm: loads the GGUF, as the peer's first query
        rows = []
        for q in questions:
            t = time.perf_counter()
            hits = rag.retrieve(q["question"], 5)
            retrieve_s = time.perf_counter() - t
            t = time.perf_counter()
            answer = rag.ask(q["question"])
            ask_s = time.perf_counter() - t
            generated = answer.signals.get("n_citations") is not None  # generation ran (not stopped before it)
            llm = rag.generator.llm if generated else None
            prompt_tokens = llm.n_tokens - len(rag.generator.last_logprobs) if llm is not None else None
            rows.append({"id": q["id"], "retrieved": list(dict.fromkeys(h.chunk.document for h in hits)),
                         "retrieve_s": retrieve_s, "answer": answer.answer, "abstained": answer.abstained,
                         "draft": answer.draft, "ask_s": ask_s, "prompt_tokens": prompt_tokens,
                         "citations": len(answer.citations)})
        settings = rag.settings
        rag.close()
    return {"ingest_s": ingest_s, "chunks": report.chunks_embedded, "rows": rows, "top_k": settings.top_k,
            "chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap, "max_tokens": settings.max_tokens}


def run_peer(corpus: Path, questions: list[dict], threads: int, mine: dict) -> dict:
    from ragqa.models.paths import bundled_gguf_path, default_embedder_path

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(questions, f)
    done = subprocess.run([str(PEER_PY), str(ROOT / "bench" / "peer" / "peer_llamaindex.py"), str(corpus), f.name,
                           str(default_embedder_path()), str(bundled_gguf_path()), str(threads), str(mine["chunk_tokens"]),
                           str(mine["chunk_overlap"]), str(mine["top_k"]), str(mine["max_tokens"])],
                          capture_output=True, text=True)
    os.unlink(f.name)
    if done.returncode != 0:
        raise SystemExit(f"the LlamaIndex run failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def score(side: dict, questions: list[dict], abstains) -> dict:
    from ragqa.answer.citations import markers
    from ragqa.evaluation.metrics import is_right, recall_at

    by_id = {q["id"]: q for q in questions}
    rows = side["rows"]
    answered = [r for r in rows if not abstains(r)]
    unanswerable = [r for r in rows if not by_id[r["id"]]["answerable"]]
    answerable = [r for r in rows if by_id[r["id"]]["answerable"]]
    right = [r for r in answered if is_right(r["answer"], by_id[r["id"]]["answers"], by_id[r["id"]]["answerable"])]
    drafts_right = [r for r in answerable if is_right(r.get("draft", r["answer"]), by_id[r["id"]]["answers"], True)]
    prompts = [r["prompt_tokens"] for r in rows if r["prompt_tokens"]]
    with_gold = [r for r in rows if by_id[r["id"]]["gold_doc_ids"]]
    return {
        "ingest_s": side["ingest_s"], "chunks": side["chunks"],
        "retrieve_p50_ms": pct([r["retrieve_s"] for r in rows], 50) * 1000,
        "retrieve_p95_ms": pct([r["retrieve_s"] for r in rows], 95) * 1000,
        "recall@5": statistics.mean(recall_at(r["retrieved"], by_id[r["id"]]["gold_doc_ids"], 5) for r in with_gold),
        "ask_p50_s": pct([r["ask_s"] for r in rows], 50), "ask_p95_s": pct([r["ask_s"] for r in rows], 95),
        "prompt_tokens_mean": statistics.mean(prompts) if prompts else None,
        "coverage": len(answered) / len(rows),
        "selective_risk": 1 - len(right) / len(answered) if answered else None,
        "abstain_unanswerable": sum(abstains(r) for r in unanswerable) / len(unanswerable) if unanswerable else None,
        "right_drafts_answerable": len(drafts_right) / len(answerable) if answerable else None,
        "answers_with_citation": sum(bool(markers(r["answer"])) for r in answered) / len(answered) if answered else None,
    }


ROWS = [("ingest wall time, s", "ingest_s", "{:.1f}", "lower"), ("chunks", "chunks", "{:.0f}", None),
        ("retrieval p50, ms", "retrieve_p50_ms", "{:.1f}", "lower"), ("retrieval p95, ms", "retrieve_p95_ms", "{:.1f}", "lower"),
        ("recall@5 (document)", "recall@5", "{:.3f}", "higher"), ("ask p50, s", "ask_p50_s", "{:.2f}", "lower"),
        ("ask p95, s", "ask_p95_s", "{:.2f}", "lower"), ("prompt tokens, mean", "prompt_tokens_mean", "{:.0f}", "lower"),
        ("coverage (answers given)", "coverage", "{:.2f}", None), ("selective risk (wrong among given)", "selective_risk", "{:.2f}", "lower"),
        ("abstained on unanswerable", "abstain_unanswerable", "{:.2f}", "higher"),
        ("right drafts, answerable", "right_drafts_answerable", "{:.2f}", "higher"),
        ("answers with a citation", "answers_with_citation", "{:.2f}", None)]


def table(ours: dict, theirs: dict) -> str:
    lines = [f"{'':38} {'ragqa':>9} {'LlamaIndex':>11} {'ratio':>8}"]
    for label, key, fmt, better in ROWS:
        a, b = ours.get(key), theirs.get(key)
        sa = fmt.format(a) if a is not None else "-"
        sb = fmt.format(b) if b is not None else "-"
        ratio = ""
        if better and a and b:
            r = b / a if better == "lower" else a / b
            ratio = f"{r:.2f}x"
        lines.append(f"{label:38} {sa:>9} {sb:>11} {ratio:>8}")
    lines.append("ratio: how many times better ragqa is (time: theirs / ours; recall and rates: ours / theirs)")
    return "\n".join(lines)


def main() -> None:
    from ragqa.answer.signals import declined
    from ragqa.evaluation.run import load_questions

    shared = ROOT.parent / "shared" / "data" / "squad2"
    ap = argparse.ArgumentParser()
    ap.add_argument("--squad", type=Path, default=shared if shared.is_dir() else ROOT / "corpora" / "squad2")
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bench_peer.json")
    a = ap.parse_args()
    qfile = next(p for p in (a.squad / "questions_calib.jsonl", a.squad / "questions_calibrate.jsonl") if p.is_file())
    questions = load_questions(qfile, limit=a.questions)
    setup()
    corpus = a.squad / "corpus"
    mine = run_ragqa(corpus, questions, a.threads)
    theirs = run_peer(corpus, questions, a.threads, mine)
    ours_scored = score(mine, questions, lambda r: r["abstained"])
    theirs_scored = score(theirs, questions, lambda r: not r["answer"].strip() or r["answer"].strip() == "Empty Response"
                          or declined(r["answer"]))
    text = table(ours_scored, theirs_scored)
    print(f"{len(questions)} questions of {qfile.name} ({sum(q['answerable'] for q in questions)} answerable), "
          f"corpus {corpus}, {a.threads} threads each\n{text}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "questions": len(questions), "threads": a.threads,
                                 "ragqa": ours_scored, "llamaindex": theirs_scored, "table": text.splitlines()}, indent=2) + "\n")
    print(f"saved {a.out}")


if __name__ == "__main__":
    main()
