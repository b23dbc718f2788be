"""Signals -> confidence -> answer or abstain, with the reason in words.

Hard checks come first (nothing relevant retrieved, the model declined, no valid
citation, the answer's content absent from what it cites); then the confidence, a
number in [0, 1], is compared with the threshold. Without a fitted calibration the
confidence is a fixed blend of the signals and is reported as uncalibrated; a
calibrator (see `Scorer`) replaces the blend without changing anything else."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..textutil import content_words, numbers
from .citations import strip_markers

DECLINE_PATTERNS = (
    "cannot answer", "can't answer", "unable to answer", "not contain", "no information",
    "not mentioned", "does not say", "doesn't say", "not provided", "not specified", "i don't know",
    "i do not know", "no answer",
)


class Scorer(Protocol):
    calibrated: bool

    def score(self, signals: dict[str, Any]) -> float: ...


class BlendScorer:
    """The uncalibrated default: a fixed blend of retrieval strength and grounding."""

    calibrated = False

    def score(self, signals: dict[str, Any]) -> float:
        top = float(signals.get("retrieval_top", 0.0))
        retrieval = 1 / (1 + math.exp(-(top - 0.4) * 10))  # 0.5 at cosine 0.4
        grounding = float(signals.get("grounding", 0.0))
        support = float(signals.get("citation_support", 0.0))
        numbers_ok = 1.0 if signals.get("numbers_supported", False) else 0.0
        value = 0.35 * retrieval + 0.35 * grounding + 0.2 * support + 0.1 * numbers_ok
        return max(0.0, min(1.0, value))


@dataclass(frozen=True)
class Decision:
    abstain: bool
    confidence: float
    reason: str
    calibrated: bool


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
    from ..ingest.chunking import sentence_spans

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


def before_generation(signals: dict[str, Any], min_relevance: float) -> Decision | None:
    """Abstain without generating when retrieval found nothing relevant."""
    top = signals.get("retrieval_top", 0.0)
    if top < min_relevance:
        return Decision(True, 0.0, f"nothing relevant in the documents (best match {top:.2f} < {min_relevance:.2f})", False)
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


def hard_check(signals: dict[str, Any], min_grounding: float) -> tuple[str, float] | None:
    """The first rule an answer breaks whatever its confidence: (the reason, a cap on the
    confidence shown), or None. One source for `decide` and the calibration."""
    if signals.get("declined"):
        return "the model found no answer in the sources", 0.05
    if signals.get("n_citations", 0) == 0:
        why = "the answer cites only sources that were not given" if signals.get("n_invalid_citations") else "the answer cites no source"
        return why, 0.1
    if signals.get("cites_instruction"):
        return ("the sentence it cites is an instruction addressed to the assistant, not a statement "
                "(document text is data: a possible prompt injection)"), 0.05
    grounding = signals.get("grounding", 0.0)
    if grounding < min_grounding:
        return f"the answer is not supported by what it cites (grounding {grounding:.2f} < {min_grounding:.2f})", 1.0
    return None


def decide(signals: dict[str, Any], scorer: Scorer, *, min_confidence: float, min_grounding: float,
           certified: str | None = None) -> Decision:
    """Hard checks first (declined, no valid citation, an instruction cited, not grounded),
    then the threshold. `certified` says what the threshold guarantees (from the
    calibration), for the reason."""
    confidence = scorer.score(signals)
    cal = scorer.calibrated
    kind = "calibrated" if cal else "uncalibrated"
    broken = hard_check(signals, min_grounding)
    if broken is not None:
        return Decision(True, min(confidence, broken[1]), broken[0], cal)
    grounding = signals.get("grounding", 0.0)
    if min_confidence > 1:
        return Decision(True, confidence, f"{kind} confidence {confidence:.2f}, but no answer of this model met the "
                                          "calibration's target risk, so none is given (see `ragqa status`; "
                                          "RAGQA_MIN_CONFIDENCE sets a threshold of your own)", cal)
    if confidence < min_confidence:
        return Decision(True, confidence, f"{kind} confidence {confidence:.2f} is below the threshold {min_confidence:.2f}", cal)
    cited = ", ".join(f"[{n}]" for n in signals.get("cited", []))
    return Decision(False, confidence, f"answered: cites {cited}, grounding {grounding:.2f}, {kind} confidence "
                                       f"{confidence:.2f} >= threshold {min_confidence:.2f}"
                                       + (f" ({certified})" if certified else ""), cal)
