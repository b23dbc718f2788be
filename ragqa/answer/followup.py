"""A follow-up question rewritten to stand alone, for retrieval, without inventing.

The model rewrites the follow-up with the conversation (ragqa.answer.prompts). The rewrite
is kept only when it is a faithful restatement: it keeps at least half of the follow-up's
own content words, and it adds none found neither in the conversation nor in the
follow-up (a small model asked "Who developed it?" after a question about the first
steam-powered device wrote "... was developed by James Watt in 1876.": two invented
facts used as the search). Otherwise the previous question joined to the follow-up is the
query: it still carries the conversation's subject, and says nothing new."""

from __future__ import annotations

from collections.abc import Sequence

from ..models.generator import Generator, SamplingParams
from ..textutil import content_words
from .prompts import condense_messages

MAX_WORDS = 40
MIN_KEPT = 0.5  # of the follow-up's own content words


def invented(rewrite: str, history: Sequence[tuple[str, str]], question: str) -> set[str]:
    """The rewrite's content words found neither in the conversation nor in the follow-up."""
    known = content_words(question).union(*(content_words(q) | content_words(a) for q, a in history))
    return content_words(rewrite) - known


def faithful(rewrite: str, history: Sequence[tuple[str, str]], question: str) -> bool:
    own = content_words(question)
    kept = len(own & content_words(rewrite)) / len(own) if own else 1.0
    return (bool(rewrite) and len(rewrite.split()) <= MAX_WORDS and kept >= MIN_KEPT
            and rewrite.lower() != question.lower() and not invented(rewrite, history, question))


def fallback(history: Sequence[tuple[str, str]], question: str) -> str:
    return f"{history[-1][0]} {question}"


def rewrite(generator: Generator, history: Sequence[tuple[str, str]], question: str, seed: int) -> str:
    """The model's rewrite of the follow-up, as it wrote it (unchecked)."""
    params = SamplingParams(max_tokens=48, temperature=0.0, seed=seed, stop=("\n",))
    return "".join(generator.chat(condense_messages(history, question), params)).strip().strip('"')


def condense(generator: Generator, history: Sequence[tuple[str, str]], question: str, seed: int) -> str:
    """The standalone question for retrieval (the follow-up itself without a conversation)."""
    if not history:
        return question
    written = rewrite(generator, history, question, seed)
    return written if faithful(written, history, question) else fallback(history, question)
