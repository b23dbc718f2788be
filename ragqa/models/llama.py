"""Generation with llama.cpp (llama-cpp-python): any GGUF, its own chat template, streamed.

The chat template is the one stored in the GGUF's metadata (llama-cpp-python reads it
when no chat_format is forced). `n_gpu_layers=-1` offloads every layer when
llama-cpp-python was built with CUDA (CMAKE_ARGS="-DGGML_CUDA=on")."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import ModelError
from . import prefix_state
from .catalogue import default_path, resolve
from .generator import BaseGenerator, Message, SamplingParams

log = logging.getLogger(__name__)


def gguf_identity(path: Path) -> dict[str, Any]:
    """Name, size and a hash of the first MiB: cheap, and different for another quantization."""
    path = Path(path)
    h = hashlib.sha256()
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
    return {"name": path.name, "bytes": path.stat().st_size, "sha256_1mib": h.hexdigest()}


def start_probability(scores, chosen: int, candidate_ids: Sequence[int]) -> float | None:
    """Softmax of the first-step logits over the candidates' first tokens: the probability
    of the chosen one (None when it is not among them)."""
    import numpy as np

    ids = sorted(set(candidate_ids))
    if chosen not in ids:
        return None
    s = np.asarray(scores, dtype=np.float64)[ids]
    p = np.exp(s - s.max())
    return float(p[ids.index(chosen)] / p.sum())


class _LogprobRecorder:
    """A llama-cpp-python logits processor that records, at each step, the log-probability
    of the token chosen at the step before. It runs first in the sampler chain, before the
    grammar, so the values are the model's own (identical to logits_all=True logprobs,
    checked on the bundled model) without computing logits for every prompt token."""

    def __init__(self, candidate_ids: Sequence[int] = ()):
        self.logprobs: list[float] = []
        self._previous = None
        self.candidate_ids = candidate_ids
        self.first_scores: Any = None
        self.start_probability: float | None = None

    def __call__(self, input_ids, scores):
        import numpy as np

        s = np.asarray(scores, dtype=np.float64)
        if self._previous is not None and len(input_ids):
            chosen = int(input_ids[-1])
            self.logprobs.append(float(self._previous[chosen]))
            if self.first_scores is not None and self.candidate_ids:
                self.start_probability = start_probability(self.first_scores, chosen, self.candidate_ids)
            self.first_scores = None
        elif self._previous is None:
            self.first_scores = s
        top = s.max()
        self._previous = s - top - np.log(np.exp(s - top).sum())
        return scores


_LOG_CALLBACK = None  # kept referenced: llama.cpp calls it for as long as the process lives


def route_llama_logs() -> None:
    """llama.cpp's own log lines go to this module's logger at debug level, never to the
    terminal: llama-cpp-python prints some even with verbose=False (a Gemma 3 GGUF's
    "llama_kv_cache_iswa: using full-size SWA cache" on every load), and the library
    never prints."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback
    def callback(level, text, user_data):
        line = text.decode("utf-8", "replace").rstrip()
        if line:
            log.debug("llama.cpp: %s", line)

    _LOG_CALLBACK = callback
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


class LlamaCppGenerator(BaseGenerator):
    can_self_check = True

    def __init__(self, model_path: str | None = None, *, n_ctx: int = 2048, n_gpu_layers: int = 0,
                 n_threads: int = 0, seed: int = 42, check: bool = True, prefix_cache: bool = False):
        # a catalogue name (ragqa.models.catalogue) or a path
        self.model_path = resolve(model_path) if model_path else default_path()
        self.name = self.model_path.name
        self.n_ctx = n_ctx
        self.n_gpu_layers = n_gpu_layers
        self.n_threads = n_threads if n_threads > 0 else (os.cpu_count() or 1)
        self.seed = seed
        self.check = check
        self.prefix_cache = prefix_cache  # keep the prompt's constant prefix on disk (ragqa.models.prefix_state)
        self._prefix_done = False
        self.restored_tokens = 0
        self._llm: Any = None
        self._grammars: dict[str, object] = {}
        self._yes_no: tuple[list[int], list[int]] | None = None
        self._apart_state: Any = None  # the cache after the last question asked apart (its prompt's opening is reused)
        self.last_logprobs: list[float] = []
        self._recorder: _LogprobRecorder | None = None

    @property
    def identity(self) -> dict:
        """What a calibration is tied to: this GGUF file (name, size, hash of its first MiB)."""
        return gguf_identity(self.model_path)

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
            route_llama_logs()
            if self.check:  # a build this CPU cannot run would kill the process: find out in a child first
                from .llama_check import smoke

                smoke(self.model_path, n_threads=self.n_threads, n_gpu_layers=self.n_gpu_layers)
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

            if len(self._grammars) >= 16:  # span grammars differ per question: keep the cache small
                self._grammars.clear()

            self._grammars[gbnf] = LlamaGrammar.from_string(gbnf, verbose=False)
        return self._grammars[gbnf]

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def chat(self, messages: Sequence[Message], params: SamplingParams) -> Iterator[str]:
        from llama_cpp import LogitsProcessorList

        recorder = _LogprobRecorder(self._first_tokens(params.candidates))
        self.last_logprobs = recorder.logprobs
        self._recorder = recorder
        prefix = None
        if self.prefix_cache and not self._prefix_done and len(messages) > 1:
            prefix = prefix_state.key(self.model_path, self.n_ctx, list(messages)[:-1])
            self.restored_tokens = prefix_state.restore(self.llm, prefix)
        stream = self.llm.create_chat_completion(
            messages=list(messages), stream=True, max_tokens=params.max_tokens, temperature=params.temperature,
            top_p=params.top_p, top_k=params.top_k, seed=params.seed, stop=list(params.stop) or None,
            grammar=self._grammar(params.grammar), logits_processor=LogitsProcessorList([recorder]),
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
        if prefix is not None:  # the whole answer was read: keep its prefix for the next cold process
            self._prefix_done = True
            if not self.restored_tokens:
                try:
                    prefix_state.save(self.llm, prefix, list(messages)[:-1])
                except Exception as e:  # a full disk or a read-only home costs the next cold ask time, not this answer
                    log.warning("cannot keep the prompt prefix state: %s", e)


    @property
    def last_start_probability(self) -> float | None:
        return self._recorder.start_probability if self._recorder else None

    def _first_tokens(self, words: Sequence[str]) -> list[int]:
        out = []
        for w in words:
            toks = self.llm.tokenize(w.encode("utf-8"), add_bos=False, special=False)
            if toks:
                out.append(toks[0])
        return out

    def _yes_no_ids(self) -> tuple[list[int], list[int]]:
        if self._yes_no is None:
            def ids(variants):
                out = set()
                for v in variants:
                    toks = self.llm.tokenize(v.encode("utf-8"), add_bos=False, special=False)
                    if len(toks) == 1:
                        out.add(toks[0])
                return sorted(out)

            self._yes_no = (ids(["yes", "Yes", " yes", " Yes", "YES"]), ids(["no", "No", " no", " No", "NO"]))
        return self._yes_no

    def yes_probability(self, messages: Sequence[Message], apart: bool = False) -> float | None:
        """P(yes) / (P(yes) + P(no)) for the first token of the reply, summed over the
        spellings that are one token each. None if the vocabulary has no such tokens.

        `apart`: a question that does not continue the answer's conversation. It starts from
        the cache of the last such question (their shared opening, ~40 tokens, is not
        evaluated again: on 2 cores the 1.5B reads ~45 tokens/s) and leaves the cache as
        it found it, so the next answer finds its prompt's prefix (~300 tokens) still
        there. Saving and restoring costs ~10 + ~50 ms."""
        import numpy as np
        from llama_cpp import LogitsProcessorList

        yes, no = self._yes_no_ids()
        if not yes or not no:
            return None
        seen: dict[str, np.ndarray] = {}

        def capture(input_ids, scores):
            if "scores" not in seen:
                seen["scores"] = np.asarray(scores, dtype=np.float64).copy()
            return scores

        llm = self.llm
        kept = llm.save_state() if apart and llm.n_tokens else None
        try:
            if apart and self._apart_state is not None:
                llm.load_state(self._apart_state)
            llm.create_chat_completion(messages=list(messages), max_tokens=1, temperature=0.0,
                                       logits_processor=LogitsProcessorList([capture]))
            if apart:
                self._apart_state = llm.save_state()
        finally:
            if kept is not None:
                llm.load_state(kept)
        s = seen["scores"]
        top = s.max()
        p = np.exp(s - top)
        p_yes, p_no = float(p[yes].sum()), float(p[no].sum())
        return p_yes / (p_yes + p_no) if p_yes + p_no > 0 else None
