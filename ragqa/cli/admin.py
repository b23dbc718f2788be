"""`ragqa status`, `ragqa reindex`, `ragqa migrate-vectors` and `ragqa keys`: looking after an index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .common import IndexOpt, app, console, err, open_rag

if TYPE_CHECKING:
    from ..service.keys import Keys


@app.command()
def status(
    index: IndexOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Documents, chunks, vectors, models and sizes on disk of an index."""
    from rich.table import Table

    with open_rag(index) as rag:
        info = rag.status()
    if json_out:
        console.print_json(json.dumps(info))
        return
    table = Table(title=f"Index {info['index']}", show_header=False)
    for key in ("documents", "chunks", "vectors", "vector_store", "vector_index", "database", "model", "calibration", "created_at", "ragqa_version"):
        table.add_row(key, str(info[key]))
    people = info.get("people") or {}
    if "reviews" in people:
        table.add_row("people", f"{people['questions_logged']} questions logged; reviews: "
                                f"{', '.join(f'{v} {k}' for k, v in people['reviews'].items())}; "
                                f"{people['withheld_waiting_for_a_person']} withheld, waiting for a person "
                                f"(`ragqa review --handoff`)")
    emb = info["embedder"] or {}
    table.add_row("embedder", f"{emb.get('name')} ({emb.get('dimension')} dims, {emb.get('max_tokens')} tokens)")
    table.add_row("chunking", str(info["chunking"]))
    cpu = info["cpu"]
    table.add_row("cpu", f"{cpu['name']} ({', '.join(cpu['flags']) or 'no SIMD flags read'})")
    table.add_row("llama.cpp", info["llama_cpp"])
    for name, size in info["bytes_on_disk"].items():
        table.add_row(name, f"{size / 1024:.1f} KiB")
    console.print(table)


@app.command()
def reindex(
    index: IndexOpt = None,
    kind: Annotated[str, typer.Option("--kind", help="auto (what the index's size calls for), flat (exact), "
                                                     "ivf (FAISS) or hnsw (pgvector).")] = "auto",
    nlist: Annotated[int, typer.Option("--nlist", help="Inverted lists for ivf (0: about 4 x sqrt(vectors)).")] = 0,
) -> None:
    """Rebuild the vector index: exact while small; when large, an inverted file (IVF,
    FAISS) or HNSW (pgvector). Ingest switches on its own as the collection grows; this
    forces a type."""
    with open_rag(index) as rag:
        described = rag.reindex(kind, nlist)
    console.print(f"vectors of {rag.index_dir} now in {described}", highlight=False)


@app.command("migrate-vectors")
def migrate_vectors(
    to: Annotated[str, typer.Option("--to", help="faiss (a file in the index folder) or pgvector (the PostgreSQL "
                                                 "database of RAGQA_DATABASE_URL).")],
    index: IndexOpt = None,
) -> None:
    """Move an index's vectors between FAISS and pgvector, with the same chunk ids. The
    rows stay where they are (on PostgreSQL for pgvector); safe to run again after a crash."""
    with open_rag(index) as rag:
        described = rag.migrate_vectors(to)
    console.print(f"vectors of {rag.index_dir} now in {described}", highlight=False)


keys_app = typer.Typer(help="API keys with roles (ask, review, admin), kept in the index's database as hashes.",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _keys(index: Path | None) -> "Keys":
    from ..index.db import make_engine
    from ..service.keys import Keys

    with open_rag(index) as rag:
        url = rag.settings.resolved_database_url
    return Keys(make_engine(url))


@keys_app.command("add")
def keys_add(
    label: Annotated[str, typer.Argument(help="Who or what uses the key (recorded as the asker and reviewer).", show_default=False)],
    role: Annotated[list[str], typer.Option("--role", "-r", help="ask, review or admin (repeat for several).")],
    index: IndexOpt = None,
) -> None:
    """Make a key; it is printed once and only its hash is kept."""
    key = _keys(index).add(label, role)
    console.print(key, highlight=False, markup=False)
    err.print(f"key for {label!r} with roles {', '.join(sorted(set(role)))}: send it as 'Authorization: Bearer <key>'; "
              "it is not shown again", highlight=False)


@keys_app.command("list")
def keys_list(index: IndexOpt = None) -> None:
    """The keys' labels and roles (never the keys)."""
    for k in _keys(index).list():
        console.print(f"{k['label']}\t{k['roles']}\t{k['created_at']}", highlight=False, markup=False)


@keys_app.command("remove")
def keys_remove(label: Annotated[str, typer.Argument(help="The key's label.", show_default=False)], index: IndexOpt = None) -> None:
    """Remove a key: calls with it are refused from then on (within 2 s on a running server)."""
    _keys(index).remove(label)
    console.print(f"removed the key {label!r}", highlight=False)
