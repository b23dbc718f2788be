"""Service benchmark, run on purpose (`python -m bench.bench_service`), printing figures
measured side by side in one run on this machine:

1. ask: `POST /v1/ask` to a real `ragqa serve` process against `RAG.ask` in this process,
   same index, same questions, one at a time; then 4 clients at once (the server answers
   one at a time, so throughput should match one client's, with no loss).
2. ingest of the same files: `ragqa ingest` (one process) against `ragqa ingest --queue`
   drained by 1 and by 2 `ragqa worker` processes. Wall time from start to the last
   vector saved, model loading included on every side.
3. ask latency while `ragqa serve`'s in-process worker ingests, against idle.

    python -m bench.bench_service [--files 495] [--skip-ask] [--skip-ingest]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.bench_core import QUESTIONS  # the same questions as the core benchmark
from devkit.servers import free_port, wait_up
from ragqa import RAG

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 4


def cli(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ragqa.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def bench_ask(tmp: Path, env: dict) -> None:
    import httpx

    index = tmp / "ask-index"
    rag = RAG(index)
    rag.ingest([ROOT / "corpora" / "demo"])
    rag.ask(QUESTIONS[0])  # warm: models loaded, first-call costs paid
    local = []
    for q in QUESTIONS:
        t = time.perf_counter()
        rag.ask(q)
        local.append(time.perf_counter() - t)
    rag.close()  # free the cores for the server

    port = free_port()
    server = cli("serve", "--port", str(port), "--no-worker", "--log-level", "warning",
                 env={**env, "RAGQA_INDEX": str(index), "RAGQA_ASK_QUEUE": "16"})
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300)
    try:
        wait_up(client, server)
        client.post("/v1/ask", json={"question": QUESTIONS[0]})  # warm
        remote = []
        for q in QUESTIONS:
            t = time.perf_counter()
            r = client.post("/v1/ask", json={"question": q})
            remote.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text

        codes: list[int] = []

        def one_client(i: int) -> None:  # each client in another order: no prompt-cache luck
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as c:
                for q in QUESTIONS[i:] + QUESTIONS[:i]:
                    codes.append(c.post("/v1/ask", json={"question": q}).status_code)

        threads = [threading.Thread(target=one_client, args=(i,)) for i in range(CLIENTS)]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t
    finally:
        client.close()
        server.terminate()
        server.wait(60)

    print(f"\nask, demo corpus, {len(QUESTIONS)} questions, {os.cpu_count()} cores")
    for q, a, b in zip(QUESTIONS, local, remote):
        print(f"  RAG.ask {a:5.2f}s   POST /v1/ask {b:5.2f}s  ({b / a:.2f}x)  {q[:50]}")
    med_local, med_remote = statistics.median(local), statistics.median(remote)
    print(f"  median: in-process {med_local:.2f}s, HTTP {med_remote:.2f}s, ratio "
          f"{statistics.median(b / a for a, b in zip(local, remote)):.2f}x")
    n = CLIENTS * len(QUESTIONS)
    print(f"  {CLIENTS} clients at once: {n} questions in {wall:.1f}s = {n / wall:.2f} q/s "
          f"(one client: {len(remote) / sum(remote):.2f} q/s); statuses {sorted(set(codes))}")


def bench_contention(tmp: Path, env: dict) -> None:
    """Answers while the server's in-process worker ingests (it yields to questions)."""
    import httpx

    run_env = {**env, "RAGQA_INDEX": str(tmp / "contention")}
    subprocess.run([sys.executable, "-m", "ragqa.cli", "ingest", str(ROOT / "corpora" / "demo")], env=run_env,
                   check=True, capture_output=True)
    port = free_port()
    server = cli("serve", "--port", str(port), "--log-level", "warning", env=run_env)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300)
    try:
        wait_up(client, server)

        def asks(rounds: int) -> list[float]:
            out = []
            for _ in range(rounds):
                for q in QUESTIONS:
                    t = time.perf_counter()
                    assert client.post("/v1/ask", json={"question": q}).status_code == 200
                    out.append(time.perf_counter() - t)
            return out

        asks(1)
        idle = asks(3)
        subprocess.run([sys.executable, "-m", "ragqa.cli", "ingest", str(ROOT / "corpora" / "squad2" / "corpus"),
                        "--queue"], env=run_env, check=True, capture_output=True)
        time.sleep(3)
        busy = asks(6)
        jobs = client.get("/v1/status").json()["jobs"]
    finally:
        client.close()
        server.terminate()
        server.wait(60)
    p90 = lambda xs: statistics.quantiles(xs, n=10)[-1]  # noqa: E731
    print("\nask while `ragqa serve`'s own worker ingests 495 queued SQuAD files")
    print(f"  idle: median {statistics.median(idle):.2f}s, p90 {p90(idle):.2f}s ({len(idle)} asks)")
    print(f"  ingesting: median {statistics.median(busy):.2f}s, p90 {p90(busy):.2f}s ({len(busy)} asks back to back), "
          f"{statistics.median(busy) / statistics.median(idle):.2f}x; jobs meanwhile {jobs}")




def bench_ingest(tmp: Path, env: dict, n_files: int) -> None:
    files = sorted((ROOT / "corpora" / "squad2" / "corpus").glob("*.txt"))[:n_files]
    docs = tmp / "docs"
    docs.mkdir()
    for f in files:
        shutil.copy(f, docs / f.name)
    size = sum(f.stat().st_size for f in files)
    print(f"\ningest, {len(files)} SQuAD 2.0 files ({size / 1024:.0f} KiB), {os.cpu_count()} cores")
    rows = []
    cores = os.cpu_count() or 1
    for label, workers, threads in (("ragqa ingest, 1 process", 0, cores),
                                    (f"--queue + 1 worker x {cores} threads", 1, cores),
                                    (f"--queue + 2 workers x {max(1, cores // 2)} threads", 2, max(1, cores // 2)),
                                    (f"--queue + 2 workers x {cores} threads", 2, cores)):
        run_env = {**env, "RAGQA_INDEX": str(tmp / f"ingest-{workers}-{threads}"), "RAGQA_EMBED_PROCESSES": str(threads)}
        t = time.perf_counter()
        if workers == 0:
            p = cli("ingest", str(docs), "--json", env=run_env)
            p.wait()
        else:
            q = subprocess.run([sys.executable, "-m", "ragqa.cli", "ingest", str(docs), "--queue", "--json"],
                               env=run_env, capture_output=True, text=True, check=True)
            assert sum(len(j["payload"]["paths"]) for j in json.loads(q.stdout)) == len(files)
            procs = [cli("worker", "--exit-when-idle", env=run_env) for _ in range(workers)]
            for p in procs:
                p.wait()
        wall = time.perf_counter() - t
        st = json.loads(subprocess.run([sys.executable, "-m", "ragqa.cli", "status", "--json"], env=run_env,
                                       capture_output=True, text=True, check=True).stdout)
        assert st["documents"] == len(files) and st["chunks"] == st["vectors"], st
        rows.append((label, wall, st["chunks"]))
        print(f"  {label:34s} {wall:6.1f}s  {st['chunks']} chunks, {st['chunks'] / wall:6.1f} chunks/s  ({rows[0][1] / wall:.2f}x the single process)",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=495)
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--skip-ask", action="store_true")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}
    env["RAGQA_CALIBRATION"] = "off"
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_ask:
            bench_ask(Path(tmp), env)
        if not args.skip_ingest:
            bench_ingest(Path(tmp), env, args.files)
            bench_contention(Path(tmp), env)


if __name__ == "__main__":
    main()
