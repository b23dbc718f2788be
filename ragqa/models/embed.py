"""Embedders: one small protocol and the factory that picks the backend.

- torch (ragqa.models.torch_embed): sentence-transformers on torch;
- onnx / onnx-int8 (ragqa.models.onnx_embed): the same model exported to ONNX on this
  machine, in float32 or int8 (the default for a new index).

The backend an index was built with is recorded in its manifest and used again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..errors import ModelError
from ..settings import Settings, choices

if TYPE_CHECKING:
    import numpy as np

BACKENDS: tuple[str, ...] = choices("embed_backend")
DEFAULT_BACKEND = "onnx-int8"  # for a new index; measured in bench/bench_embed.py (docs/benchmarks.md)
# what the vectors are made with: float32 from torch and onnx agree to a cosine of 0.99999
# and may share an index; int8's differ (cosine ~0.994) and may not
VECTOR_KIND = {"torch": "float32", "onnx": "float32", "onnx-int8": "int8"}
assert set(VECTOR_KIND) == set(BACKENDS) and DEFAULT_BACKEND in BACKENDS


def make_embedder(settings: Settings, backend: str | None = None) -> "Embedder":
    """The embedder these settings name, on `backend` (default: the setting, else
    DEFAULT_BACKEND), with its threads and batch size."""
    backend = backend or settings.embed_backend or DEFAULT_BACKEND
    if backend == "torch":
        from .torch_embed import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder.from_settings(settings)
    if backend in ("onnx", "onnx-int8"):
        from .onnx_embed import OnnxEmbedder

        return OnnxEmbedder(settings.embedder, quantized=backend == "onnx-int8", threads=settings.embed_processes)
    raise ModelError(f"embedding backend {backend!r}: use one of {', '.join(BACKENDS)}")


@runtime_checkable
class Embedder(Protocol):
    name: str

    @property
    def backend(self) -> str | None:
        """What made the vectors (torch, onnx, onnx-int8; None for other embedders)."""
        ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Longest input the model reads, in its own tokens (no special tokens)."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        """Unit-length float32 vectors, one row per text."""
        ...

    def close(self) -> None:
        """Free what the embedder holds (worker processes, sessions)."""
        ...
