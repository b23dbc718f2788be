"""Core benchmark, run on purpose (`make bench`), printing figures side by side.

1. Ingest: ragqa's embedding of the demo corpus's chunks (chunks/s) against raw
   `SentenceTransformer.encode` of the very same chunk texts, in one process with torch
   at every core, against ragqa's two single-threaded worker processes (torch), and
   against the onnx-int8 backend (the default for a new index; bench/bench_embed.py has
   the whole comparison).
2. Ask: `RAG.ask` latency against raw llama.cpp `create_chat_completion` on the same
   prompt (the excerpts ragqa showed) with the same output token count, neither
   starting from a saved prompt state.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from ragqa import RAG
from ragqa.answer.grammar import citation_grammar
from ragqa.answer.prompts import answer_messages
from ragqa.models.torch_embed import POOL_MIN_TEXTS, SentenceTransformerEmbedder

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "Who developed a steam-powered water pump in 1698?",
    "Where is the Scottish Parliament building?",
    "Who was the first Duke of Normandy?",
    "What did Watt add to the steam engine in 1788?",
    "How many members does the Scottish Parliament have?",
]
REPEAT = 3  # corpus passes, to have enough chunks for steady figures


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="ingest and ask against the raw libraries, side by side")
    ap.add_argument("--model", default=None, help="the reader for the ask part: a catalogue name or a GGUF (default: the default reader)")
    ap.add_argument("--ask-only", action="store_true", help="skip the embedding part")
    args = ap.parse_args()
    ncores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        # no prompt state from disk: the same start as raw
        rag = RAG(Path(tmp) / "index", prefix_cache=0, model_path=args.model)
        report = rag.ingest([ROOT / "corpora" / "demo"])
        store = rag._store()
        texts = [c.text for c in store.chunks(sorted(store.vectors.ids())).values()] * REPEAT
        print(f"corpus: demo, {report.chunks_embedded} chunks x {REPEAT} = {len(texts)} texts, {ncores} cores; "
              f"reader {rag.generator.name}")
        if not args.ask_only:
            embedding(rag, texts, ncores)
        ask(rag)
        rag.close()


def embedding(rag: RAG, texts: list[str], ncores: int) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    raw_model = SentenceTransformer(str(rag.embedder.source), device="cpu")
    torch.set_num_threads(ncores)
    raw_model.encode(texts[:32])  # warm
    t_raw, _ = timed(lambda: raw_model.encode(texts, batch_size=32, normalize_embeddings=True))
    pooled = SentenceTransformerEmbedder(processes=ncores)
    t_start, _ = timed(lambda: pooled.embed(texts[: max(256, 2 * 32 * ncores)]))  # start + warm the pool
    t_pool, _ = timed(lambda: pooled.embed(texts))
    pooled.close()
    torch.set_num_threads(1)
    inproc = SentenceTransformerEmbedder(processes=ncores)  # below the pool threshold: threads
    inproc.embed(texts[:32])
    n_one = min(len(texts), POOL_MIN_TEXTS - 1)
    t_one, _ = timed(lambda: inproc.embed(texts[:n_one]))
    n = len(texts)
    from ragqa.models.onnx_embed import OnnxEmbedder

    int8 = OnnxEmbedder(quantized=True)
    int8.embed(texts[:32])
    t_int8, _ = timed(lambda: int8.embed(texts))
    print("\nembedding (same chunk texts)")
    print(f"  raw SentenceTransformer.encode, 1 process x {ncores} threads : {n / t_raw:7.1f} chunks/s")
    print(f"  ragqa, 1 process x {ncores} threads (batches < {POOL_MIN_TEXTS})        : {n_one / t_one:7.1f} chunks/s  ({(n_one / t_one) / (n / t_raw):.2f}x raw)")
    print(f"  ragqa, {ncores} processes x 1 thread (ingest path)          : {n / t_pool:7.1f} chunks/s  ({t_raw / t_pool:.2f}x raw)")
    print(f"  (pool start-up and warm-up, paid once per ingest: {t_start:.1f}s)")
    print(f"  ragqa onnx-int8 (a new index's default), 1 process         : {n / t_int8:7.1f} chunks/s  ({t_raw / t_int8:.2f}x raw)")



def ask(rag: RAG) -> None:
    gen = rag.generator
    llm = gen.llm
    ours, raw, toks = [], [], []
    for q in QUESTIONS:
        llm.reset()  # no prompt-cache advantage for either side
        a = rag.ask(q)
        hits = list(a.sources)  # the very excerpts ragqa's prompt showed
        messages = answer_messages(q, hits, rag.settings.system_prompt)
        t_ask = a.timings["total_s"]
        draft = a.draft
        n_out = max(1, gen.count_tokens(draft))
        llm.reset()
        t, out = timed(lambda: llm.create_chat_completion(
            messages=messages, max_tokens=n_out, temperature=0.0, seed=rag.settings.seed,
            grammar=gen._grammar(citation_grammar(len(hits)))))
        ours.append(t_ask)
        raw.append(t)
        toks.append((out["usage"]["prompt_tokens"], out["usage"]["completion_tokens"]))
    print("\nask (same prompt, same output tokens; raw = llama.cpp create_chat_completion with the same grammar)")
    for q, o, r, (p, c) in zip(QUESTIONS, ours, raw, toks):
        print(f"  {o:5.2f}s ragqa  {r:5.2f}s raw  ({o / r:.2f}x)  prompt {p:4d} tok, answer {c:3d} tok  {q[:48]}")
    print(f"  median: ragqa {statistics.median(ours):.2f}s, raw {statistics.median(raw):.2f}s, "
          f"ratio {statistics.median(o / r for o, r in zip(ours, raw)):.2f}x")


if __name__ == "__main__":
    main()
