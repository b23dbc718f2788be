"""The pgvector vector store: vectors in the index's PostgreSQL database, in a table
beside the chunks they belong to, written in the same transaction as those rows; the
index's manifest in the same database (table `index_meta`), so that servers and workers
on several machines share nothing but the database.

    chunk_vectors(chunk_id bigint PRIMARY KEY REFERENCES chunks ON DELETE CASCADE,
                  embedding vector(d))

Deleting a chunk deletes its vector in the same statement, and `add` runs inside the
transaction that inserts the chunks, so rows and vectors cannot disagree: there is no
crash repair and no vectors file to reload, and every process sees a commit at once.
None of the FAISS store's folder lock, marker or repair applies: transaction-scoped
advisory locks, one per document path, serialise the writes of one document (each
batch's few statements, not the embedding).

Vectors are unit length, so the negative inner product (`<#>`, `vector_ip_ops`) orders
by cosine. Below `hnsw_min` vectors the search is exact (a scan); from there on an HNSW
index is built (pgvector's defaults m 16, ef_construction 64) and searched with
`ef_search` candidates. Filtered searches (documents, a path prefix) are exact over the
rows the filter keeps: pgvector 0.6 applies a filter after the HNSW scan, so a filter that
keeps 1% of the rows leaves about 1% of ef_search candidates (bench/bench_pgvector.py
measures both)."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from ..errors import InputError
from ..settings import Settings
from ..types import Filters
from . import manifest as mf
from . import rows

if TYPE_CHECKING:
    import numpy as np

    from .vectors import VectorOptions

log = logging.getLogger(__name__)

TABLE = "chunk_vectors"
HNSW_INDEX = "chunk_vectors_hnsw"
# the defaults are Settings' (hnsw_min_vectors; ef_search 400: R@10 0.965 at 1M MiniLM-shaped
# vectors, p50 18 ms, where 200 gave 0.943-0.956, bench/bench_pgvector.py)
HNSW_MIN_VECTORS: int = Settings.hnsw_min_vectors
EF_SEARCH: int = Settings.ef_search
EXACT, HNSW = "exact", "hnsw"
# the HNSW build's graph must fit in maintenance_work_mem, or the build slows down many times
BUILD_MEMORY_MAX_MB = 4096
# one index per database: the key of the lock that serialises index builds and migrations,
# and the first half of the keys that serialise writes of one document path
WRITE_LOCK_KEY = zlib.crc32(b"ragqa pgvector writes")
PATH_LOCK_SPACE = zlib.crc32(b"ragqa document path") - 2**31
SETUP_LOCK_KEY = zlib.crc32(b"ragqa pgvector setup")
_HAS_HNSW = f"SELECT to_regclass('{HNSW_INDEX}') IS NOT NULL"
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8


def vector_literal(v: "np.ndarray") -> str:
    return "[" + ",".join(f"{x:.8g}" for x in v.reshape(-1).tolist()) + "]"


def _row_type(d: int) -> "np.dtype":
    """One (chunk_id, embedding) row of PostgreSQL's binary COPY format, pgvector's
    `vector_send` layout (int16 dimension, int16 unused, float4 values), big-endian."""
    import numpy as np

    return np.dtype([("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("vec_len", ">i4"),
                     ("dim", ">i2"), ("unused", ">i2"), ("v", ">f4", (d,))])


def _copy_buffer(ids: "np.ndarray", vectors: "np.ndarray") -> bytes:
    """ids and vectors as one binary COPY stream, built by numpy (no per-row Python)."""
    import numpy as np

    d = vectors.shape[1]
    rows = np.zeros(len(ids), _row_type(d))
    rows["fields"], rows["id_len"], rows["vec_len"], rows["dim"] = 2, 8, 4 + 4 * d, d
    rows["id"], rows["v"] = ids, vectors
    return _COPY_HEADER + rows.tobytes() + b"\xff\xff"


def _read_copy(data: bytes, d: int) -> tuple["np.ndarray", "np.ndarray"]:
    import numpy as np

    if not data.startswith(_COPY_HEADER):
        raise ValueError("not a binary COPY stream")
    rows = np.frombuffer(data[len(_COPY_HEADER):len(data) - 2], _row_type(d))
    return rows["id"].astype(np.int64), rows["v"].astype(np.float32)


def lock_writes(session: "Session") -> None:
    """Serialise this transaction with every other that takes this lock (released at commit)."""
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})


def lock_paths(session: "Session", paths: Sequence[str]) -> None:
    """Serialise this transaction with the others writing any of these document paths (two
    writers replacing one document would otherwise both delete the old rows and collide on
    the new); writes of other documents, and their HNSW inserts, go on at once. Taken in
    one order (sorted keys), so two transactions never wait for each other."""
    keys = sorted({zlib.crc32(p.encode("utf-8")) - 2**31 for p in paths})
    if keys:
        session.execute(text("SELECT count(*) FROM (SELECT pg_advisory_xact_lock(:space, k) "
                             "FROM unnest(CAST(:keys AS integer[])) AS k) AS locked"),
                        {"space": PATH_LOCK_SPACE, "keys": keys})


@contextmanager
def setup_lock(engine: Engine) -> Iterator[None]:
    """One process at a time creates the tables and the manifest: two workers starting on a
    new index at once would otherwise race in CREATE ... IF NOT EXISTS (which is not atomic
    in PostgreSQL) and write two manifests."""
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": SETUP_LOCK_KEY})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SETUP_LOCK_KEY})
            conn.commit()


def build_memory_mb(n: int, d: int) -> int:
    """maintenance_work_mem for an HNSW build of n vectors: the whole graph (per element its
    vector, 4d bytes, about 32 neighbour links at layer 0 and a header) and a quarter more,
    between PostgreSQL's default 64 MB and BUILD_MEMORY_MAX_MB."""
    per_element = 4 * d + 32 * 6 + 200
    return int(min(max(64, n * per_element * 1.25 / 2**20), BUILD_MEMORY_MAX_MB))


def ensure(engine: Engine, dimension: int) -> None:
    """The extension and the table (idempotent; run by writers, after the chunks table exists)."""
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS {TABLE} (chunk_id bigint PRIMARY KEY "
                          f"REFERENCES chunks (id) ON DELETE CASCADE, embedding vector({int(dimension)}) NOT NULL)"))


def copy_in(session: Session, ids: "np.ndarray", vectors: "np.ndarray | None") -> None:
    """Insert by binary COPY, in the session's transaction (the one that inserts their chunks)."""
    import numpy as np

    if len(ids) == 0 or vectors is None:
        return
    buffer = _copy_buffer(np.asarray(ids, dtype=np.int64), np.asarray(vectors, dtype=np.float32))
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(f"COPY {TABLE} (chunk_id, embedding) FROM STDIN WITH (FORMAT binary)") as copy:
        for start in range(0, len(buffer), 1 << 24):
            copy.write(buffer[start:start + (1 << 24)])


class PgVectorStore:
    """The VectorStore of ragqa.index.vectors on a PostgreSQL table."""

    name = mf.PGVECTOR
    dirty = False  # written in the rows' transaction: nothing to save

    def __init__(self, engine: Engine, manifest: dict, options: "VectorOptions", index_dir: Path | None = None):
        self.engine, self.manifest, self.index_dir = engine, manifest, index_dir
        self.dimension = int(manifest["embedder"]["dimension"])
        self.ef_search, self.hnsw_min = options.ef_search, options.hnsw_min_vectors
        # every connection starts with this ef_search, so that a search is one round trip
        # (autocommit, no SET LOCAL in a transaction): 0.5 ms less per question
        event.listen(engine, "connect", self._on_connect)

    # --- opening (no folder lock: the transactions serialise the writes) ---------------

    def open_writer(self, create_tables: Callable[[], None]) -> None:
        """Tables and manifest under the setup lock. The manifest another process recorded
        first wins (two workers may start a new index at once); otherwise this one is recorded."""
        with setup_lock(self.engine):
            create_tables()
            ensure(self.engine, self.dimension)
            found = mf.db_manifest(self.engine)
            if found is not None and mf.vector_store_of(found) == mf.PGVECTOR:
                mf.check_embedder(found, self.manifest["embedder"], self.index_dir or Path("."))
                self.manifest.clear()
                self.manifest.update(found)
            self.write_manifest()

    def write_manifest(self, session: Session | None = None) -> None:
        if session is not None:
            session.merge(mf.manifest_row(self.manifest))
            return
        with Session(self.engine) as s, s.begin():
            s.merge(mf.manifest_row(self.manifest))

    def load(self) -> None:
        """Nothing to load: every search reads the table."""

    def begin_writes(self, hold: bool) -> None:
        """Nothing to repair, and no lock to hold."""

    @contextmanager
    def writing(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        """Nothing held."""

    # --- writing (inside the rows' transaction) ----------------------------------------

    def lock(self, session: Session, paths: Sequence[str]) -> None:
        lock_paths(session, paths)

    def insert(self, session: Session, ids: "np.ndarray", vectors: "np.ndarray | None") -> None:
        copy_in(session, ids, vectors)

    def committed(self, removed: Iterable[int], ids: "np.ndarray", vectors: "np.ndarray | None") -> None:
        """Done already: the vectors went in (and out, ON DELETE CASCADE) with their rows."""

    def save(self) -> None:
        """Nothing to save; the HNSW index is built once the collection is large enough."""
        if self.adapt():
            log.info("vectors now in %s", self.describe())

    def reindex(self, kind: str, nlist: int = 0) -> str:
        """hnsw, flat (exact: no ANN index) or auto (what the size calls for)."""
        if kind == "ivf":
            raise InputError("pgvector indexes are hnsw or flat (exact); ivf is for FAISS")
        if kind == "auto":
            kind = HNSW if len(self) >= self.hnsw_min else EXACT
        self.rebuild(EXACT if kind == "flat" else kind)
        return self.describe()

    def sizes(self) -> dict[str, int]:
        return {f"{TABLE} (in the database)": self.bytes_used()}

    def _on_connect(self, dbapi_conn, _record) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET hnsw.ef_search = {int(self.ef_search)}")
        dbapi_conn.commit()

    # --- what is there -----------------------------------------------------------

    def _scalar(self, sql: str, **params):
        try:
            with self.engine.connect() as conn:
                return conn.execute(text(sql), params).scalar()
        except Exception:  # no table yet (an index never written): nothing there
            return None

    def __len__(self) -> int:
        return int(self._scalar(f"SELECT count(*) FROM {TABLE}") or 0)

    @property
    def kind(self) -> str:
        return HNSW if self._scalar(_HAS_HNSW) else EXACT

    def describe(self) -> str:
        if self.kind == HNSW:
            return f"pgvector HNSW (m 16, ef_construction 64, ef_search {self.ef_search})"
        return "pgvector exact"

    def bytes_used(self) -> int:
        return int(self._scalar(f"SELECT pg_total_relation_size('{TABLE}')") or 0)

    def ids(self) -> set[int]:
        with self.engine.connect() as conn:
            return {int(r[0]) for r in conn.execute(text(f"SELECT chunk_id FROM {TABLE}"))}

    def vectors(self, ids: "np.ndarray | Sequence[int]") -> "np.ndarray":
        """The stored vectors of these ids, in their order."""
        import numpy as np

        wanted = [int(i) for i in ids]
        if not wanted:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self.engine.connect() as conn:
            found: dict[int, list[float]] = {
                int(i): v for i, v in conn.execute(text(f"SELECT chunk_id, embedding::real[] FROM {TABLE} "
                                                        f"WHERE chunk_id = ANY(:ids)"), {"ids": wanted})}
        return np.asarray([found[i] for i in wanted], dtype=np.float32)

    # --- writing (inside the caller's transaction) --------------------------------

    def dump(self) -> tuple["np.ndarray", "np.ndarray"]:
        """Every id and vector, by binary COPY."""
        raw = self.engine.raw_connection()
        try:
            assert raw.driver_connection is not None
            with raw.driver_connection.cursor() as cur, cur.copy(f"COPY {TABLE} (chunk_id, embedding) TO STDOUT WITH (FORMAT binary)") as copy:
                data = b"".join(bytes(block) for block in copy)
            raw.commit()
        finally:
            raw.close()
        return _read_copy(data, self.dimension)

    def adapt(self, min_vectors: int | None = None) -> bool:
        """Build the HNSW index once the collection reaches hnsw_min vectors. True when built."""
        if self.kind == EXACT and len(self) >= (self.hnsw_min if min_vectors is None else min_vectors):
            return self.rebuild(HNSW, keep=True)
        return False

    def rebuild(self, kind: str, keep: bool = False) -> bool:
        """hnsw: (re)build the HNSW index over every row (keep: unless another writer has
        built it meanwhile); exact: drop it (scans only). True when it changed anything."""
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": WRITE_LOCK_KEY})
            if keep and conn.execute(text(_HAS_HNSW)).scalar():
                return False
            conn.execute(text(f"DROP INDEX IF EXISTS {HNSW_INDEX}"))
            if kind == HNSW:
                n = conn.execute(text(f"SELECT count(*) FROM {TABLE}")).scalar() or 0
                conn.execute(text(f"SET LOCAL maintenance_work_mem = '{build_memory_mb(n, self.dimension)}MB'"))
                conn.execute(text(f"CREATE INDEX {HNSW_INDEX} ON {TABLE} USING hnsw (embedding vector_ip_ops)"))
            elif kind != EXACT:
                raise ValueError(f"unknown index kind {kind!r}")
        return True

    # --- reading -----------------------------------------------------------------

    def search(self, query: "np.ndarray", k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """The k nearest (id, cosine), best first; filters (SQL on the document row beside
        the vectors) restrict them, scored exactly."""
        if k <= 0:
            return []
        where = rows.where(filters) if filters else None
        params = {"q": vector_literal(query), "k": int(k)}
        if where is None:
            sql = f"SELECT chunk_id, -(embedding <#> CAST(:q AS vector)) FROM {TABLE} " \
                  f"ORDER BY embedding <#> CAST(:q AS vector) LIMIT :k"
        else:
            condition, extra = where
            params.update(extra)
            # `+ 0`: an expression the HNSW index does not serve, so the filtered rows are all scored
            sql = f"SELECT v.chunk_id, -(v.embedding <#> CAST(:q AS vector)) FROM {TABLE} v " \
                  f"JOIN chunks c ON c.id = v.chunk_id JOIN documents d ON d.id = c.document_id " \
                  f"WHERE {condition} ORDER BY (v.embedding <#> CAST(:q AS vector)) + 0 LIMIT :k"
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                if k > self.ef_search:  # an HNSW scan returns at most ef_search rows
                    self._set_ef(conn, k)
                try:
                    return [(int(i), float(s)) for i, s in conn.execute(text(sql), params)]
                finally:
                    if k > self.ef_search:
                        self._set_ef(conn, self.ef_search)
        except Exception:
            if not self._table_exists():  # an index never written
                return []
            raise

    @staticmethod
    def _set_ef(conn: Connection, ef: int) -> None:
        conn.execute(text("SELECT set_config('hnsw.ef_search', :ef, false)"), {"ef": str(ef)})

    def _table_exists(self) -> bool:
        return bool(self._scalar("SELECT to_regclass(:t) IS NOT NULL", t=TABLE))

    def similarity(self, query: "np.ndarray", ids: Iterable[int]) -> dict[int, float]:
        """Inner product (cosine) of the query with the stored vectors of these ids."""
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(text(f"SELECT chunk_id, -(embedding <#> CAST(:q AS vector)) FROM {TABLE} "
                                     f"WHERE chunk_id = ANY(:ids)"), {"q": vector_literal(query), "ids": ids})
            return {int(i): float(s) for i, s in rows}
