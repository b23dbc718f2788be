"""The rows side of an index, the record: documents and their chunks in the SQL database
(ragqa.index.db), and the filters as SQL. The vectors follow the rows (ragqa.index.vectors)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ..types import Filters
from .db import ChunkRow, DocumentRow


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def where(filters: Filters) -> tuple[str, dict[str, str | int]]:
    """SQL condition on a document row (alias `d`) for these filters, with its parameters."""
    parts: list[str] = []
    params: dict[str, str | int] = {}
    if filters.documents:
        names = ", ".join(f":doc{i}" for i in range(len(filters.documents)))
        parts.append(f"d.name IN ({names})")
        params.update({f"doc{i}": name for i, name in enumerate(filters.documents)})
    if filters.path_prefix:  # exact and case-sensitive, unlike LIKE on SQLite
        parts.append("substr(d.path, 1, :prefix_len) = :prefix")
        params.update({"prefix": filters.path_prefix, "prefix_len": len(filters.path_prefix)})
    return (" AND ".join(parts) or "1 = 1"), params


def chunk_ids(engine: Engine, filters: Filters | None = None) -> list[int]:
    """Ids of the chunks of the documents these filters allow (every chunk without filters)."""
    if filters is None:
        with Session(engine) as s:
            return list(s.scalars(select(ChunkRow.id)).all())
    condition, params = where(filters)
    sql = text(f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE {condition}")
    with engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(sql, params)]


def count_chunks(engine: Engine) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(ChunkRow)) or 0


def delete_documents(s: Session, doc_ids: Sequence[int]) -> list[int]:
    """Delete these documents and their chunks in the session's transaction; returns the
    chunk ids deleted (their vectors go with them, or once the transaction has committed)."""
    if not doc_ids:
        return []
    ids = list(s.scalars(select(ChunkRow.id).where(ChunkRow.document_id.in_(doc_ids))).all())
    s.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(doc_ids)))
    s.execute(delete(DocumentRow).where(DocumentRow.id.in_(doc_ids)))
    s.flush()
    return ids


def drop_documents_of_chunks(engine: Engine, chunk_ids: Sequence[int]) -> tuple[int, list[int]]:
    """Delete the documents that own any of these chunks (a write a crash interrupted:
    the next ingest redoes them). Returns (documents dropped, their chunk ids)."""
    with Session(engine) as s, s.begin():
        doc_ids = s.scalars(select(ChunkRow.document_id).where(ChunkRow.id.in_(list(chunk_ids))).distinct()).all()
        return len(doc_ids), delete_documents(s, doc_ids)
