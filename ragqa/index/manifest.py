"""An index's manifest: what it was built with (embedder, chunking, ragqa version) and
where its vectors are (`vectors.store`: faiss or pgvector, and their index type).

A FAISS index keeps it beside its vectors, in `<index>/manifest.json`; a pgvector index in
its database (table `index_meta`), so that machines sharing only the database find it.
`read_manifest` looks in both; each VectorStore writes its own (ragqa.index.vectors)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.engine import Engine

from .._version import __version__
from ..errors import ConfigError, IndexMismatchError, IndexNotFoundError
from ..models.embed import VECTOR_KIND
from .db import MetaRow, make_engine
from .rows import now

MANIFEST = "manifest.json"
FAISS, PGVECTOR = "faiss", "pgvector"


def new_manifest(embedder_info: dict, chunking: dict, vector_store: str, index_type: str) -> dict:
    return {
        "format": 1,
        "ragqa_version": __version__,
        "created_at": now().isoformat(timespec="seconds"),
        "embedder": embedder_info,
        "chunking": chunking,
        "vectors": vectors_entry(vector_store, index_type),
    }


def vectors_entry(store: str, index: str) -> dict:
    return {"store": store, "index" if store == PGVECTOR else "faiss": index, "metric": "inner_product"}


def vector_store_of(manifest: dict) -> str:
    """Where an index keeps its vectors (faiss for manifests that predate the choice)."""
    return manifest.get("vectors", {}).get("store") or FAISS


def read_manifest(index_dir: Path, database_url: str | None = None) -> dict | None:
    """An index's manifest, or None when there is no index there: the index folder's file
    (faiss), else, on PostgreSQL, the one kept in the database (pgvector)."""
    path = Path(index_dir) / MANIFEST
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    if not database_url or not database_url.startswith("postgresql"):
        return None
    engine = make_engine(database_url)
    try:
        return db_manifest(engine)
    finally:
        engine.dispose()


def db_manifest(engine: Engine) -> dict | None:
    """The manifest kept in the database (pgvector), or None."""
    with engine.connect() as conn:
        if not conn.execute(text("SELECT to_regclass('index_meta') IS NOT NULL")).scalar():
            return None
        found = conn.execute(select(MetaRow.value).where(MetaRow.key == "manifest")).scalar()
    return json.loads(found) if found else None


def manifest_row(manifest: dict) -> MetaRow:
    return MetaRow(key="manifest", value=json.dumps(manifest, indent=2))


def write_file(index_dir: Path, manifest: dict) -> None:
    """The folder's manifest, replaced atomically."""
    path = Path(index_dir) / MANIFEST
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def check_embedder(manifest: dict, embedder_info: dict, index_dir: Path) -> None:
    recorded = manifest.get("embedder", {})
    if recorded.get("name") != embedder_info.get("name") or int(recorded.get("dimension", -1)) != int(embedder_info["dimension"]):
        raise IndexMismatchError(
            f"the index at {index_dir} was built with embedder {recorded.get('name')!r} "
            f"({recorded.get('dimension')} dimensions), not {embedder_info.get('name')!r} "
            f"({embedder_info.get('dimension')}): use that embedder, or ingest into a new --index"
        )
    made, asked = recorded.get("backend") or "torch", embedder_info.get("backend")
    if asked and VECTOR_KIND.get(made) != VECTOR_KIND.get(asked):
        raise IndexMismatchError(
            f"the index at {index_dir} was embedded with the {made} backend ({VECTOR_KIND.get(made)} vectors); "
            f"RAGQA_EMBED_BACKEND={asked} makes {VECTOR_KIND.get(asked)} vectors, which are not mixed into it: "
            f"unset RAGQA_EMBED_BACKEND (the index's own backend is then used), or ingest into a new --index"
        )


def recorded_backend(index_dir: Path, database_url: str | None = None) -> str | None:
    """The embedding backend an existing index was built with (torch when its manifest
    predates backends), or None when there is no index yet (or none that can be read:
    opening it says why)."""
    try:
        manifest = read_manifest(index_dir, database_url)
    except Exception:
        return None
    return None if manifest is None else manifest.get("embedder", {}).get("backend") or "torch"


def no_index(index_dir: Path) -> IndexNotFoundError:
    return IndexNotFoundError(f"no index at {index_dir} (run `ragqa ingest PATH --index {index_dir}` first)")


def require_postgres(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        raise ConfigError("the pgvector vector store needs a PostgreSQL database: set RAGQA_DATABASE_URL="
                          "postgresql+psycopg://... (its server needs the pgvector extension)")
