"""A person in the loop over HTTP (ragqa.review.desk), each route a thin call:

    GET  /v1/questions/{id}     a logged question and, once a person has answered it, their
                                answer (the asker follows a withheld question here)     role ask
    GET  /v1/log                the question log, newest first                          role review
    GET  /v1/reviews/next       a logged answer drawn at random from the unreviewed ones role review
    POST /v1/reviews            {"question_id", "verdict", "answer"?, "drawn"?}          role review
    GET  /v1/reviews/progress   what there is to certify with                           role review
    GET  /v1/handoff            withheld questions no person has answered yet           role review
    POST /v1/calibrate          {"target_risk", "delta"?, "prior"?}: certify from reviews role admin

A review is counted for certification only when its question was drawn at random
(`"drawn": true`, what /v1/reviews/next gives) — see ragqa.review.reviews."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError, NotFoundError
from ..review.reviews import VERDICTS
from .guard import caller, needs
from .routes import Svc, asker

question_routes = APIRouter(dependencies=[needs("ask")])
review_routes = APIRouter(dependencies=[needs("review")])
certify_routes = APIRouter(dependencies=[needs("admin")])


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question_id: int = Field(ge=1)
    verdict: Literal["right", "wrong", "unanswerable", "answer"] = Field(description=" | ".join(VERDICTS))
    answer: str | None = Field(None, max_length=4000, description="the right answer (needed with verdict 'answer')")
    drawn: bool = Field(False, description="the question was drawn at random for this server's reviewers "
                                           "(/v1/reviews/next): the review counts for certification")


class CalibrateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_risk: float = Field(0.1, gt=0, lt=1)
    delta: float = Field(0.1, gt=0, lt=1)
    prior: bool = True


@question_routes.get("/v1/questions/{question_id}")
def question(service: Svc, question_id: int, request: Request) -> dict[str, Any]:
    """A question and, once a person has answered it, their answer. A key with only the ask
    role sees only the questions asked with it (another asker's is "not found", as if absent)."""
    with service.admin_lock:
        entry = service.admin.reviews.question(question_id)
    key = caller(request)
    if key is not None and not key.may("review") and entry.get("asker") != key.label:
        raise NotFoundError(f"no logged question {question_id} asked with the key {key.label!r}")
    keep = ("id", "asked_at", "question", "answer", "draft", "abstained", "reason", "confidence", "review", "person_answer")
    return {k: entry.get(k) for k in keep}


@review_routes.get("/v1/log")
def question_log(service: Svc, limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
    with service.admin_lock:
        return {"questions": list(service.admin.question_log.entries(limit))}


@review_routes.get("/v1/reviews/next")
def next_review(service: Svc) -> dict[str, Any]:
    with service.admin_lock:
        desk = service.admin.reviews
        drawn = desk.next()
        if drawn is not None:
            service.drawn.add(drawn["id"])
        return {"question": drawn, "unreviewed": desk.reviews.unreviewed()}


@review_routes.post("/v1/reviews")
def add_review(service: Svc, req: ReviewRequest, request: Request) -> dict[str, Any]:
    with service.admin_lock:
        if req.drawn and req.question_id not in service.drawn:
            raise InputError(f"question {req.question_id} was not drawn at random here (GET /v1/reviews/next): "
                             f"send it without 'drawn'; it is then kept out of certification")
        review = service.admin.reviews.record(req.question_id, req.verdict, answer=req.answer,
                                              how="random" if req.drawn else "chosen", reviewer=asker(request))
        service.drawn.discard(req.question_id)
        return review


@review_routes.get("/v1/reviews/progress")
def progress(service: Svc) -> dict[str, Any]:
    with service.admin_lock:
        return service.admin.reviews.progress()


@review_routes.get("/v1/handoff")
def handoff(service: Svc, limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
    with service.admin_lock:
        return {"questions": service.admin.reviews.handoff(limit)}


@certify_routes.post("/v1/calibrate")
def calibrate(service: Svc, req: CalibrateRequest) -> dict[str, Any]:
    with service.admin_lock:
        admin = service.admin
        outcome = admin.reviews.certify(target_risk=req.target_risk, delta=req.delta,
                                        min_grounding=admin.settings.min_grounding, use_prior=req.prior)
        summary = admin.refresh_policy().summary()
    return {"certified": outcome.certified, "message": outcome.message, "more_reviews": outcome.more,
            "attempt": outcome.attempt, "level": outcome.level, "reviews": outcome.n_reviews, "in_use": summary}


ROUTERS = (question_routes, review_routes, certify_routes)
