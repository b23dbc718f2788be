"""The values that travel through the pipeline. Plain frozen dataclasses, no behaviour
beyond conversion to JSON-ready dicts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import Any


@dataclass(frozen=True)
class Page:
    """Where a page starts in a document's extracted text (1-based page number)."""

    number: int
    start: int


@dataclass(frozen=True)
class LoadedText:
    """A file's text as extracted, with the offset at which each page starts."""

    text: str
    pages: tuple[Page, ...] = ()
    encoding: str | None = None

    def page_at(self, offset: int) -> int | None:
        page = None
        for p in self.pages:
            if p.start <= offset:
                page = p.number
            else:
                break
        return page


@dataclass(frozen=True)
class ChunkSpan:
    """A chunk as cut by the chunker: its text is exactly source[start:end]."""

    text: str
    start: int
    end: int
    page: int | None
    n_tokens: int


@dataclass(frozen=True)
class Chunk:
    """A stored chunk. `id` is its database id and also its FAISS vector id."""

    id: int
    document_id: int
    document: str  # file name without extension
    path: str
    ordinal: int
    text: str
    start: int
    end: int
    page: int | None


@dataclass(frozen=True)
class Hit:
    """A chunk returned by retrieval. `score` is always the cosine similarity of the chunk
    to the question (also for a chunk found by lexical search); `dense_rank` and
    `lexical_rank` say where each search placed it (None: not in its results)."""

    chunk: Chunk
    score: float
    rank: int
    dense_rank: int | None = None
    lexical_rank: int | None = None


def where(document: str, page: int | None) -> str:
    """How a source is named to a person and to the model: "manual, p. 3"."""
    return document + (f", p. {page}" if page else "")


@dataclass(frozen=True)
class Citation:
    """A `[n]` marker of the answer, mapped to the span of source n that supports it."""

    n: int
    document: str
    path: str
    page: int | None
    start: int  # character offsets in the document's extracted text
    end: int
    quote: str
    support: float  # word overlap between the cited sentence and the quoted span, 0..1


@dataclass(frozen=True)
class Filters:
    """Which documents a question may be answered from: any of `documents` (names: file
    names without extension) and/or those whose path starts with `path_prefix`. Empty
    filters allow every document."""

    documents: tuple[str, ...] = ()
    path_prefix: str | None = None

    def __bool__(self) -> bool:
        return bool(self.documents or self.path_prefix)

    @classmethod
    def of(cls, value: "Filters | dict[str, Any] | None") -> "Filters":
        """From a Filters, None, or a dict such as {"documents": [...], "path_prefix": "..."}."""
        if value is None or isinstance(value, Filters):
            return value or cls()
        unknown = set(value) - {"documents", "document", "path_prefix"}
        if unknown:
            from .errors import InputError

            raise InputError(f"unknown filter {sorted(unknown)[0]!r}: use documents or path_prefix")
        docs = value.get("documents", value.get("document")) or ()
        return cls(documents=(docs,) if isinstance(docs, str) else tuple(docs), path_prefix=value.get("path_prefix"))


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    abstained: bool
    confidence: float
    reason: str
    citations: tuple[Citation, ...] = ()
    sources: tuple[Hit, ...] = ()
    signals: dict[str, Any] = field(default_factory=dict)
    calibrated: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    retrieval_query: str | None = None
    draft: str = ""  # what the model wrote, kept when it is withdrawn (then `answer` is the abstention)
    id: int | None = None  # the question's id in the question log (ragqa.review.log), when logged
    answered_by: str = "model"  # or "person": a person's answer to the same question, reused (ragqa.review.reviews)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "confidence": round(self.confidence, 4),
            "calibrated": self.calibrated,
            "reason": self.reason,
            "answered_by": self.answered_by,
            "draft": self.draft,
            "citations": [asdict(c) for c in self.citations],
            "sources": [
                {
                    "n": i,
                    "document": h.chunk.document,
                    "path": h.chunk.path,
                    "page": h.chunk.page,
                    "score": round(h.score, 4),
                    "dense_rank": h.dense_rank,
                    "lexical_rank": h.lexical_rank,
                    "text": h.chunk.text,
                }
                for i, h in enumerate(self.sources, start=1)
            ],
            "signals": self.signals,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            **({"retrieval_query": self.retrieval_query} if self.retrieval_query else {}),
            **({"id": self.id} if self.id is not None else {}),
        }


def document_name(path: str) -> str:
    """The name a document is known by: its file name without extension."""
    return PurePath(path).stem
