"""pgvector against FAISS, run on purpose, one run on this machine, the same vectors and
queries on both sides:

1. ingest: the SciFact corpus drained from the job queue by 1 and by 2 `ragqa worker`
   processes, vectors in FAISS (workers share the index folder) and in pgvector (each
   worker has a folder of its own; they share only the database). Wall time from the
   workers' start to the last one's exit, model loading included.
2. search on the real SciFact vectors that ingest made (with 300 real claims as queries),
   then on synthetic MiniLM-shaped vectors (bench/bench_index.py's mixture) at each size:
   - FAISS as ragqa runs it at that size (exact below ivf_min_vectors, IVF above);
   - pgvector exact (a scan) and HNSW at several ef_search: build time, p50/p95 latency,
     recall@10 against exact search, size on disk; ragqa's search against the raw SQL
     query through psycopg;
   - filtered (a path prefix keeping 1% of the rows): ragqa's exact filtered search on
     both, and pgvector's HNSW scan with the filter applied after it (what a plain
     `WHERE ... ORDER BY embedding <#> q LIMIT 10` does in pgvector 0.6).

The database: RAGQA_DATABASE_URL if it names a PostgreSQL with pgvector, else a throwaway
server from tests/postgres.py (the pgserver wheel's PostgreSQL 16 + pgvector 0.6), run
with fsync on and shared_buffers 2GB.

    python -m bench.bench_pgvector [--sizes 100000 1000000] [--skip-ingest] [--files N]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, text

from bench.bench_index import latencies, real_shape, recall, synthetic
from ragqa.index import pgvector_store as pgvectors
from ragqa.index.db import Base
from ragqa.index.faiss_index import IVF, IVF_MIN_VECTORS, FaissIndex, plan
from ragqa.index.pgvector_store import TABLE, PgVectorStore, copy_in, vector_literal
from ragqa.index.vectors import VectorOptions
from ragqa.types import Filters

ROOT = Path(__file__).resolve().parent.parent
SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
N_QUERIES = 300
SLOW_QUERIES = 30  # for scans of 100k+ rows
EF_SEARCHES = (40, 100, 200, 400, 800)
DOCS_PER_GROUP_SHARE = 100  # documents fall in 100 path groups: one group is 1% of the rows


class Database:
    """Fresh databases on one PostgreSQL server with pgvector."""

    def __init__(self):
        self.server = None
        url = os.environ.get("RAGQA_DATABASE_URL", "")
        if url.startswith("postgresql"):
            self.admin = url
        else:
            from devkit.postgres import Server, binaries, has_pgvector

            bindir = binaries()
            if bindir is None or not has_pgvector(bindir):
                sys.exit("no PostgreSQL with pgvector: `pip install pgserver` (make install does) or set RAGQA_DATABASE_URL")
            self.server = Server(bindir).start(fsync="on", shared_buffers="2GB", max_wal_size="4GB")
            self.admin = self.server.url()
            print(f"PostgreSQL from {bindir} (fsync on, shared_buffers 2GB)")
        self.n = 0

    def fresh(self, name: str) -> str:
        self.n += 1
        name = f"{name}_{self.n}"
        engine = create_engine(self.admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.admin.rsplit("/", 1)[0] + "/" + name

    def close(self):
        if self.server:
            self.server.stop()


# --- 1. ingest with workers -----------------------------------------------------------


def pg_store(engine, d: int, **options) -> PgVectorStore:
    """ragqa's pgvector store over a table loaded by this bench."""
    return PgVectorStore(engine, {"embedder": {"dimension": d}}, VectorOptions(**options))

def ingest(db: Database, store: str, workers: int, files: list[Path], tmp: Path, hnsw_min: int | None = None) -> dict:
    corpus = tmp / f"corpus-{store}-{workers}"
    corpus.mkdir()
    for f in files:
        shutil.copyfile(f, corpus / f.name)  # (a link leading outside the folder is not followed)
    url = db.fresh(f"ingest_{store}_{workers}")
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}

    def env(machine: str) -> dict:
        folder = tmp / f"{store}-{workers}" / ("shared" if store == "faiss" else machine)
        return {**base, "RAGQA_INDEX": str(folder), "RAGQA_DATABASE_URL": url, "RAGQA_VECTOR_STORE": store,
                "RAGQA_CALIBRATION": "off", "RAGQA_EMBED_PROCESSES": str(max(1, (os.cpu_count() or 2) // workers)),
                **({"RAGQA_HNSW_MIN_VECTORS": str(hnsw_min)} if hnsw_min is not None else {})}

    subprocess.run([sys.executable, "-m", "ragqa.cli", "ingest", str(corpus), "--queue", "--files-per-job", "20"],
                   env=env("queue"), check=True, capture_output=True)
    t = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "ragqa.cli", "worker", "--exit-when-idle"], env=env(f"w{i}"),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(workers)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            sys.exit(f"worker failed: {err[-2000:]}")
    wall = time.perf_counter() - t
    status = json.loads(subprocess.run([sys.executable, "-m", "ragqa.cli", "status", "--json"], env=env("status"),
                                       check=True, capture_output=True, text=True).stdout)
    assert status["chunks"] == status["vectors"], status
    return {"store": store, "workers": workers, "hnsw_min_vectors": hnsw_min, "wall_s": wall, "chunks": status["chunks"],
            "chunks_per_s": status["chunks"] / wall, "url": url, "documents": status["documents"]}


def bench_ingest(db: Database, files: int, tmp: Path, hnsw_min: int | None) -> tuple[str, list[dict]]:
    paths = sorted((SCIFACT / "corpus").glob("*.txt"))[:files]
    rows = []
    for workers in (1, 2):
        for store in ("faiss", "pgvector"):  # interleaved, so that drift on the machine hits both
            rows.append(ingest(db, store, workers, paths, tmp, hnsw_min if store == "pgvector" else None))
            r = rows[-1]
            print(f"  {store:8s} {workers} worker(s): {r['chunks']:,} chunks in {r['wall_s']:6.1f} s = "
                  f"{r['chunks_per_s']:6.1f} chunks/s", flush=True)
    print(f"\ningest, {len(paths):,} SciFact files, {os.cpu_count()} cores"
          + (f", pgvector with RAGQA_HNSW_MIN_VECTORS={hnsw_min}" if hnsw_min is not None else ""))
    print(f"{'':10s} {'1 worker':>16s} {'2 workers':>16s}")
    by = {(r["store"], r["workers"]): r for r in rows}
    for store in ("faiss", "pgvector"):
        print(f"{store:10s} " + " ".join(f"{by[(store, w)]['chunks_per_s']:10.1f} ch/s" for w in (1, 2)))
    for w in (1, 2):
        print(f"pgvector / faiss, {w} worker(s): {by[('pgvector', w)]['chunks_per_s'] / by[('faiss', w)]['chunks_per_s']:.2f}x")
    return by[("pgvector", 2)]["url"], rows


# --- 2. search -------------------------------------------------------------------------

def load(url: str, ids: np.ndarray, data: np.ndarray) -> tuple[float, np.ndarray]:
    """Documents, chunks and vectors into a fresh database, as ragqa lays them out (the
    chunk texts left empty). Returns the seconds the vectors' COPY took and each row's group."""
    from sqlalchemy.orm import Session

    engine = create_engine(url)
    Base.metadata.create_all(engine)
    pgvectors.ensure(engine, data.shape[1])
    per_doc = max(1, min(50, len(ids) // (2 * DOCS_PER_GROUP_SHARE)))  # at least 200 documents
    n_docs = max(1, len(ids) // per_doc)
    doc_of = np.arange(len(ids)) // per_doc % n_docs + 1
    group = doc_of % DOCS_PER_GROUP_SHARE
    raw = engine.raw_connection()
    with raw.driver_connection.cursor() as cur:
        with cur.copy("COPY documents (id, name, path, sha256, size, mtime, n_chunks, updated_at) FROM STDIN") as cp:
            cp.write("".join(f"{d}\td{d}\tg{d % DOCS_PER_GROUP_SHARE:02d}/d{d}.txt\tx\t1\t0\t50\t2026-01-01\n"
                             for d in range(1, n_docs + 1)))
        buf = io.StringIO()
        for i, d in zip(ids.tolist(), doc_of.tolist()):
            buf.write(f"{i}\t{d}\t0\t\t0\t0\t\\N\t1\n")
        with cur.copy('COPY chunks (id, document_id, ordinal, text, start, "end", page, n_tokens) FROM STDIN') as cp:
            cp.write(buf.getvalue())
    raw.driver_connection.commit()
    raw.close()
    t = time.perf_counter()
    with Session(engine) as s, s.begin():
        copy_in(s, ids, data)
    loaded = time.perf_counter() - t
    with engine.begin() as c:
        c.execute(text("ANALYZE"))
    engine.dispose()
    return loaded, group


def psycopg_connect(url: str):
    """A plain psycopg connection (autocommit), for the raw side."""
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def relation_mb(engine, name: str) -> float:
    with engine.connect() as c:
        return (c.execute(text("SELECT pg_total_relation_size(to_regclass(:n))"), {"n": name}).scalar() or 0) / 2**20


def compare(db: Database, title: str, data: np.ndarray, queries: np.ndarray) -> dict:
    n, d = data.shape
    ids = np.arange(n, dtype=np.int64) * 2 + 1
    nq = N_QUERIES if n <= 20_000 else SLOW_QUERIES
    print(f"\n{title}: {n:,} x {d}, {len(queries)} queries ({nq} for scans)", flush=True)
    out: dict = {"title": title, "n": n, "rows": []}

    def row(name, build, mb, p50, p95, r10, raw50=None):
        raw = f"{raw50:8.2f}" if raw50 is not None else f"{'':8s}"
        print(f"{name:48s} {build:8.1f} {mb:8.0f} {p50:8.2f} {p95:8.2f} {r10:6.3f} {raw}", flush=True)
        out["rows"].append({"index": name, "build_s": build, "mb": mb, "p50_ms": p50, "p95_ms": p95, "recall10": r10,
                            "raw_p50_ms": raw50})

    print(f"{'index':48s} {'build s':>8s} {'MiB':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'R@10':>6s} {'raw p50':>8s}")
    import faiss

    t = time.perf_counter()
    flat = FaissIndex(d)
    flat.add(ids, data)
    build = time.perf_counter() - t
    p50, p95, truth = latencies(lambda q: [i for i, _ in flat.search(q, 10)], queries)
    row("FAISS exact (IDMap2,Flat)", build, faiss.serialize_index(flat.index).nbytes / 2**20, p50, p95, 1.0)
    if n >= IVF_MIN_VECTORS:  # what ragqa switches to at this size
        t = time.perf_counter()
        _, nlist = plan(n)
        ivf = FaissIndex(d, flat.index)
        ivf.rebuild(IVF, nlist)
        build = time.perf_counter() - t
        p50, p95, res = latencies(lambda q: [i for i, _ in ivf.search(q, 10)], queries)
        row(f"FAISS {ivf.describe()}", build, faiss.serialize_index(ivf.index).nbytes / 2**20, p50, p95, recall(res, truth))
        del ivf

    url = db.fresh("search")
    loaded, group = load(url, ids, data)
    engine = create_engine(url)
    pg = pg_store(engine, d)
    raw = psycopg_connect(url)

    def raw_search(q, ef):
        with raw.cursor() as cur:
            if ef != raw_search.ef:  # set once per ef, as ragqa does
                cur.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(ef),))
                raw_search.ef = ef
            cur.execute(f"SELECT chunk_id FROM {TABLE} ORDER BY embedding <#> %s::vector LIMIT 10", (vector_literal(q),))
            return [r[0] for r in cur.fetchall()]
    raw_search.ef = 0

    p50, p95, res = latencies(lambda q: [i for i, _ in pg.search(q, 10)], queries[:nq])
    raw50, _, _ = latencies(lambda q: raw_search(q, 40), queries[:nq])
    row("pgvector exact (scan)", loaded, relation_mb(engine, TABLE), p50, p95, recall(res, truth[:nq]), raw50)
    t = time.perf_counter()
    pg.rebuild(pgvectors.HNSW)
    build = time.perf_counter() - t
    index_mb = relation_mb(engine, pgvectors.HNSW_INDEX)
    for ef in EF_SEARCHES:
        pg = pg_store(create_engine(url), d, ef_search=ef)  # its connections start with this ef_search
        p50, p95, res = latencies(lambda q: [i for i, _ in pg.search(q, 10)], queries)
        raw50, _, _ = latencies(lambda q: raw_search(q, ef), queries)
        row(f"pgvector HNSW ef_search {ef}", build, index_mb, p50, p95, recall(res, truth), raw50)
        pg.engine.dispose()
    out["hnsw_build_s"], out["copy_s"] = build, loaded

    # filtered: the rows of one path group (1%)
    keep = group == 7
    kept_ids, kept = ids[keep], data[keep]
    ftruth = [kept_ids[np.argsort(-(kept @ q), kind="stable")[:10]].tolist() for q in queries]
    where = ("substr(d.path, 1, :prefix_len) = :prefix", {"prefix": "g07/", "prefix_len": 4})
    print(f"filtered to {int(keep.sum()):,} rows ({keep.mean():.1%}), path prefix g07/:")
    sql_ids = f"SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE {where[0]}"

    def faiss_filtered(q):
        with engine.connect() as c:
            allowed = [r[0] for r in c.execute(text(sql_ids), where[1])]
        return [i for i, _ in flat.search(q, 10, allowed)]

    p50, p95, res = latencies(faiss_filtered, queries[:nq])
    row("  FAISS, ragqa (ids from SQL, exact)", 0, 0, p50, p95, recall(res, ftruth[:nq]))
    p50, p95, res = latencies(lambda q: [i for i, _ in pg.search(q, 10, Filters(path_prefix="g07/"))], queries[:nq])
    row("  pgvector, ragqa (exact in SQL)", 0, 0, p50, p95, recall(res, ftruth[:nq]))
    plain = f"SELECT v.chunk_id FROM {TABLE} v JOIN chunks c ON c.id = v.chunk_id JOIN documents d " \
            f"ON d.id = c.document_id WHERE substr(d.path, 1, 4) = 'g07/' ORDER BY v.embedding <#> %s::vector LIMIT 10"
    # the plain query as PostgreSQL plans it, then forced through the HNSW index (enable_sort off:
    # an ordered index scan is then the only plan), which is pgvector 0.6's filter-after-scan
    for ef, forced in ((40, False), (40, True), (200, True)):
        raw.close()  # a new connection: psycopg prepares a statement run 5 times, and its plan would stay
        raw = psycopg_connect(url)
        with raw.cursor() as cur:
            cur.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(ef),))
            cur.execute(f"SET enable_sort = {'off' if forced else 'on'}")
            cur.execute("EXPLAIN " + plain, (vector_literal(queries[0]),))
            plan_text = " ".join(r[0] for r in cur.fetchall())
        raw_search.ef = ef

        def plain_search(q):
            with raw.cursor() as cur:
                cur.execute(plain, (vector_literal(q),))
                return [r[0] for r in cur.fetchall()]
        p50, p95, res = latencies(plain_search, queries[:nq])
        how = ("forced: " if forced else "as planned: ") + \
            ("HNSW scan, then filter" if pgvectors.HNSW_INDEX in plan_text else "filter, then sort")
        row(f"  plain SQL, ef {ef}, {how}", 0, 0, p50, p95, recall(res, ftruth[:nq]))
    with raw.cursor() as cur:
        cur.execute("SET enable_sort = on")
    raw.close()
    engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--files", type=int, default=5183, help="SciFact files to ingest (all: 5183)")
    ap.add_argument("--hnsw-min", type=int, default=None,
                    help="RAGQA_HNSW_MIN_VECTORS for the pgvector ingests (0: HNSW maintained from the first vector)")
    ap.add_argument("--no-search", action="store_true", help="ingest only")
    ap.add_argument("--out", default="bench_pgvector.json", help="file name under bench/results")
    args = ap.parse_args()
    print(subprocess.run(["lscpu"], capture_output=True, text=True).stdout.split("Model name:")[1].split("\n")[0].strip(),
          f"{os.cpu_count()} cores", flush=True)
    db = Database()
    tmp = Path(tempfile.mkdtemp(prefix="ragqa-bench-pg-"))
    results: dict = {"search": []}
    try:
        if not args.skip_ingest:
            url, results["ingest"] = bench_ingest(db, args.files, tmp, args.hnsw_min)
        if not args.skip_ingest and not args.no_search:
            # the real vectors, with real claims embedded by the same backend
            from ragqa.models.embed import make_embedder
            from ragqa.settings import Settings

            engine = create_engine(url)
            _, data = pg_store(engine, 384).dump()
            engine.dispose()
            claims = [json.loads(line)["question"] for line in
                      (SCIFACT / "questions_train.jsonl").read_text().splitlines()][:N_QUERIES]
            emb = make_embedder(Settings(), "onnx-int8")
            queries = np.asarray(emb.embed(claims), dtype=np.float32)
            getattr(emb, "close", lambda: None)()
            results["search"].append(compare(db, "real SciFact chunks (onnx-int8), real claims", data, queries))
        mean, cov, _ = real_shape() if args.sizes and not args.no_search else (None, None, None)
        for n in args.sizes if not args.no_search else []:
            rng = np.random.default_rng(n)
            data, centers = synthetic(n, mean, cov, rng)
            queries, _ = synthetic(N_QUERIES, mean, cov, np.random.default_rng(n + 1), centers)
            results["search"].append(compare(db, f"{n:,} synthetic MiniLM-shaped vectors", data, queries))
            del data
    finally:
        db.close()
        shutil.rmtree(tmp, ignore_errors=True)
    out = ROOT / "bench" / "results" / args.out
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
