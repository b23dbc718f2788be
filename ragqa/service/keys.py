"""API keys with roles, kept in the index's database (only a SHA-256 of each key; the key
itself is shown once, when made: `ragqa keys add alice --role review`).

    ask     ask questions (/v1/ask, chat completions, /v1/models), read the status, and
            follow one's own question to a person's answer (/v1/questions/{id})
    review  the question log, reviews, and answering withheld questions (/v1/reviews...,
            /v1/handoff, /v1/log)
    admin   everything: documents, jobs, certifying from reviews (/v1/calibrate)

RAGQA_API_KEY, when set, is one more key, with every role (label "api_key"). With no key
at all the API is open (the server refuses to listen beyond loopback then: ragqa.cli.serve).
A refused call says which role it lacks (403); a missing or unknown key is a 401."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import DateTime, Integer, String, delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..errors import InputError, NotFoundError
from ..index.db import Base

ROLES = ("ask", "review", "admin")
CACHE_S = 2.0  # a key removed while a server runs is refused within this
RELOAD_S = 0.25  # an unknown key makes the keys be read again, no more often than this


class KeyRow(Base):
    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    label: Mapped[str] = mapped_column(String(200), unique=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    roles: Mapped[str] = mapped_column(String(100))  # comma-separated
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Key:
    label: str
    roles: frozenset[str]

    def may(self, role: str) -> bool:
        """admin may everything; review may ask too (a reviewer asks); ask only asks."""
        return role in self.roles or "admin" in self.roles or (role == "ask" and "review" in self.roles)


def digest(key: str | bytes) -> str:
    return hashlib.sha256(key if isinstance(key, bytes) else key.encode()).hexdigest()


def check_roles(roles: list[str] | tuple[str, ...]) -> list[str]:
    roles = sorted({r.strip() for r in roles if r.strip()})
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise InputError(f"roles {', '.join(bad) or '(none)'}: use one or more of {', '.join(ROLES)}")
    return roles


class Keys:
    """The keys of one database, with the settings' own key (every role) if there is one."""

    def __init__(self, engine: Engine, settings_key: str | None = None):
        self.engine = engine
        self.settings_key = settings_key.encode() if settings_key else None
        self._lock = threading.Lock()
        self._cache: tuple[float, dict[str, Key]] | None = None

    def _ensure(self) -> None:
        KeyRow.__table__.create(self.engine, checkfirst=True)  # type: ignore[attr-defined]

    def add(self, label: str, roles: list[str] | tuple[str, ...]) -> str:
        """A new key for `label` with these roles; the key, to be shown once."""
        label = label.strip()
        if not label:
            raise InputError("a key needs a label (who or what uses it)")
        roles = check_roles(roles)
        key = "rq-" + secrets.token_urlsafe(24)
        self._ensure()
        with Session(self.engine) as s, s.begin():
            if s.scalar(select(KeyRow).where(KeyRow.label == label)) is not None:
                raise InputError(f"there is already a key labelled {label!r}: remove it first (`ragqa keys remove {label}`)")
            s.add(KeyRow(label=label, sha256=digest(key), roles=",".join(roles), created_at=dt.datetime.now(dt.timezone.utc)))
        self._cache = None
        return key

    def remove(self, label: str) -> None:
        self._ensure()
        with Session(self.engine) as s, s.begin():
            if not s.execute(delete(KeyRow).where(KeyRow.label == label)).rowcount:  # type: ignore[attr-defined]
                raise NotFoundError(f"no key labelled {label!r}")
        self._cache = None

    def list(self) -> list[dict[str, str]]:
        self._ensure()
        with Session(self.engine) as s:
            return [{"label": r.label, "roles": r.roles, "created_at": r.created_at.isoformat(timespec="seconds")}
                    for r in s.scalars(select(KeyRow).order_by(KeyRow.id))]

    def _stored(self, max_age: float = CACHE_S) -> dict[str, Key]:
        with self._lock:
            now = time.monotonic()
            if self._cache is None or now - self._cache[0] > max_age:
                self._ensure()
                with Session(self.engine) as s:
                    found = {r.sha256: Key(r.label, frozenset(r.roles.split(","))) for r in s.scalars(select(KeyRow))}
                self._cache = (now, found)
            return self._cache[1]

    def required(self) -> bool:
        """Whether any key exists: then every call but the open paths needs one."""
        return self.settings_key is not None or bool(self._stored())

    def lookup(self, token: bytes) -> Key | None:
        if self.settings_key is not None and hmac.compare_digest(token, self.settings_key):
            return Key("api_key", frozenset(ROLES))
        found = self._stored().get(digest(token))
        if found is None:  # perhaps made a moment ago: read again (at most 4 times a second)
            found = self._stored(RELOAD_S).get(digest(token))
        return found
