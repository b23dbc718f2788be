"""The embedder on torch: a sentence-transformers model from a local directory (default:
the bundled all-MiniLM-L6-v2).

On a CPU, embedding is the cost of ingest. A batch of chunks is embedded with torch
using every core; a large ingest is spread over a pool of single-threaded worker
processes instead (bench/bench_core.py, two runs on this 2-core machine: 1.03x-1.22x
the chunks/s of one process with two threads, but about 10 s to start, so only past
POOL_MIN_TEXTS). A single question is embedded on one thread, so it never leaves torch
threads spinning beside llama.cpp's."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ModelError
from .paths import DEFAULT_EMBEDDER_NAME, default_embedder_path

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


# Below this many texts, starting worker processes costs more than it saves
# (measured break-even against in-process threads: about 1,100 chunks of 200 tokens).
POOL_MIN_TEXTS = 1024



def load_sentence_transformer(source: str, threads: int, **model_kwargs):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the library never prints
    hf_logging.set_verbosity_error()

    torch.set_num_threads(threads)
    try:
        return SentenceTransformer(source, device="cpu", model_kwargs=model_kwargs or None)
    except Exception as e:  # a missing directory, a broken config, a hub name offline
        raise ModelError(f"cannot load the embedder {source!r}: {e}") from None


# --- worker processes (spawned: fork after torch starts its threads is unsafe) ---
_worker_model = None


def _worker_init(source: str) -> None:
    global _worker_model
    _worker_model = load_sentence_transformer(source, threads=1)


def _worker_encode(args: tuple[list[str], int]):
    texts, batch_size = args
    assert _worker_model is not None, "set by _worker_init"
    return _worker_model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local directory (default: bundled MiniLM)."""

    backend = "torch"

    def __init__(self, model: str | None = None, processes: int = 0, batch_size: int = 32):
        if model:
            self.source = str(model)
            self.name = os.path.basename(os.path.normpath(self.source)) or self.source
        else:
            self.source = str(default_embedder_path())
            self.name = DEFAULT_EMBEDDER_NAME
        self.processes = processes if processes > 0 else (os.cpu_count() or 1)
        self.batch_size = batch_size
        self._model = None
        self._pool: Any = None

    @classmethod
    def from_settings(cls, settings) -> "SentenceTransformerEmbedder":
        """The embedder a ragqa.settings.Settings names, with its threads and batch size."""
        return cls(settings.embedder, processes=settings.embed_processes, batch_size=settings.embed_batch_size)

    @property
    def model(self):
        if self._model is None:
            self._model = load_sentence_transformer(self.source, threads=1)
        return self._model

    @property
    def dimension(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length) - 2  # [CLS] and [SEP]

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])

    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        import numpy as np

        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.processes > 1 and len(texts) >= POOL_MIN_TEXTS:
            pool = self._get_pool()
            step = self.batch_size * 2
            parts = pool.map(_worker_encode, [(texts[i: i + step], self.batch_size) for i in range(0, len(texts), step)])
            out = np.concatenate(parts)
        else:
            import torch

            threads = self.processes if len(texts) > 1 else 1
            torch.set_num_threads(threads)
            try:
                out = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True)
            finally:
                torch.set_num_threads(1)
        return np.ascontiguousarray(out, dtype=np.float32)

    def _get_pool(self):
        if self._pool is None:
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")
            log.info("starting %d embedding processes", self.processes)
            self._pool = ctx.Pool(self.processes, initializer=_worker_init, initargs=(self.source,))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def __del__(self):  # pragma: no cover - best effort at interpreter exit
        try:
            if self._pool is not None:
                self._pool.terminate()
        except Exception:
            pass
