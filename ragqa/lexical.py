"""The lexical index: BM25 over chunk texts, in the database beside the rows it indexes.

On SQLite it is an FTS5 table with external content (`chunks`), filled by triggers, so
every transaction that writes chunks writes the index too and the two cannot disagree.
An index made before the lexical table existed gets it, rebuilt from the rows, the next
time it is opened for writing. Other databases have no lexical index yet: search there
returns nothing and retrieval is dense only."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.engine import Engine

from .textutil import STOPWORDS, words

log = logging.getLogger(__name__)

TABLE = "chunks_fts"

_SQLITE_DDL = (
    f"CREATE VIRTUAL TABLE {TABLE} USING fts5(text, content='chunks', content_rowid='id', tokenize='porter unicode61')",
    f"CREATE TRIGGER IF NOT EXISTS chunks_fts_insert AFTER INSERT ON chunks BEGIN "
    f"INSERT INTO {TABLE}(rowid, text) VALUES (new.id, new.text); END",
    f"CREATE TRIGGER IF NOT EXISTS chunks_fts_delete AFTER DELETE ON chunks BEGIN "
    f"INSERT INTO {TABLE}({TABLE}, rowid, text) VALUES ('delete', old.id, old.text); END",
    f"CREATE TRIGGER IF NOT EXISTS chunks_fts_update AFTER UPDATE OF text ON chunks BEGIN "
    f"INSERT INTO {TABLE}({TABLE}, rowid, text) VALUES ('delete', old.id, old.text); "
    f"INSERT INTO {TABLE}(rowid, text) VALUES (new.id, new.text); END",
)


def available(engine: Engine) -> bool:
    if engine.dialect.name != "sqlite":
        return False
    with engine.connect() as conn:
        return conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = :n"), {"n": TABLE}).first() is not None


def ensure(engine: Engine) -> None:
    """Create the lexical index (and fill it from existing rows) if it is missing."""
    if engine.dialect.name != "sqlite" or available(engine):
        return
    with engine.begin() as conn:
        for ddl in _SQLITE_DDL:
            conn.execute(text(ddl))
        conn.execute(text(f"INSERT INTO {TABLE}({TABLE}) VALUES ('rebuild')"))
    log.info("lexical index created")


def match_query(query: str) -> str | None:
    """An FTS5 query that ORs the query's meaningful words, each quoted (no operators leak in)."""
    terms = list(dict.fromkeys(w for w in words(query) if w not in STOPWORDS and len(w) > 1))
    if not terms:
        terms = list(dict.fromkeys(words(query)))
    return " OR ".join(f'"{t}"' for t in terms) or None


def search(engine: Engine, query: str, k: int, where: tuple[str, dict] | None = None) -> list[tuple[int, float]]:
    """(chunk id, BM25 score; higher is better), best first. `where`: an SQL condition on
    the chunk's document (alias `d`) with its parameters, to search only those documents."""
    q = match_query(query)
    if q is None or k <= 0 or engine.dialect.name != "sqlite":
        return []
    if where is None:
        sql = text(f"SELECT rowid, -bm25({TABLE}) AS s FROM {TABLE} WHERE {TABLE} MATCH :q ORDER BY s DESC LIMIT :k")
        params: dict = {}
    else:
        condition, params = where
        sql = text(f"SELECT {TABLE}.rowid, -bm25({TABLE}) AS s FROM {TABLE} "
                   f"JOIN chunks c ON c.id = {TABLE}.rowid JOIN documents d ON d.id = c.document_id "
                   f"WHERE {TABLE} MATCH :q AND ({condition}) ORDER BY s DESC LIMIT :k")
    with engine.connect() as conn:
        return [(int(r[0]), float(r[1])) for r in conn.execute(sql, {"q": q, "k": k, **params})]
