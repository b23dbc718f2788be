"""Calibrations certified from reviews, kept in the index's own database (SQLite beside the
index, or the PostgreSQL database every server of the index shares), one row per attempt:
the attempt number that alpha spending counts (ragqa.review.certify), and the calibration
it produced (plain JSON). The policy uses the newest row that certified something for the
models in use (ragqa.answer.scorer.find); a failed attempt is recorded, counted, and
changes nothing else."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..answer.scorer import Calibration
from ..index.db import Base
from .certify import Outcome


class CertificateRow(Base):
    __tablename__ = "review_certificate"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    models_key: Mapped[str] = mapped_column(String(64), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    level: Mapped[float] = mapped_column(Float)
    target_risk: Mapped[float] = mapped_column(Float)
    n_reviews: Mapped[int] = mapped_column(Integer)
    certified: Mapped[bool] = mapped_column(Boolean)
    calibration: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON, None when too few reviews to fit


def models_key(models: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(models, sort_keys=True, default=str).encode()).hexdigest()[:32]


class Certificates:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            CertificateRow.__table__.create(self.engine, checkfirst=True)  # type: ignore[attr-defined]
            self._ready = True

    def attempts(self, models: dict[str, Any]) -> int:
        """How many certification attempts were made for these models."""
        self._ensure()
        with Session(self.engine) as s:
            return int(s.scalar(select(func.count()).select_from(CertificateRow)
                                .where(CertificateRow.models_key == models_key(models))) or 0)

    def record(self, outcome: Outcome, models: dict[str, Any], target_risk: float) -> None:
        self._ensure()
        cal = outcome.calibration
        with Session(self.engine) as s, s.begin():
            s.add(CertificateRow(created_at=dt.datetime.now(dt.timezone.utc), models_key=models_key(models),
                                 attempt=outcome.attempt, level=outcome.level, target_risk=target_risk,
                                 n_reviews=outcome.n_reviews, certified=outcome.certified,
                                 calibration=json.dumps(asdict(cal)) if cal is not None else None))

    def current(self, models: dict[str, Any]) -> Calibration | None:
        """The newest calibration that certified a threshold for these models, or None."""
        try:
            self._ensure()
        except Exception:  # a database that cannot be written: read what is there
            pass
        with Session(self.engine) as s:
            row = s.scalar(select(CertificateRow).where(CertificateRow.models_key == models_key(models),
                                                        CertificateRow.certified.is_(True))
                           .order_by(CertificateRow.id.desc()).limit(1))
            if row is None or row.calibration is None:
                return None
            return Calibration(**json.loads(row.calibration))

    def latest_id(self) -> int | None:
        """The newest certificate's id, any models (to notice a new one cheaply)."""
        self._ensure()
        with Session(self.engine) as s:
            return s.scalar(select(func.max(CertificateRow.id)).where(CertificateRow.certified.is_(True)))

    def history(self, models: dict[str, Any]) -> list[dict[str, Any]]:
        self._ensure()
        with Session(self.engine) as s:
            rows = s.scalars(select(CertificateRow).where(CertificateRow.models_key == models_key(models))
                             .order_by(CertificateRow.id))
            return [{"attempt": r.attempt, "level": r.level, "target_risk": r.target_risk, "n_reviews": r.n_reviews,
                     "certified": r.certified, "created_at": r.created_at.isoformat(timespec="seconds")} for r in rows]
