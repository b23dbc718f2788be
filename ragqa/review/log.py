"""The question log: every question asked, with what ragqa did about it, in the index's own
database (simonw/llm keeps every prompt and response in SQLite: the same habit).

One row per question, whatever the interface (`ragqa ask`, `ragqa chat`, the Python API,
`/v1/ask`, chat completions, the page): the question, the standalone query used for
retrieval, the sources shown (chunk ids, documents, scores, text), the draft, whether it
was given or withheld and why, the confidence and every signal, the identities of the
models, the calibration applied, the timings, the time, and who asked (a label, never an
API key). The sources are copied, not referenced, so that deleting a document leaves the
log readable. A log write that fails is a warning in the library's log: it never costs
the answer. RAGQA_QUESTION_LOG=0 turns it off; `ragqa log` lists and exports it."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..index.db import Base
from ..types import Answer

log = logging.getLogger(__name__)


class QuestionRow(Base):
    __tablename__ = "question_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    question: Mapped[str] = mapped_column(Text)
    retrieval_query: Mapped[str | None] = mapped_column(Text, nullable=True)
    answer: Mapped[str] = mapped_column(Text)  # what the asker was shown: the answer, or the abstention
    draft: Mapped[str] = mapped_column(Text, default="")
    abstained: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Float)
    calibrated: Mapped[bool] = mapped_column(Boolean)
    calibration: Mapped[str | None] = mapped_column(Text, nullable=True)  # what the confidence was scored with
    sources: Mapped[str] = mapped_column(Text)  # JSON: the sources shown, copied
    citations: Mapped[str] = mapped_column(Text)  # JSON
    signals: Mapped[str] = mapped_column(Text)  # JSON
    models: Mapped[str] = mapped_column(Text)  # JSON: generator and embedder identities
    timings: Mapped[str] = mapped_column(Text)  # JSON
    interface: Mapped[str] = mapped_column(String(32))
    asker: Mapped[str | None] = mapped_column(String(200), nullable=True)  # a label, never a key


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class QuestionLog:
    """The log in one index's database (created on first write)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            QuestionRow.__table__.create(self.engine, checkfirst=True)  # type: ignore[attr-defined]
            self._ready = True

    def record(self, answer: Answer, *, interface: str, asker: str | None, models: dict[str, Any],
               calibration: str | None) -> int | None:
        """Log one answered or withheld question; its id, or None when the write failed
        (a warning: the answer is never lost for the log's sake)."""
        d = answer.to_dict()
        sources = [{**s, "chunk_id": h.chunk.id} for s, h in zip(d["sources"], answer.sources)]
        row = QuestionRow(asked_at=_now(), question=answer.question, retrieval_query=answer.retrieval_query,
                          answer=answer.answer, draft=answer.draft, abstained=answer.abstained, reason=answer.reason,
                          confidence=float(answer.confidence), calibrated=answer.calibrated, calibration=calibration,
                          sources=json.dumps(sources), citations=json.dumps(d["citations"]),
                          signals=json.dumps(answer.signals, default=str), models=json.dumps(models, default=str),
                          timings=json.dumps(d["timings"]), interface=interface, asker=asker)
        try:
            self._ensure()
            with Session(self.engine, expire_on_commit=False) as s, s.begin():
                s.add(row)
            return row.id
        except Exception as e:  # a read-only database, a full disk, a lost connection
            log.warning("the question was answered but could not be logged: %s", e)
            return None

    def entries(self, limit: int | None = 50, *, newest_first: bool = True) -> Iterator[dict[str, Any]]:
        """Logged questions as plain dicts (JSON fields decoded)."""
        try:
            self._ensure()
        except Exception:  # a database that cannot be written: read what is there
            pass
        order = QuestionRow.id.desc() if newest_first else QuestionRow.id.asc()
        query = select(QuestionRow).order_by(order)
        if limit:
            query = query.limit(limit)
        with Session(self.engine) as s:
            for row in s.scalars(query):
                yield as_dict(row)

    def get(self, question_id: int) -> dict[str, Any] | None:
        with Session(self.engine) as s:
            row = s.get(QuestionRow, question_id)
            return as_dict(row) if row is not None else None

    def count(self) -> int:
        with Session(self.engine) as s:
            return int(s.scalar(select(func.count()).select_from(QuestionRow)) or 0)


JSON_FIELDS = ("sources", "citations", "signals", "models", "timings")


def as_dict(row: QuestionRow) -> dict[str, Any]:
    out: dict[str, Any] = {c.name: getattr(row, c.name) for c in QuestionRow.__table__.columns}
    for name in JSON_FIELDS:
        out[name] = json.loads(out[name]) if out[name] else None
    out["asked_at"] = row.asked_at.isoformat(timespec="seconds") if row.asked_at else None
    return out
