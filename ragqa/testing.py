"""Deterministic fakes for tests and for trying ragqa without models.

    rag = RAG(tmp_path, embedder=HashEmbedder(), generator=ExtractiveGenerator())

HashEmbedder embeds a bag of words by feature hashing: texts that share words are
close, nothing else. ExtractiveGenerator answers with the source sentence that shares
most words with the question, cited; ScriptedGenerator replies what it is told."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from .ingest.chunking import sentence_spans
from .models.generator import BaseGenerator
from .textutil import content_words, words

_SOURCE = re.compile(r"^\[(\d+)\] \([^)]*\) (.*)$")


class HashEmbedder:
    backend = None

    def __init__(self, dimension: int = 256, max_tokens: int = 128, name: str = "hash-embedder"):
        self.name = name
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.calls: list[int] = []  # number of texts embedded per call

    def count_tokens(self, text: str) -> int:
        return len(words(text))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for w in content_words(text):
                h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dimension] += 1.0 if (h >> 32) & 1 else -1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out

    @property
    def texts_embedded(self) -> int:
        return sum(self.calls)

    def close(self) -> None:
        """Nothing held."""


def parse_sources(messages: Sequence[dict[str, str]]) -> tuple[list[str], str]:
    """The numbered source texts and the question of an answer prompt."""
    user = messages[-1]["content"]
    body, _, rest = user.partition("\n\nQuestion: ")
    sources = []
    for block in body.removeprefix("Sources:\n").split("\n\n"):
        m = _SOURCE.match(block.strip())
        if m:
            sources.append(m.group(2))
    return sources, rest.split("\n")[0]


class ExtractiveGenerator(BaseGenerator):
    name = "extractive-fake"

    def __init__(self):
        self.calls: list[list[dict[str, str]]] = []

    def count_tokens(self, text: str) -> int:
        return len(words(text))

    def chat(self, messages, params) -> Iterator[str]:
        self.calls.append(list(messages))
        sources, question = parse_sources(messages)
        want = content_words(question)
        best = (0.0, "", 0)
        for n, text in enumerate(sources, start=1):
            for s, e in sentence_spans(text):
                score = len(want & content_words(text[s:e])) / (len(want) or 1)
                if score > best[0]:
                    best = (score, text[s:e], n)
        reply = f"{best[1]} [{best[2]}]" if best[0] >= 0.5 else "I cannot answer from these documents."
        for token in re.findall(r"\S+\s*", reply):
            yield token


class ScriptedGenerator(BaseGenerator):
    """Replies with `reply(messages)` (or a fixed string), streamed word by word."""

    name = "scripted-fake"

    def __init__(self, reply: str | Callable[[list[dict[str, str]]], str]):
        self.reply = reply
        self.calls: list[list[dict[str, str]]] = []

    def count_tokens(self, text: str) -> int:
        return len(words(text))

    def chat(self, messages, params) -> Iterator[str]:
        self.calls.append(list(messages))
        text = self.reply(list(messages)) if callable(self.reply) else self.reply
        for token in re.findall(r"\S+\s*", text):
            yield token
