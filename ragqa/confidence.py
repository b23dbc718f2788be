"""Signals -> confidence -> answer or abstain, with the reason in words.

Hard checks come first (nothing relevant retrieved, the model declined, no valid
citation, the answer's content absent from what it cites); then the confidence, a
number in [0, 1], is compared with the threshold. Without a fitted calibration the
confidence is a fixed blend of the signals and is reported as uncalibrated; a
calibrator (see `Scorer`) replaces the blend without changing anything else."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

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


def retrieval_signals(scores: list[float]) -> dict[str, float]:
    top = scores[0] if scores else 0.0
    second = scores[1] if len(scores) > 1 else 0.0
    return {"retrieval_top": round(top, 4), "retrieval_margin": round(top - second, 4)}


def before_generation(signals: dict[str, Any], min_relevance: float) -> Decision | None:
    """Abstain without generating when retrieval found nothing relevant."""
    top = signals.get("retrieval_top", 0.0)
    if top < min_relevance:
        return Decision(True, 0.0, f"nothing relevant in the documents (best match {top:.2f} < {min_relevance:.2f})", False)
    return None


def decide(signals: dict[str, Any], scorer: Scorer, *, min_confidence: float, min_grounding: float) -> Decision:
    confidence = scorer.score(signals)
    cal = scorer.calibrated
    if signals.get("declined"):
        return Decision(True, min(confidence, 0.05), "the model found no answer in the sources", cal)
    if signals.get("n_citations", 0) == 0:
        why = "the answer cites only sources that were not given" if signals.get("n_invalid_citations") else "the answer cites no source"
        return Decision(True, min(confidence, 0.1), why, cal)
    grounding = signals.get("grounding", 0.0)
    if grounding < min_grounding:
        return Decision(True, confidence, f"the answer is not supported by what it cites (grounding {grounding:.2f} < {min_grounding:.2f})", cal)
    if confidence < min_confidence:
        return Decision(True, confidence, f"confidence {confidence:.2f} is below the threshold {min_confidence:.2f}", cal)
    cited = ", ".join(f"[{n}]" for n in signals.get("cited", []))
    return Decision(False, confidence, f"answered: cites {cited}, grounding {grounding:.2f}, confidence {confidence:.2f}", cal)
