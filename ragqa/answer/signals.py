"""Every signal an answer carries (`Answer.signals`), declared once: its name, what it
measures, and whether the calibrator reads it. ragqa.calibration.FEATURES is the list of
those it reads, in this order; tests/test_pipeline.py checks that an answer carries no
undeclared signal."""

from __future__ import annotations

from typing import NamedTuple


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
    "question_coverage": Signal("share of the question's words that the sources shown hold", True),
    "question_coverage_answer": Signal("the same around the sentence the answer came from", True),
    "start_probability": Signal("probability of the chosen span's start (extractive answers)", True),
    # recorded for the person and for evaluation, not read by the calibrator
    "context_tokens": Signal("model tokens of the sources shown", False),
    "n_citations": Signal("valid citations", False),
    "n_invalid_citations": Signal("citations of sources that were not given", False),
    "cited": Signal("the source numbers cited", False),
    "declined": Signal("the model said it cannot answer", False),
    "cites_instruction": Signal("a cited sentence is an instruction to the assistant (ragqa.injection)", False),
    "self_check_raw": Signal("P(yes) before the content-free correction", False),
    "self_check_content_free": Signal("P(yes) with content-free sources", False),
}

FEATURES: tuple[str, ...] = tuple(name for name, s in SIGNALS.items() if s.feature)
