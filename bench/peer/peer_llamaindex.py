"""The LlamaIndex side of bench/peer/bench_peer.py, run with bench/peer/.venv's Python (ragqa is
not importable there). The same job the idiomatic LlamaIndex way: SimpleDirectoryReader,
SentenceSplitter, FaissVectorStore(IndexFlatIP), VectorStoreIndex, a retriever for
retrieval and CitationQueryEngine for answers, on the same models (the bundled MiniLM by
its folder, the SmolLM2 GGUF) and threads. Prints one JSON object of raw rows; the parent
scores them with ragqa's metrics, the same way as ragqa's own rows.

    python peer_llamaindex.py CORPUS QUESTIONS.json MINILM_DIR GGUF THREADS CHUNK_TOKENS OVERLAP TOP_K MAX_TOKENS
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def chatml(messages) -> str:
    """SmolLM2's chat template (ChatML), as its GGUF states it; LlamaIndex's LlamaCPP
    defaults to Llama 2's format, which a user of this model would replace."""
    out = ""
    for m in messages:
        role = m.role.value if hasattr(m.role, "value") else str(m.role)
        out += f"<|im_start|>{role}\n{m.content}<|im_end|>\n"
    return out + "<|im_start|>assistant\n"


def main() -> None:
    corpus, questions_file, minilm, gguf = sys.argv[1:5]
    threads, chunk_tokens, overlap, top_k, max_tokens = map(int, sys.argv[5:10])
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import faiss
    import torch
    from llama_index.core import Settings, SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
    from llama_index.core.llms import ChatMessage
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.query_engine import CitationQueryEngine
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.llms.llama_cpp import LlamaCPP
    from llama_index.vector_stores.faiss import FaissVectorStore

    torch.set_num_threads(threads)
    questions = json.loads(Path(questions_file).read_text())
    Settings.embed_model = HuggingFaceEmbedding(model_name=minilm, device="cpu")
    llm = LlamaCPP(model_path=gguf, temperature=0.0, max_new_tokens=max_tokens, context_window=2048,
                   model_kwargs={"n_threads": threads, "n_gpu_layers": 0}, verbose=False,
                   messages_to_prompt=chatml,
                   completion_to_prompt=lambda text: chatml([ChatMessage(role="user", content=text)]))
    Settings.llm = llm
    counter = TokenCountingHandler(tokenizer=lambda text: llm._model.tokenize(text.encode(), add_bos=False, special=True))
    Settings.callback_manager = CallbackManager([counter])
    Settings.embed_model.get_text_embedding("warm the model up")

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        documents = SimpleDirectoryReader(corpus).load_data()
        store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(384))
        index = VectorStoreIndex.from_documents(documents, storage_context=StorageContext.from_defaults(vector_store=store),
                                                transformations=[SentenceSplitter(chunk_size=chunk_tokens, chunk_overlap=overlap)])
        index.storage_context.persist(persist_dir=tmp)  # ragqa's ingest ends on disk too
        ingest_s = time.perf_counter() - t
    n_nodes = len(index.docstore.docs)

    retriever = index.as_retriever(similarity_top_k=5)
    engine = CitationQueryEngine.from_args(index, similarity_top_k=top_k)
    engine.query("What is this collection about?")  # warm: the first query pays one-off costs
    rows = []
    for q in questions:
        t = time.perf_counter()
        nodes = retriever.retrieve(q["question"])
        retrieve_s = time.perf_counter() - t
        counter.reset_counts()
        t = time.perf_counter()
        response = engine.query(q["question"])
        ask_s = time.perf_counter() - t
        rows.append({"id": q["id"], "retrieved": [Path(n.node.metadata.get("file_name", "")).stem for n in nodes],
                     "retrieve_s": retrieve_s, "answer": str(response), "ask_s": ask_s,
                     "prompt_tokens": counter.prompt_llm_token_count,
                     "sources": len(response.source_nodes)})
    print(json.dumps({"ingest_s": ingest_s, "chunks": n_nodes, "documents": len(documents), "rows": rows}))


if __name__ == "__main__":
    main()
