"""Drill: kill -9 an ingest (or a `ragqa worker`) at a random moment, finish the work,
and check that the rows and the vectors agree, with counts equal to a clean ingest's.

    python -m drills.kill [--trials 20] [--reingest 5] [--workers 5] [--db sqlite|postgresql|both]

Corpus: 60 files of 4 SQuAD paragraphs from ../shared/data/squad2/corpus, the real
MiniLM. A kill lands at a seeded random moment after the ingest has started writing
(its first file event) or, for a worker, after its job is running. Prints one line per
trial and a summary; exits 1 if any trial ends inconsistent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CORPUS = ROOT.parent / "shared" / "data" / "squad2" / "corpus"
SEED = 20261203
FILES = 60

# The child: an ingest through the library, printing its events so the parent knows when
# the work has begun. Batches are made small so that 60 files give ~15 write transactions.
DRIVER = """
import sys
import ragqa.ingest.run
from ragqa import RAG
ragqa.ingest.run.EMBED_BATCH_CHUNKS = 16  # many small write batches, so a kill can land between any two
ragqa.ingest.run.SAVE_EVERY_CHUNKS = 64  # and vectors saved mid-run, as a large ingest does
rag = RAG(sys.argv[1], database_url=sys.argv[2], calibration="off")
def on_event(kind, **data):
    print(kind, flush=True)
rag.ingest([sys.argv[3]], on_event=on_event)
print("finished", flush=True)
"""


def corpus(folder: Path) -> Path:
    """FILES files of 4 consecutive SQuAD paragraphs each; without ../shared, of the
    demo corpus's paragraphs, each file a different rotation of them."""
    folder.mkdir(parents=True)
    if CORPUS.is_dir():
        texts = [p.read_text() for p in sorted(CORPUS.glob("*.txt"))]
    else:
        texts = [p for f in sorted((ROOT / "corpora" / "demo").glob("*")) for p in f.read_text().split("\n\n") if p.strip()]
    for i in range(FILES):
        part = [texts[(4 * i + j) % len(texts)] for j in range(4)]
        (folder / f"part{i:03d}.txt").write_text(f"Part {i}.\n\n" + "\n\n".join(part))
    return folder


def check(index: Path, url: str) -> dict:
    """The index as a fresh reader finds it, straight from the database and the file."""
    from sqlalchemy import create_engine, text

    from ragqa.index.faiss_index import FaissIndex

    engine = create_engine(url)
    with engine.connect() as c:
        chunk_ids = {r[0] for r in c.execute(text("SELECT id FROM chunks"))}
        paths = [r[0] for r in c.execute(text("SELECT path FROM documents"))]
        docs_with_chunks = {r[0] for r in c.execute(text("SELECT DISTINCT document_id FROM chunks"))}
        doc_ids = {r[0] for r in c.execute(text("SELECT id FROM documents"))}
    engine.dispose()
    manifest = json.loads((index / "manifest.json").read_text())
    vector_ids = FaissIndex.load(index / "vectors.faiss", int(manifest["embedder"]["dimension"])).ids()
    return {"documents": len(paths), "chunks": len(chunk_ids), "vectors": len(vector_ids),
            "rows_without_vector": len(chunk_ids - vector_ids), "vectors_without_row": len(vector_ids - chunk_ids),
            "duplicate_paths": len(paths) - len(set(paths)), "documents_without_chunks": len(doc_ids - docs_with_chunks)}


def consistent(found: dict, clean: dict) -> bool:
    return (found["rows_without_vector"] == found["vectors_without_row"] == found["duplicate_paths"]
            == found["documents_without_chunks"] == 0
            and (found["documents"], found["chunks"]) == (clean["documents"], clean["chunks"]))


def ingest(index: Path, url: str, docs: Path, kill_after: float | None = None) -> tuple[str, bool]:
    """Run the driver; with kill_after, SIGKILL it that long after its start event (files
    found, model loaded). Returns (how it ended, whether it left rows and vectors torn)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(index), url, str(docs)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if kill_after is None:
        out, err = proc.communicate(timeout=900)
        if proc.returncode != 0 or "finished" not in out:
            raise RuntimeError(f"ingest failed: {err[-2000:]}")
        return "finished", False
    for line in proc.stdout:  # wait for the work to begin
        if line.strip() in ("start", "finished"):
            break
    time.sleep(kill_after)
    ended = "killed" if proc.poll() is None else "finished before the kill"
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    return ended, torn(index, url)


def torn(index: Path, url: str) -> bool:
    """Whether the kill left rows and vectors disagreeing on disk (for the repair to fix)."""
    if not (index / "vectors.faiss").exists():
        return False
    try:
        found = check(index, url)
    except Exception:  # no tables yet
        return False
    return bool(found["rows_without_vector"] or found["vectors_without_row"])


def work_seconds(index: Path, url: str, docs: Path) -> float:
    """A clean ingest; seconds from its start event to its end (the window kills land in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(index), url, str(docs)], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    started = None
    for line in proc.stdout:
        if line.strip() == "start":
            started = time.perf_counter()
    proc.wait(900)
    if proc.returncode != 0 or started is None:
        raise RuntimeError("the clean ingest failed")
    return time.perf_counter() - started


def worker_trial(index: Path, url: str, docs: Path, rng: random.Random) -> str:
    """Queue the corpus as jobs, kill a worker mid-job, let a new one finish the queue."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")},
           "RAGQA_INDEX": str(index), "RAGQA_DATABASE_URL": url, "RAGQA_JOB_LEASE": "2", "RAGQA_CALIBRATION": "off"}
    cli = [sys.executable, "-m", "ragqa.cli"]
    subprocess.run([*cli, "ingest", str(docs), "--queue", "--files-per-job", "8"], env=env, check=True,
                   capture_output=True, timeout=300)
    doomed = subprocess.Popen([*cli, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while True:
        jobs = json.loads(subprocess.run([*cli, "jobs", "--json"], env=env, capture_output=True, text=True,
                                         timeout=120).stdout)["jobs"]
        if any(j["state"] == "running" for j in jobs) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    time.sleep(rng.uniform(0.0, 3.0))
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(60)
    time.sleep(2.5)  # its lease runs out
    subprocess.run([*cli, "worker", "--exit-when-idle"], env=env, check=True, capture_output=True, timeout=900)
    return "killed"


def run(db: str, trials: int, reingest: int, workers: int, base: Path, server) -> list[dict]:
    rng = random.Random(f"{SEED}-{db}")
    docs = corpus(base / f"docs-{db}")
    counter = iter(range(10_000))

    def new_index() -> tuple[Path, str]:
        n = next(counter)
        index = base / f"{db}-{n}"
        url = f"sqlite:///{index / 'ragqa.db'}" if db == "sqlite" else server.create_database(f"drill_{n}")
        return index, url

    index, url = new_index()
    full = work_seconds(index, url, docs)
    clean = check(index, url)
    print(f"[{db}] clean ingest: {clean['documents']} documents, {clean['chunks']} chunks, {full:.1f} s", flush=True)
    results = []

    def record(kind: str, i: int, ended: str, left_torn: bool, index: Path, url: str, clean: dict) -> None:
        found = check(index, url)
        ok = consistent(found, clean)
        results.append({"db": db, "kind": kind, "trial": i, "ended": ended, "torn_before_repair": left_torn,
                        "consistent": ok, **found})
        print(f"[{db}] {kind:9s} {i:2d}: {ended:24s} left torn: {'yes' if left_torn else 'no ':3s} "
              f"-> {'consistent' if ok else 'INCONSISTENT ' + json.dumps(found)}", flush=True)

    for i in range(trials):
        index, url = new_index()
        ended, left_torn = ingest(index, url, docs, kill_after=rng.uniform(0.0, full))
        ingest(index, url, docs)  # to completion: repairs what the kill left, then does the rest
        record("ingest", i, ended, left_torn, index, url, clean)

    for i in range(reingest):
        index, url = new_index()
        changed = base / f"changed-{db}-{i}"
        shutil.copytree(docs, changed)
        ingest(index, url, changed)
        for path in rng.sample(sorted(changed.glob("*.txt")), 10):  # 10 files change in place
            path.write_text(path.read_text() + f"\n\nAmended in drill {i}: " + "new words " * rng.randint(5, 400))
        ref_index, ref_url = new_index()
        ref_seconds = work_seconds(ref_index, ref_url, changed)  # what a clean ingest of the changed folder holds
        ended, torn = ingest(index, url, changed, kill_after=rng.uniform(0.0, ref_seconds / 3))
        ingest(index, url, changed)
        record("re-ingest", i, ended, torn, index, url, check(ref_index, ref_url))

    for i in range(workers):
        index, url = new_index()
        ended = worker_trial(index, url, docs, rng)
        record("worker", i, ended, False, index, url, clean)  # (torn state not sampled: the kill is mid-job)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--reingest", type=int, default=5)
    ap.add_argument("--workers", type=int, default=5)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--out", type=Path, default=ROOT / "drills" / "results" / "kill.json", help="where the rows go (JSON)")
    args = ap.parse_args()
    results: list[dict] = []
    server = None
    with tempfile.TemporaryDirectory(prefix="ragqa-drill-") as tmp:
        try:
            for db in (["sqlite", "postgresql"] if args.db == "both" else [args.db]):
                if db == "postgresql":
                    from devkit.postgres import Server, binaries

                    bindir = binaries()
                    if bindir is None:
                        print("PostgreSQL binaries not found: skipped")
                        continue
                    server = Server(bindir).start()
                results += run(db, args.trials, args.reingest, args.workers, Path(tmp), server)
        finally:
            if server is not None:
                server.stop()
    bad = [r for r in results if not r["consistent"]]
    killed = [r for r in results if r["ended"] == "killed"]
    print(f"\n{len(results) - len(bad)}/{len(results)} consistent; {len(killed)} trials killed mid-run, "
          f"{sum(r['torn_before_repair'] for r in results)} left rows and vectors disagreeing until the next open repaired them")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
