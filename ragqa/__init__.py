"""ragqa: answers questions from your own documents, locally, with checked citations,
or says it cannot answer.

    from ragqa import RAG
    rag = RAG("indexes/default")
    rag.ingest(["./docs"])
    answer = rag.ask("Who patented the steam pump?")

Importing ragqa loads neither torch, faiss nor llama_cpp; they load when first needed."""

from __future__ import annotations

import logging
from typing import Any

from ._version import __version__

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["RAG", "Settings", "Answer", "Citation", "Hit", "Chunk", "Filters", "RagqaError", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "RAG":
        from .rag import RAG

        return RAG
    if name == "Settings":
        from .settings import Settings

        return Settings
    if name in {"Answer", "Citation", "Hit", "Chunk", "Filters"}:
        from . import types

        return getattr(types, name)
    if name == "RagqaError":
        from .errors import RagqaError

        return RagqaError
    raise AttributeError(f"module 'ragqa' has no attribute {name!r}")
