"""What goes into the prompt: the most relevant sentences of the retrieved chunks, within
a token budget.

On a CPU every prompt token costs time, and a small model loses the answer in long
sources. Each sentence of the retrieved chunks is scored against the question (cosine
of their embeddings plus the share of the question's content words it contains); the
best sentences are taken until the budget is spent, and each run of consecutive chosen
sentences becomes one source: a contiguous excerpt of its chunk whose offsets still
point at the original document, so that citations are grounded to the real text."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..ingest.chunking import sentence_spans
from ..textutil import content_words
from ..types import Hit

if TYPE_CHECKING:
    import numpy as np

# Scores each sentence against the question, higher is more relevant.
SentenceScorer = Callable[[str, Sequence[str]], "Sequence[float] | np.ndarray"]


@dataclass(frozen=True)
class _Sentence:
    hit: int  # index into the hits
    order: int  # position in its chunk
    start: int  # offsets in the chunk's text
    end: int
    score: float
    tokens: int


def _overlap(want: set[str], sentence: str) -> float:
    """Share of the question's content words `want` that the sentence contains."""
    return len(want & content_words(sentence)) / len(want) if want else 0.0


def select(question: str, hits: Sequence[Hit], *, budget: int, count_tokens: Callable[[str], int],
           score: SentenceScorer) -> list[Hit]:
    """Excerpts of `hits` holding their best sentences, at most `budget` tokens in all
    (the single best sentence is always kept, whatever its length). The excerpts come
    back most relevant first; each is a Hit whose chunk is the excerpt, with the parent
    hit's score and ranks. A budget of 0 or less returns the hits unchanged."""
    if budget <= 0 or not hits:
        return list(hits)
    sentences: list[_Sentence] = []
    texts: list[str] = []
    for i, hit in enumerate(hits):
        text = hit.chunk.text
        for order, (s, e) in enumerate(sentence_spans(text)):
            sentences.append(_Sentence(i, order, s, e, 0.0, count_tokens(text[s:e])))
            texts.append(text[s:e])
    if not sentences:
        return list(hits)
    dense = score(question, texts)
    want = content_words(question)
    sentences = [replace(x, score=float(d) + _overlap(want, t)) for x, d, t in zip(sentences, dense, texts)]

    chosen: list[_Sentence] = []
    left = budget
    for x in sorted(sentences, key=lambda x: (-x.score, x.hit, x.order)):
        if x.tokens <= left or not chosen:
            chosen.append(x)
            left -= x.tokens
    return _excerpts(hits, chosen)


def _excerpts(hits: Sequence[Hit], chosen: Sequence[_Sentence]) -> list[Hit]:
    """One excerpt per run of consecutive chosen sentences of a chunk, best run first."""
    runs: list[list[_Sentence]] = []
    for x in sorted(chosen, key=lambda x: (x.hit, x.order)):
        if runs and runs[-1][-1].hit == x.hit and runs[-1][-1].order == x.order - 1:
            runs[-1].append(x)
        else:
            runs.append([x])
    runs.sort(key=lambda run: (-max(x.score for x in run), run[0].hit, run[0].order))
    out = []
    for rank, run in enumerate(runs, start=1):
        hit = hits[run[0].hit]
        s, e = run[0].start, run[-1].end
        chunk = replace(hit.chunk, text=hit.chunk.text[s:e], start=hit.chunk.start + s, end=hit.chunk.start + e)
        out.append(replace(hit, chunk=chunk, rank=rank))
    return out
