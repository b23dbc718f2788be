"""The review desk of one index: what the CLI (`ragqa review`, `ragqa calibrate --reviews`),
the page and the HTTP API call to bring a person in. It joins the question log
(ragqa.review.log), the reviews and hand-off (ragqa.review.reviews), and the certificates
from reviews (ragqa.review.certify, ragqa.review.certificates)."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

from ..answer.prompts import ABSTAIN_TEXT
from ..answer.scorer import shipped
from ..errors import NotFoundError
from ..types import Answer
from .certificates import Certificates
from .certify import Outcome, certify, parts
from .log import QuestionLog
from .reviews import Reviews

log = logging.getLogger(__name__)


class Desk:
    def __init__(self, qlog: QuestionLog, models: Callable[[], dict[str, Any]]):
        self.log = qlog
        self.reviews = Reviews(qlog)
        self.certificates = Certificates(qlog.engine)
        self._models = models

    # --- reviewing -------------------------------------------------------------------

    def next(self, rng: random.Random | None = None, exclude: Sequence[int] = ()) -> dict[str, Any] | None:
        """The next question to review: drawn at random from the unreviewed log (with its
        review, if a person gives one, counted for certification as `random`)."""
        return self.reviews.next_random(rng, exclude)

    def record(self, question_id: int, verdict: str, *, answer: str | None = None, how: str = "chosen",
               reviewer: str | None = None) -> dict[str, Any]:
        return self.reviews.record(question_id, verdict, answer=answer, how=how, reviewer=reviewer)

    def apply_labels(self, labels: Sequence[dict[str, Any]], *, reviewer: str | None = None) -> dict[str, int]:
        return self.reviews.apply_labels(labels, reviewer=reviewer)

    def question(self, question_id: int) -> dict[str, Any]:
        """A logged question with its review and, if withheld, whether a person has answered it."""
        entry = self.log.get(question_id)
        if entry is None:
            raise NotFoundError(f"no logged question {question_id}")
        entry["review"] = self.reviews.of(question_id)
        entry["person_answer"] = self.reviews.person_answer(entry["question"]) if entry["abstained"] else None
        return entry

    def handoff(self, limit: int | None = 50) -> list[dict[str, Any]]:
        return self.reviews.handoff(limit)

    # --- certifying ------------------------------------------------------------------

    def progress(self) -> dict[str, Any]:
        """What there is to certify with, for the models in use."""
        models = self._models()
        rows = self.reviews.labelled(models)
        fitting, testing = parts(rows, shipped(models))
        return {"reviews_for_these_models": len(rows), "wrong": sum(not r["right"] for r in rows),
                "fitting": len(fitting), "testing": len(testing),
                "by_how": self.reviews.counts(), "unreviewed": self.reviews.unreviewed(),
                "handoff_open": self.reviews.handoff_count(), "attempts": self.certificates.history(models)}

    def certify(self, *, target_risk: float, delta: float, min_grounding: float, use_prior: bool = True) -> Outcome:
        """Fit and certify from this model's reviews (ragqa.review.certify); every attempt
        that tests is recorded (alpha spending counts it) and one that certifies is used
        from the next question on."""
        models = self._models()
        rows = self.reviews.labelled(models)
        attempt = self.certificates.attempts(models) + 1
        outcome = certify(rows, target_risk=target_risk, delta=delta, attempt=attempt, models=models,
                          min_grounding=min_grounding, prior=shipped(models) if use_prior else None)
        if outcome.calibration is not None:  # a test was made: it spends its level
            self.certificates.record(outcome, models, target_risk)
        return outcome

    # --- a person's answer, reused -----------------------------------------------------

    def reuse(self, question: str) -> Answer | None:
        """The answer a person gave to this same question, as an Answer, or None."""
        try:
            found = self.reviews.person_answer(question)
        except Exception as e:  # an unreadable log never costs the answer: ragqa drafts one instead
            log.warning("cannot look for a person's answer: %s", e)
            return None
        if found is None:
            return None
        who = f" ({found['reviewer']})" if found.get("reviewer") else ""
        when = (found.get("reviewed_at") or "")[:10]
        if found["verdict"] == "unanswerable":
            return Answer(question=question, answer=ABSTAIN_TEXT, abstained=True, confidence=0.0, answered_by="person",
                          reason=f"a person{who} reviewed this question on {when} and found that the documents do not answer it")
        return Answer(question=question, answer=found["answer"] or "", abstained=False, confidence=1.0, answered_by="person",
                      reason=f"answered by a person{who} on {when}, when this question was asked before (ragqa did not draft it)")
