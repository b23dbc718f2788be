"""A cold `ragqa ask` (a new process per question) with and without the saved prompt
prefix (setting prefix_cache), against a warm process asking the same questions, side by
side in one run on the demo index. Prints generate_s p50 for each, model load time
separately, and whether the drafts are the same as the warm process's.

    python -m bench.bench_cold_ask [--questions 8] [--model NAME]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "Who developed a steam-powered water pump in 1698?", "Where is the Scottish Parliament building?",
    "Who was the first Duke of Normandy?", "What did Watt add to the steam engine in 1788?",
    "How many members does the Scottish Parliament have?", "When did the Normans conquer England?",
    "What is a steam turbine?", "Who is the Presiding Officer of the Scottish Parliament?",
]

CHILD = """
import json, sys, time
from ragqa import RAG
rag = RAG(sys.argv[1])
t = time.perf_counter(); rag.generator.load(); load_s = time.perf_counter() - t
rows = []
for q in json.loads(sys.argv[2]):
    a = rag.ask(q)
    rows.append({"q": q, "generate_s": a.timings["generate_s"], "draft": a.draft,
                 "restored": getattr(rag.generator, "restored_tokens", 0)})
print(json.dumps({"load_s": load_s, "rows": rows}))
"""


def child(index: Path, questions: list[str], env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(index), json.dumps(questions)], env=env,
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=len(QUESTIONS))
    ap.add_argument("--model", default=None, help="a catalogue name or GGUF path (default: the default reader)")
    args = ap.parse_args()
    questions = QUESTIONS[: args.questions]
    from ragqa.models.catalogue import default_path, resolve

    # found before the cache (where installed models live too) moves to a folder of its own
    model = str(resolve(args.model) if args.model else default_path())
    with tempfile.TemporaryDirectory(prefix="ragqa-cold-") as tmp:
        base = {k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}
        env = {**base, "RAGQA_CACHE_DIR": str(Path(tmp) / "cache"), "RAGQA_LLAMA_CHECK": "0", "RAGQA_MODEL": model}
        index = Path(tmp) / "index"
        shutil.copytree(ROOT / "corpora" / "demo", Path(tmp) / "docs")
        subprocess.run([sys.executable, "-m", "ragqa.cli", "ingest", str(Path(tmp) / "docs"), "--index", str(index)],
                       env=env, check=True, capture_output=True, timeout=600)
        warm = child(index, questions, {**env, "RAGQA_PREFIX_CACHE": "0"})
        cold = [child(index, [q], {**env, "RAGQA_PREFIX_CACHE": "0"}) for q in questions]
        child(index, ["What is a steam engine?"], {**env, "RAGQA_PREFIX_CACHE": "1"})  # saves the prefix once
        restored = [child(index, [q], {**env, "RAGQA_PREFIX_CACHE": "1"}) for q in questions]
        state = sorted((Path(tmp) / "cache" / "prefix-state").glob("*.pkl"))
        size = state[0].stat().st_size if state else 0

    def p50(runs):
        return statistics.median(r["generate_s"] for run in runs for r in run["rows"])

    warm_p50 = statistics.median(r["generate_s"] for r in warm["rows"][1:])  # the first is cold
    cold_p50, restored_p50 = p50(cold), p50(restored)
    same_cold = sum(c["rows"][0]["draft"] == w["draft"] for c, w in zip(cold, warm["rows"]))
    same_restored = sum(c["rows"][0]["draft"] == w["draft"] for c, w in zip(restored, warm["rows"]))
    print(f"{len(questions)} questions, demo index, {Path(model).name}; generate_s p50 (model load excluded)")
    print(f"  warm process (questions 2..n)      {warm_p50:6.3f} s")
    print(f"  cold process, no saved prefix      {cold_p50:6.3f} s  ({cold_p50 / warm_p50:.2f}x warm)")
    print(f"  cold process, saved prefix         {restored_p50:6.3f} s  ({restored_p50 / warm_p50:.2f}x warm; "
          f"{restored[0]['rows'][0]['restored']} tokens restored, state file {size / 1e6:.1f} MB)")
    print(f"  model load (separately)            {statistics.median(r['load_s'] for r in cold):6.3f} s")
    print(f"  drafts equal to the warm process's: cold {same_cold}/{len(questions)}, "
          f"saved prefix {same_restored}/{len(questions)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
