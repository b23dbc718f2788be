"""The in-process worker's embedder, which lets questions go first (`ragqa serve` with its
own worker): torch and llama.cpp on the same cores slow each other down."""

from __future__ import annotations

import time
from collections.abc import Callable


class YieldingEmbedder:
    """The in-process worker's embedder: it embeds in slices and, before each, waits while
    a question is being answered or one was less than `quiet` seconds ago (a client
    asking again), at most `max_wait` seconds a slice, so that ingest never starves. Torch and
    llama.cpp on the same cores slow each other down: answers
    took 1.8x as long while this process ingested, before it yielded (docs/service.md)."""

    SLICE = 16

    def __init__(self, inner, busy: Callable[[float], bool], quiet: float = 1.0, max_wait: float = 5.0):
        self.inner, self.busy, self.quiet, self.max_wait = inner, busy, quiet, max_wait

    def __getattr__(self, name: str):  # name, dimension, max_tokens, count_tokens, close
        return getattr(self.inner, name)

    def embed(self, texts):
        import numpy as np

        texts = list(texts)
        parts = []
        for i in range(0, len(texts), self.SLICE):
            deadline = time.monotonic() + self.max_wait
            while self.busy(self.quiet) and time.monotonic() < deadline:
                time.sleep(0.05)
            parts.append(self.inner.embed(texts[i: i + self.SLICE]))
        return np.concatenate(parts) if parts else self.inner.embed([])
