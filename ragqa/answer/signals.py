"""Every signal an answer carries (`Answer.signals`): declared once (its name, what it
measures, whether the calibrator reads it), and read off the retrieval, the draft and the
model. ragqa.answer.scorer's calibrator reads FEATURES, in this order;
tests/test_pipeline.py checks that an answer carries no undeclared signal."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from ..ingest.chunking import sentence_spans
from ..textutil import content_words, numbers
from .citations import strip_markers


class Signal(NamedTuple):
    meaning: str
    feature: bool  # read by the calibrator


SIGNALS: dict[str, Signal] = {
    # read by the calibrator (this order is FEATURES' order)
    "retrieval_top": Signal("best retrieval score (cosine, or the fused score)", True),
    "retrieval_margin": Signal("best score minus the second", True),
    "lexical_agreement": Signal("1 / the lexical rank of the best dense hit (0: missed; None: no lexical search)", True),
    "cited_rank": Signal("retrieval rank of the first source cited", True),
    "cited_dense_score": Signal("score of the first source cited", True),
    "grounding": Signal("share of the answer's content words found in what it cites", True),
    "citation_support": Signal("mean share of the claim covered by each cited sentence", True),
    "numbers_supported": Signal("every number in the answer appears in a cited source", True),
    "answer_in_question": Signal("share of the answer's words that merely repeat the question", True),
    "answer_type_match": Signal("the answer has the shape the question asks for (a number, a name)", True),
    "answer_words": Signal("length of the answer in words", True),
    "logprob_mean": Signal("mean token log-probability of the answer", True),
    "logprob_min": Signal("lowest token log-probability", True),
    "logprob_first": Signal("log-probability of the first token", True),
    "self_check": Signal("P(yes) to 'is your answer stated in the sources?', corrected against content-free sources", True),
    "sentence_check": Signal("P(yes) to 'does this sentence by itself state that the answer to the question is ...?', "
                             "asked of the cited sentence apart from the answer's sources", True),
    "question_coverage": Signal("share of the question's words that the sources shown hold", True),
    "question_coverage_answer": Signal("the same around the sentence the answer came from", True),
    "start_probability": Signal("probability of the chosen span's start (extractive answers)", True),
    # recorded for the person and for evaluation, not read by the calibrator
    "context_tokens": Signal("model tokens of the sources shown", False),
    "n_citations": Signal("valid citations", False),
    "n_invalid_citations": Signal("citations of sources that were not given", False),
    "cited": Signal("the source numbers cited", False),
    "declined": Signal("the model said it cannot answer", False),
    "cites_instruction": Signal("a cited sentence is an instruction to the assistant (ragqa.answer.injection)", False),
    "example_copied": Signal("the first draft, a worked example's answer that its sources do not hold; drafted "
                             "again as a span of the sources", False),
    "self_check_raw": Signal("P(yes) before the content-free correction", False),
    "self_check_content_free": Signal("P(yes) with content-free sources", False),
}

FEATURES: tuple[str, ...] = tuple(name for name, s in SIGNALS.items() if s.feature)


DECLINE_PATTERNS = (
    "cannot answer", "can't answer", "unable to answer", "not contain", "no information",
    "not mentioned", "does not say", "doesn't say", "not provided", "not specified", "i don't know",
    "i do not know", "no answer",
)


def declined(answer: str) -> bool:
    low = answer.lower()
    return any(p in low for p in DECLINE_PATTERNS)


def retrieval_signals(hits: Sequence[Any]) -> dict[str, float | None]:
    """Best cosine, its margin over the next, and whether lexical search agrees with dense
    search on the best chunk (1/its lexical rank; 0 when lexical search missed it; None
    when there was no lexical search)."""
    scores = sorted((h.score for h in hits), reverse=True)
    top = scores[0] if scores else 0.0
    second = scores[1] if len(scores) > 1 else 0.0
    out: dict[str, float | None] = {"retrieval_top": round(top, 4), "retrieval_margin": round(top - second, 4)}
    if hits and any(h.lexical_rank is not None or h.dense_rank is not None for h in hits):
        best = min(hits, key=lambda h: h.dense_rank or 10**9)
        lexical_ran = any(h.lexical_rank is not None for h in hits)
        out["lexical_agreement"] = round(1 / best.lexical_rank, 4) if best.lexical_rank else (0.0 if lexical_ran else None)
    return out


_MONTHS = re.compile(r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b|\b(century|centuries|decade)\b", re.I)


_NUMBER_WORDS = re.compile(r"\b(one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|million|billion)\b", re.I)


def _expected_shape(question: str) -> str | None:
    q = question.lower()
    if re.search(r"\b(when|what year|which year|what century|how (many|much|long|old|far|large|big|tall))\b", q):
        return "number"
    if re.match(r"\s*(who|whom|whose)\b", q) or re.search(r"\b(who|which person|what person)\b", q):
        return "name"
    return None


def answer_type_match(question: str, answer: str) -> float:
    """1 when the answer has the shape the question asks for (a number or date for
    when/how many; a capitalized name for who), 0 when it lacks it, 0.5 when the
    question sets no shape."""
    shape = _expected_shape(question)
    if shape is None:
        return 0.5
    if shape == "number":
        return 1.0 if numbers(answer) or _MONTHS.search(answer) or _NUMBER_WORDS.search(answer) else 0.0
    return 1.0 if re.search(r"\b[A-Z][a-z]+", answer) else 0.0


def answer_signals(question: str, answer: str, hits: Sequence[Any], cited: Sequence[int]) -> dict[str, Any]:
    """Signals read off the answer's text: its length, how much of it merely repeats the
    question, whether it has the expected shape, and the rank and cosine of what it cites."""
    body = strip_markers(answer)
    own = content_words(body)
    asked = content_words(question)
    in_question = len(own & asked) / len(own) if own else 1.0
    first = cited[0] if cited else None
    hit = hits[first - 1] if first and 1 <= first <= len(hits) else None
    shown = set().union(*(content_words(h.chunk.text) for h in hits)) if hits else set()
    return {
        "answer_words": len(body.split()),
        "answer_in_question": round(in_question, 4),
        "answer_type_match": answer_type_match(question, body),
        "cited_rank": first,
        "cited_dense_score": round(hit.score, 4) if hit else None,
        # the question's words that the sources shown hold, and those of the sentence the
        # answer came from: a question about something the text does not say (SQuAD 2.0's
        # adversarial questions swap or add a word) leaves some out
        "question_coverage": round(len(asked & shown) / len(asked), 4) if asked else 1.0,
        "question_coverage_answer": _coverage_around(asked - own, body, hit.chunk.text) if hit else None,
    }


def _coverage_around(asked: set[str], body: str, text: str) -> float | None:
    """Share of `asked` in the sentence of `text` that holds the answer (None when the
    answer is not found verbatim in it)."""
    if not asked:
        return 1.0
    flat = " ".join(text.split())
    at = flat.find(" ".join(body.split())) if body else -1
    if at < 0:
        return None
    for s, e in sentence_spans(flat):
        if s <= at < e:
            return round(len(asked & content_words(flat[s:e])) / len(asked), 4)
    return None



def generation_signals(logprobs: Sequence[float] | None) -> dict[str, float | None]:
    """Mean, minimum and first of the answer's token log-probabilities (None when the
    generator does not give them)."""
    if not logprobs:
        return {"logprob_mean": None, "logprob_min": None, "logprob_first": None}
    return {"logprob_mean": round(sum(logprobs) / len(logprobs), 4), "logprob_min": round(min(logprobs), 4),
            "logprob_first": round(logprobs[0], 4)}


def contextual_yes(p_yes: float | None, p_yes_content_free: float | None) -> float | None:
    """P(yes) corrected by the same check with content-free sources (Zhao et al., 2021):
    divide each class's probability by its content-free probability and renormalize, so
    that with no evidence the answer sits at even odds instead of the model's bias to "yes"."""
    if p_yes is None:
        return None
    if p_yes_content_free is None:
        return p_yes
    eps = 1e-6
    cf = min(max(p_yes_content_free, eps), 1 - eps)
    yes, no = p_yes / cf, (1 - p_yes) / (1 - cf)
    return yes / (yes + no)

