"""`make bench` (`python -m bench`): every benchmark, one after the other, each printing its
figures; those that cannot run here, or that take long, are named with the reason and the
command that runs them. `python -m bench --all` also runs the long ones; `python -m bench
NAME...` runs those named.

Benchmarks measure and print; they never pass or fail on a figure (the fault drills,
which do, are drills/: `make drills`)."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
SQUAD_INDEX = ROOT / "indexes" / "squad2"


@dataclass(frozen=True)
class Bench:
    name: str  # the module under bench/
    what: str
    args: tuple[str, ...] = ()
    long: str | None = None  # why it is left to --all (its duration)

    def missing(self) -> str | None:
        """Why it cannot run here, or None."""
        if self.name in ("bench_embed", "bench_peer") and not (SHARED / "squad2").is_dir():
            return f"needs the labelled data in {SHARED}"
        if self.name in ("bench_prompt", "bench_followup", "bench_example_copies") and not SQUAD_INDEX.is_dir():
            return f"needs {SQUAD_INDEX.relative_to(ROOT)} (`ragqa ingest corpora/squad2/corpus --index indexes/squad2`)"
        return None


BENCHES = (
    Bench("bench_core", "ingest and ask against raw sentence-transformers and raw llama.cpp"),
    Bench("bench_cold_ask", "a cold `ragqa ask` with and without the saved prompt prefix, against a warm one"),
    Bench("bench_sentence_check", "the sentence check's cost: warm asks with it off and on, side by side"),
    Bench("bench_example_copies", "the copy guard's cost where it acts: the first draft alone against both drafts"),
    Bench("bench_service", "HTTP against in-process asks; ingest by workers against one process"),
    Bench("bench_prompt", "prompt budget (top_k, context tokens) against answer quality", ("100",)),
    Bench("bench_followup", "follow-ups rewritten to stand alone, per reader: kept, inventing, recall@5"),
    Bench("bench_embed", "embedding backends: ingest speed, retrieval quality, memory", long="about 10 minutes"),
    Bench("peer.bench_peer", "ragqa against LlamaIndex on the same job (installs LlamaIndex in bench/peer/.venv)",
          long="about 15 minutes, the first run installs LlamaIndex"),
    Bench("bench_index", "exact search against IVF at 100k and 1M vectors", long="about 20 minutes"),
    Bench("bench_pgvector", "pgvector against FAISS: ingest, search, filters at 100k and 1M vectors",
          long="about an hour (1M vectors, HNSW builds)"),
)
# run with arguments only: what they read comes from a labelled run or from two builds
BY_HAND = {
    "bench_llama_build": "needs two llama-cpp-python builds: python -m bench.bench_llama_build NAME=PYTHON NAME=PYTHON",
    "fusion_report": "reads a labelled question file and its index: python -m bench.fusion_report QUESTIONS.jsonl INDEX",
    "signals_report": "reads the answers.jsonl of `ragqa calibrate`: python -m bench.signals_report ANSWERS.jsonl",
    "bench_reviews": "reads held-out answers.jsonl of `ragqa calibrate` and the shipped calibration: "
                     "python -m bench.bench_reviews ANSWERS.jsonl --prior CALIBRATION.json",
}


def main(argv: list[str]) -> int:
    if {"-h", "--help"} & set(argv):
        print(__doc__)
        return 0
    flags = {a for a in argv if a.startswith("-")} - {"--all"}
    if flags:
        print(f"unknown option(s): {', '.join(sorted(flags))} (see --help)", file=sys.stderr)
        return 2
    run_long = "--all" in argv
    named = [a for a in argv if not a.startswith("--")]
    known = {b.name for b in BENCHES}
    unknown = [n for n in named if n not in known]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}", file=sys.stderr)
        return 2
    failed, ran, skipped = [], [], []
    for bench in BENCHES:
        if named and bench.name not in named:
            continue
        reason = bench.missing() or (None if run_long or named or not bench.long else
                                     f"long ({bench.long}): `python -m bench --all` or `python -m bench {bench.name}`")
        if reason:
            skipped.append((bench.name, reason))
            continue
        print(f"\n=== {bench.name}: {bench.what}", flush=True)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", f"bench.{bench.name}", *bench.args], cwd=ROOT)
        ran.append((bench.name, time.perf_counter() - started))
        if done.returncode:
            failed.append(bench.name)
    print("\n=== benchmarks")
    for name, seconds in ran:
        print(f"ran      {name} ({seconds:.0f} s){' FAILED' if name in failed else ''}")
    for name, reason in skipped + ([] if named else sorted(BY_HAND.items())):
        print(f"skipped  {name}: {reason}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
