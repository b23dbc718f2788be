"""Reviews: a person's verdict on a logged question, in the index's own database beside the
question log (ragqa.review.log), and the hand-off of withheld questions to a person.

A verdict is one of
    right         the draft is right
    wrong         the draft is wrong (the person may type the right answer)
    unanswerable  the documents do not answer this question (any draft is wrong)
    answer        the person typed the right answer; the draft is right when it matches it
                  (ragqa.evaluation.metrics.is_right, the rule `ragqa eval` scores with)

Which questions are reviewed matters for the guarantee: the reviews a threshold is
certified on must be exchangeable with the questions it will decide. So each review says
how its question was chosen (`how`):
    random  drawn uniformly at random from the unreviewed log (`ragqa review`, the page,
            GET /v1/reviews/next): counts for certification
    file    a label from a file of labelled questions (`ragqa review --labels`), matched
            by question: counts (the file is assumed not chosen by looking at the answers)
    chosen  picked by a person (a withheld question answered from the hand-off queue, a
            question reviewed by its id): kept out of certification, because withheld
            questions are the least confident ones and would bias the sample

The hand-off queue is every withheld question that no person has answered yet, oldest
first. A person's answer is returned to whoever asks about that question (by its log id),
and reused when the same question (same words, ignoring case and punctuation) is asked
again of the same index."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, DateTime, Integer, String, Text, delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..errors import InputError, NotFoundError
from ..evaluation.metrics import is_right
from ..index.db import Base
from ..textutil import normalize_answer
from .log import QuestionLog, QuestionRow, as_dict

VERDICTS = ("right", "wrong", "unanswerable", "answer")
HOWS = ("random", "file", "chosen")
CERTIFYING = ("random", "file")  # the ways of choosing whose reviews may certify
SETTLING = ("right", "answer", "unanswerable")  # verdicts that say what the answer is


class ReviewRow(Base):
    __tablename__ = "question_review"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    question_id: Mapped[int] = mapped_column(Integer, unique=True, index=True)  # question_log.id
    question_key: Mapped[str] = mapped_column(Text, index=True)  # the question's words, normalized: for reuse
    verdict: Mapped[str] = mapped_column(String(16))
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)  # the right answer, when the person gave one
    right: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # was the draft right (None: there was none)
    how: Mapped[str] = mapped_column(String(16))
    reviewer: Mapped[str | None] = mapped_column(String(200), nullable=True)  # a label, never a key
    reviewed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


def question_key(question: str) -> str:
    return normalize_answer(question)


def draft_right(verdict: str, draft: str, answer: str | None) -> bool | None:
    """Whether the draft was right, by the verdict (None when there was no draft)."""
    if not draft.strip():
        return None
    if verdict == "right":
        return True
    if verdict == "answer":
        return is_right(draft, [answer or ""])
    return False


class Reviews:
    """Reviews and the hand-off queue over one index's question log."""

    def __init__(self, qlog: QuestionLog):
        self.log = qlog
        self.engine: Engine = qlog.engine
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            self.log._ensure()
            ReviewRow.__table__.create(self.engine, checkfirst=True)  # type: ignore[attr-defined]
            self._ready = True

    # --- choosing what to review -----------------------------------------------------

    def next_random(self, rng: random.Random | None = None, exclude: Sequence[int] = ()) -> dict[str, Any] | None:
        """A logged question with a draft and no review, drawn uniformly at random (None
        when every one is reviewed, or excluded: skipped in this session). The draw never
        looks at the confidence or the verdict."""
        self._ensure()
        with Session(self.engine) as s:
            reviewed = select(ReviewRow.question_id)
            skip = set(exclude)
            ids = [i for i in s.scalars(select(QuestionRow.id).where(QuestionRow.draft != "", QuestionRow.id.not_in(reviewed)))
                   if i not in skip]
            if not ids:
                return None
            row = s.get(QuestionRow, (rng or random.SystemRandom()).choice(ids))
            return as_dict(row) if row is not None else None

    def unreviewed(self) -> int:
        self._ensure()
        with Session(self.engine) as s:
            reviewed = select(ReviewRow.question_id)
            return int(s.scalar(select(func.count()).select_from(QuestionRow)
                                .where(QuestionRow.draft != "", QuestionRow.id.not_in(reviewed))) or 0)

    # --- recording -------------------------------------------------------------------

    def record(self, question_id: int, verdict: str, *, answer: str | None = None, how: str = "chosen",
               reviewer: str | None = None) -> dict[str, Any]:
        """Record the verdict on a logged question, replacing any earlier one: one review a
        question, the later wins (two people at once included); the review as a dict."""
        if verdict not in VERDICTS:
            raise InputError(f"verdict {verdict!r}: use one of {', '.join(VERDICTS)}")
        if how not in HOWS:
            raise InputError(f"how {how!r}: use one of {', '.join(HOWS)}")
        answer = (answer or "").strip() or None
        if verdict == "answer" and not answer:
            raise InputError("the verdict 'answer' needs the right answer")
        self._ensure()
        for _ in range(4):
            try:
                return self._replace(question_id, verdict, answer, how, reviewer)
            except IntegrityError:
                # another person's review of the same question committed between our delete and
                # our insert: ours is the later one, so it replaces theirs (one review a question)
                continue
        return self._replace(question_id, verdict, answer, how, reviewer)

    def _replace(self, question_id: int, verdict: str, answer: str | None, how: str, reviewer: str | None) -> dict[str, Any]:
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            q = s.get(QuestionRow, question_id)
            if q is None:
                raise NotFoundError(f"no logged question {question_id}: it may have been deleted; nothing was recorded")
            s.execute(delete(ReviewRow).where(ReviewRow.question_id == question_id))
            row = ReviewRow(question_id=question_id, question_key=question_key(q.question), verdict=verdict,
                            answer=answer, right=draft_right(verdict, q.draft, answer), how=how, reviewer=reviewer,
                            reviewed_at=dt.datetime.now(dt.timezone.utc))
            s.add(row)
        return review_dict(row)

    def apply_labels(self, labels: Sequence[dict[str, Any]], *, reviewer: str | None = None) -> dict[str, int]:
        """Labels in `ragqa eval`'s format ({"question", "answers", "answerable"}), matched to
        logged questions by their words; every logged asking of a labelled question gets the
        review (how="file"). Returns counts: labels, matched questions, labels matching none."""
        by_key: dict[str, dict[str, Any]] = {}
        for i, lab in enumerate(labels, 1):
            if not isinstance(lab, dict) or not str(lab.get("question", "")).strip():
                raise InputError(f"label {i}: needs a question")
            by_key[question_key(str(lab["question"]))] = lab
        self._ensure()
        with Session(self.engine) as s:
            logged = [(row.id, question_key(row.question)) for row in s.scalars(select(QuestionRow))]
        matched, used = 0, set()
        for qid, key in logged:
            label = by_key.get(key)
            if label is None:
                continue
            golds = [str(a) for a in label.get("answers") or [] if str(a).strip()]
            if golds and label.get("answerable", True):
                self.record(qid, "answer", answer=golds[0], how="file", reviewer=reviewer)
                self._widen(qid, golds)
            else:
                self.record(qid, "unanswerable", how="file", reviewer=reviewer)
            matched += 1
            used.add(key)
        return {"labels": len(by_key), "matched": matched, "unmatched": len(set(by_key) - used)}

    def _widen(self, question_id: int, golds: list[str]) -> None:
        """With several gold answers, the draft is right when it matches any of them."""
        with Session(self.engine) as s, s.begin():
            row = s.scalar(select(ReviewRow).where(ReviewRow.question_id == question_id))
            q = s.get(QuestionRow, question_id)
            if row is not None and q is not None and q.draft.strip():
                row.right = is_right(q.draft, golds)

    # --- reading ---------------------------------------------------------------------

    def of(self, question_id: int) -> dict[str, Any] | None:
        self._ensure()
        with Session(self.engine) as s:
            row = s.scalar(select(ReviewRow).where(ReviewRow.question_id == question_id))
            return review_dict(row) if row is not None else None

    def labelled(self, models: dict[str, Any] | None = None, hows: Sequence[str] = CERTIFYING) -> list[dict[str, Any]]:
        """Reviewed questions with a draft, as calibration rows ({"id", "signals", "right",
        "how"}), oldest first; only those drafted by these models when `models` is given."""
        self._ensure()
        out = []
        with Session(self.engine) as s:
            query = (select(QuestionRow, ReviewRow).join(ReviewRow, ReviewRow.question_id == QuestionRow.id)
                     .where(ReviewRow.how.in_(list(hows)), ReviewRow.right.is_not(None)).order_by(QuestionRow.id))
            for q, r in s.execute(query):
                entry: dict[str, Any] = as_dict(q)
                if models is not None and not same_models(entry["models"] or {}, models):
                    continue
                out.append({"id": q.id, "signals": entry["signals"] or {}, "right": bool(r.right), "how": r.how,
                            "reviewed_at": r.reviewed_at})
        return out

    def counts(self) -> dict[str, int]:
        self._ensure()
        with Session(self.engine) as s:
            by = dict(s.execute(select(ReviewRow.how, func.count()).group_by(ReviewRow.how)).all())
        return {how: int(by.get(how, 0)) for how in HOWS}

    # --- the hand-off ----------------------------------------------------------------

    def handoff(self, limit: int | None = 50) -> list[dict[str, Any]]:
        """Withheld questions no person has settled yet (answered, confirmed the draft, or
        found unanswerable from the documents), oldest first."""
        self._ensure()
        settled = select(ReviewRow.question_id).where(ReviewRow.verdict.in_(SETTLING))
        query = (select(QuestionRow).where(QuestionRow.abstained.is_(True), QuestionRow.id.not_in(settled))
                 .order_by(QuestionRow.id))
        if limit:
            query = query.limit(limit)
        with Session(self.engine) as s:
            return [as_dict(row) for row in s.scalars(query)]

    def handoff_count(self) -> int:
        self._ensure()
        settled = select(ReviewRow.question_id).where(ReviewRow.verdict.in_(SETTLING))
        with Session(self.engine) as s:
            return int(s.scalar(select(func.count()).select_from(QuestionRow)
                                .where(QuestionRow.abstained.is_(True), QuestionRow.id.not_in(settled))) or 0)

    def person_answer(self, question: str) -> dict[str, Any] | None:
        """The latest review of this question (same words) that says what its answer is:
        a person's answer, a draft a person found right, or 'the documents do not answer
        this'. None when no person has settled it."""
        self._ensure()
        key = question_key(question)
        with Session(self.engine) as s:
            query = (select(ReviewRow, QuestionRow).join(QuestionRow, QuestionRow.id == ReviewRow.question_id)
                     .where(ReviewRow.question_key == key, ReviewRow.verdict.in_(SETTLING))
                     .order_by(ReviewRow.reviewed_at.desc()))
            for r, q in s.execute(query):
                out = review_dict(r)
                out["answer"] = r.answer if r.verdict == "answer" else (q.draft if r.verdict == "right" else None)
                return out
        return None


def same_models(logged: dict[str, Any], models: dict[str, Any]) -> bool:
    """The question was drafted by these models (generator and embedder identities agree on
    every key both have)."""
    for role in ("generator", "embedder"):
        mine, theirs = logged.get(role) or {}, models.get(role) or {}
        if any(k in theirs and mine[k] != theirs[k] for k in mine):
            return False
    return True


def review_dict(row: ReviewRow) -> dict[str, Any]:
    return {"question_id": row.question_id, "verdict": row.verdict, "answer": row.answer, "right": row.right,
            "how": row.how, "reviewer": row.reviewer,
            "reviewed_at": row.reviewed_at.isoformat(timespec="seconds") if row.reviewed_at else None}
