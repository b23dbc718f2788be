"""Prompt and generation speed of llama.cpp builds, side by side in one run.

    python -m bench.bench_llama_build NAME=PYTHON [NAME=PYTHON ...] [--model GGUF] [--extra-bufts 0|1]

Each PYTHON is an interpreter whose llama-cpp-python was built another way (the
Makefile's portable build in .venv, a native build in another venv). Each build runs
in its own child process, in turns (A B A B ...), so that load on the shared machine
falls on both alike. Prompt speed: one batch of PROMPT_TOKENS tokens; generation speed:
GEN_TOKENS single-token steps after it. `--extra-bufts 0` turns off ggml's extra buffer
types (AMX and repacked weights): a native build on a CPU with AMX flags that the VM does
not run crashes without it. The printed table goes to bench/results/bench_llama_build.txt."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPT_TOKENS, GEN_TOKENS, ROUNDS = 256, 64, 5

CHILD = r"""
import json, sys, time
import llama_cpp
from llama_cpp import Llama
model, extra, prompt_n, gen_n = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])
if not extra:
    default = llama_cpp.llama_model_default_params
    def params():
        p = default(); p.use_extra_bufts = False; return p
    llama_cpp.llama_model_default_params = params
    import llama_cpp.llama as L; L.llama_cpp.llama_model_default_params = params
llm = Llama(model_path=model, n_ctx=1024, n_threads=2, n_threads_batch=2, verbose=False)
text = " ".join(["The steam engine pumped water out of the mines of Cornwall."] * 40)
tokens = llm.tokenize(text.encode())[:prompt_n]
llm.reset(); llm.eval(tokens[:8])  # warm-up
llm.reset()
t0 = time.perf_counter(); llm.eval(tokens); t1 = time.perf_counter()
for i in range(gen_n):
    llm.eval([tokens[i % len(tokens)]])
t2 = time.perf_counter()
info = llama_cpp.llama_print_system_info().decode()
print(json.dumps({"prompt_tps": len(tokens) / (t1 - t0), "gen_tps": gen_n / (t2 - t1), "info": " ".join(info.split())}))
"""


def main(argv: list[str]) -> None:
    model, extra, builds = None, "1", []
    args = iter(argv)
    for a in args:
        if a == "--model":
            model = next(args)
        elif a == "--extra-bufts":
            extra = next(args)
        else:
            name, _, python = a.partition("=")
            builds.append((name, python))
    if model is None:
        from ragqa.models.paths import bundled_gguf_path

        model = str(bundled_gguf_path())
    runs: dict[str, list[dict]] = {name: [] for name, _ in builds}
    for _ in range(ROUNDS):
        for name, python in builds:
            out = subprocess.run([python, "-c", CHILD, model, extra, str(PROMPT_TOKENS), str(GEN_TOKENS)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"{name}: exit {out.returncode}: {out.stderr.strip()[-300:]}")
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = builds[0][0]
    p0 = statistics.median(r["prompt_tps"] for r in runs[base])
    g0 = statistics.median(r["gen_tps"] for r in runs[base])
    lines = [f"model {Path(model).name}, {PROMPT_TOKENS}-token prompt, {GEN_TOKENS} generated tokens, 2 threads, "
             f"extra buffer types {'on' if extra == '1' else 'off'}, median of {ROUNDS} alternating rounds",
             f"{'build':<12} {'prompt tok/s':>13} {'vs ' + base:>10} {'gen tok/s':>10} {'vs ' + base:>10}"]
    for name, _ in builds:
        p = statistics.median(r["prompt_tps"] for r in runs[name])
        g = statistics.median(r["gen_tps"] for r in runs[name])
        lines.append(f"{name:<12} {p:>13.1f} {p / p0:>9.2f}x {g:>10.1f} {g / g0:>9.2f}x")
    for name, _ in builds:
        lines.append(f"{name}: {runs[name][0]['info']}")
    text = "\n".join(lines)
    print(text)
    out = ROOT / "bench" / "results" / "bench_llama_build.txt"
    out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
