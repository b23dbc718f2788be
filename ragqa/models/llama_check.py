"""Is this llama.cpp build safe to run here? A smoke run in a child process, and what the
build and the CPU support.

llama-cpp-python compiles llama.cpp on install. Built with `-march=native` (its default)
on one CPU, the library can use instructions that another CPU, or a virtual machine,
does not run: the process dies with SIGSEGV or SIGILL at the first prompt of more than
one token, which no Python code can catch. So before a process loads a GGUF for the
first time with a given build, model and CPU, a child process loads it and answers a
short chat with a grammar (a multi-token prompt, a grammar, a chat completion: what
ragqa does). If the child dies, the caller gets a one-line `ModelError` naming the
likely cause and the rebuild command instead of a crash. A passing run is remembered
in the user's cache folder, keyed by the library file, the model file and the CPU
flags, so it costs about a second once per build, model and machine.

`python -m ragqa.models.llama_check MODEL.gguf` is the child."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import ModelError

LLAMA_CPP_VERSION = "0.3.36"  # the version pinned in pyproject.toml and the Makefile
PORTABLE_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF"
REBUILD = (f'CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" pip install --force-reinstall --no-deps --no-cache-dir '
           f"llama-cpp-python=={LLAMA_CPP_VERSION}")
# the CPU flags that decide which ggml kernels can run (from /proc/cpuinfo)
CPU_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
             "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
SMOKE_TIMEOUT_S = 300


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ragqa"


def cpu() -> dict[str, Any]:
    """The processor's name and the SIMD flags relevant to ggml (Linux; elsewhere the name only)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                name = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
                break
    except OSError:
        pass
    return {"name": name, "machine": platform.machine(), "flags": [f for f in CPU_FLAGS if f in flags]}


def system_info() -> str:
    """llama.cpp's own account of its build: the backends and CPU features it was compiled
    with (e.g. "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | ... | AMX_INT8 = 1")."""
    try:
        import llama_cpp
    except ImportError as e:
        return f"llama-cpp-python is not installed ({e})"
    info = llama_cpp.llama_print_system_info()
    text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    return f"llama-cpp-python {llama_cpp.__version__}: " + " ".join(text.split())


def _library() -> Path | None:
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    libs = sorted(Path(list(spec.submodule_search_locations)[0], "lib").glob("libggml-cpu*"))
    return libs[0] if libs else None


def _key(model: Path) -> str:
    parts = [sys.executable, json.dumps(cpu(), sort_keys=True)]
    for path in (_library(), model):
        if path is not None and path.exists():
            st = path.stat()
            parts.append(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _passed_file(model: Path) -> Path:
    return cache_dir() / "llama-check" / _key(Path(model))


def crash_message(model: Path, how: str) -> str:
    flags = ", ".join(cpu()["flags"]) or "unknown"
    return (f"llama.cpp {how} running {Path(model).name} on this CPU (flags: {flags}): the installed "
            "llama-cpp-python was most likely compiled for another CPU (a native build, e.g. with AMX or AVX-512 "
            f"kernels this machine or VM does not run). Rebuild it portably: {REBUILD}")


def smoke(model: Path, *, n_threads: int = 1, n_gpu_layers: int = 0, remember: bool = True,
          command: list[str] | None = None) -> None:
    """Run a short chat with a grammar through `model` in a child process; raise ModelError
    if the child crashes or fails. A pass is remembered (see the module doc). `command`
    replaces the child (tests)."""
    model = Path(model)
    done = _passed_file(model)
    if remember and done.exists():
        return
    cmd = command or [sys.executable, "-m", "ragqa.models.llama_check", str(model), str(n_threads), str(n_gpu_layers)]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ModelError(f"llama.cpp did not answer a 4-token test within {SMOKE_TIMEOUT_S} s with {model.name}") from None
    if run.returncode < 0:
        try:
            how = f"crashed ({signal.Signals(-run.returncode).name})"
        except ValueError:
            how = f"crashed (signal {-run.returncode})"
        raise ModelError(crash_message(model, how))
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelError(f"llama.cpp failed a test run with {model.name}: {last}")
    if remember:
        done.parent.mkdir(parents=True, exist_ok=True)
        tmp = done.with_name(done.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"model": str(model), "output": run.stdout.strip()[-200:]}) + "\n", encoding="utf-8")
        tmp.replace(done)


def _child(model: str, n_threads: int, n_gpu_layers: int) -> None:
    """What the smoke run does: load, then a chat completion of a multi-token prompt under a grammar."""
    from llama_cpp import Llama, LlamaGrammar

    llm = Llama(model_path=model, n_ctx=512, n_threads=n_threads, n_threads_batch=n_threads,
                n_gpu_layers=n_gpu_layers, verbose=False)
    grammar = LlamaGrammar.from_string('root ::= [a-zA-Z ]{1,12} " [1]"', verbose=False)
    out = llm.create_chat_completion(
        messages=[{"role": "user", "content": "Sources:\n[1] The sky is blue.\n\nQuestion: What colour is the sky?"}],
        max_tokens=4, temperature=0.0, grammar=grammar)
    assert isinstance(out, dict)  # not streamed
    print(json.dumps({"reply": out["choices"][0]["message"]["content"]}))


if __name__ == "__main__":  # pragma: no cover - run in a child process by smoke()
    _child(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1, int(sys.argv[3]) if len(sys.argv) > 3 else 0)
