"""Generation with llama.cpp (llama-cpp-python): any GGUF, its own chat template, streamed.

The chat template is the one stored in the GGUF's metadata (llama-cpp-python reads it
when no chat_format is forced). `n_gpu_layers=-1` offloads every layer when
llama-cpp-python was built with CUDA (CMAKE_ARGS="-DGGML_CUDA=on")."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from .errors import ModelError
from .models import default_gguf_path

log = logging.getLogger(__name__)

Message = dict[str, str]


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 160
    temperature: float = 0.0
    top_p: float = 0.95
    top_k: int = 40
    seed: int = 42
    stop: tuple[str, ...] = ()
    grammar: str | None = None  # GBNF; generators that cannot constrain output ignore it


def citation_grammar(n_sources: int, max_chars: int = 300) -> str:
    """GBNF: a one-line answer that ends with one citation marker naming a given source.
    The grammar guarantees the form; whether the cited source supports the answer is
    checked afterwards (ragqa.citations), never assumed."""
    digits = "|".join(f'"{i}"' for i in range(1, max(1, n_sources) + 1))
    return f'root ::= [^\\[\\n] [^\\[\\n]{{0,{max_chars}}} " [" ({digits}) "]"'


@runtime_checkable
class Generator(Protocol):
    name: str

    def chat(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[str]:
        """Stream the assistant's reply as text pieces."""
        ...

    def count_tokens(self, text: str) -> int: ...


class LlamaCppGenerator:
    def __init__(self, model_path: str | None = None, *, n_ctx: int = 2048, n_gpu_layers: int = 0,
                 n_threads: int = 0, seed: int = 42):
        self.model_path = Path(model_path) if model_path else default_gguf_path()
        self.name = self.model_path.name
        self.n_ctx = n_ctx
        self.n_gpu_layers = n_gpu_layers
        self.n_threads = n_threads if n_threads > 0 else (os.cpu_count() or 1)
        self.seed = seed
        self._llm = None
        self._grammars: dict[str, object] = {}

    @property
    def llm(self):
        if self._llm is None:
            if not self.model_path.is_file():
                raise ModelError(f"model file not found: {self.model_path}")
            with self.model_path.open("rb") as f:
                if f.read(4) != b"GGUF":
                    raise ModelError(f"not a GGUF model file: {self.model_path}")
            try:
                from llama_cpp import Llama
            except ImportError as e:  # pragma: no cover - install problem
                raise ModelError(f"llama-cpp-python is not installed: {e}") from None
            try:
                self._llm = Llama(
                    model_path=str(self.model_path), n_ctx=self.n_ctx, n_gpu_layers=self.n_gpu_layers,
                    n_threads=self.n_threads, n_threads_batch=self.n_threads, seed=self.seed, verbose=False,
                )
            except Exception as e:
                raise ModelError(f"cannot load {self.model_path}: {e}") from None
        return self._llm

    def load(self) -> None:
        self.llm  # noqa: B018 - loads the model

    def _grammar(self, gbnf: str | None):
        if not gbnf:
            return None
        if gbnf not in self._grammars:
            from llama_cpp import LlamaGrammar

            self._grammars[gbnf] = LlamaGrammar.from_string(gbnf, verbose=False)
        return self._grammars[gbnf]

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def chat(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[str]:
        stream = self.llm.create_chat_completion(
            messages=list(messages), stream=True, max_tokens=params.max_tokens, temperature=params.temperature,
            top_p=params.top_p, top_k=params.top_k, seed=params.seed, stop=list(params.stop) or None,
            grammar=self._grammar(params.grammar),
        )
        try:
            for part in stream:
                piece = part["choices"][0]["delta"].get("content")
                if piece:
                    yield piece
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
