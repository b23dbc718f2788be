"""The llama.cpp build check: a crash in the child becomes one clear error, a pass is
remembered, and the real GGUF passes the smoke run here (in a child process, so that a
build this CPU cannot run fails this one test instead of killing pytest)."""

import platform
import re
import sys
from pathlib import Path

import pytest

from ragqa.errors import ModelError
from ragqa.models import llama_check

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 64)
    return path


def test_a_crashing_child_becomes_one_clear_error(cache, model):
    segv = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
    with pytest.raises(ModelError) as e:
        llama_check.smoke(model, command=segv)
    message = str(e.value)
    assert "crashed (SIGSEGV)" in message and "m.gguf" in message
    assert "-DGGML_NATIVE=OFF" in message and f"llama-cpp-python=={llama_check.LLAMA_CPP_VERSION}" in message
    assert "\n" not in message
    assert not (cache / "ragqa" / "llama-check").exists()  # a crash is not remembered


def test_a_failing_child_reports_its_last_line(cache, model):
    fail = [sys.executable, "-c", "import sys; print('noise', file=sys.stderr); sys.exit('bad magic in model')"]
    with pytest.raises(ModelError, match="failed a test run with m.gguf: bad magic in model"):
        llama_check.smoke(model, command=fail)


def test_a_pass_is_remembered_per_model(cache, model, tmp_path):
    counter = tmp_path / "runs"
    ok = [sys.executable, "-c", f"open({str(counter)!r}, 'a').write('x')"]
    llama_check.smoke(model, command=ok)
    llama_check.smoke(model, command=ok)
    assert counter.read_text() == "x"
    model.write_bytes(b"GGUF" + b"\1" * 65)  # another file: checked again
    llama_check.smoke(model, command=ok)
    assert counter.read_text() == "xx"
    llama_check.smoke(model, command=ok, remember=False)
    assert counter.read_text() == "xxx"


def test_cpu_reads_the_flags_that_matter():
    info = llama_check.cpu()
    assert info["name"] and info["machine"]
    assert set(info["flags"]) <= set(llama_check.CPU_FLAGS)


def test_pins_agree_everywhere():
    """The version in pyproject, the Makefile, the constraints and the error message are one."""
    v = llama_check.LLAMA_CPP_VERSION
    assert f'"llama-cpp-python=={v}"' in (ROOT / "pyproject.toml").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^LLAMA_VERSION := {re.escape(v)}$", makefile, re.M)
    assert re.search(rf"^CMAKE_ARGS \?= {re.escape(llama_check.PORTABLE_CMAKE_ARGS)}$", makefile, re.M)
    assert f"llama-cpp-python=={v}\n" in (ROOT / "constraints.txt").read_text()
    import llama_cpp

    assert llama_cpp.__version__ == v


@pytest.mark.integration
def test_the_real_gguf_runs_a_chat_with_a_grammar_in_a_child(cache):
    """A multi-token prompt, a grammar and a chat completion through the bundled GGUF, in a
    child process: on a build this CPU cannot run, this test fails with the signal."""
    from ragqa.models.paths import bundled_gguf_path

    llama_check.smoke(bundled_gguf_path(), n_threads=2, remember=False)


def test_status_shows_the_build_and_the_cpu():
    info = llama_check.system_info()
    assert info.startswith(f"llama-cpp-python {llama_check.LLAMA_CPP_VERSION}: ") and "CPU : " in info
    if platform.machine() == "x86_64":
        assert "AVX2 = 1" in info  # the portable x86 build's baseline


@pytest.mark.integration
def test_llama_cpp_log_lines_go_to_logging_not_to_stderr():
    """Loading a GGUF makes llama.cpp log dozens of lines; ragqa routes them to its logger
    at debug level (llama-cpp-python would print some to stderr even with verbose=False)."""
    import subprocess
    import sys

    code = ("import logging, sys\n"
            "logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format='%(name)s %(message)s')\n"
            "from ragqa.models.generator import SamplingParams\nfrom ragqa.models.llama import LlamaCppGenerator\n"
            "g = LlamaCppGenerator(check=False)\n"
            "print(''.join(g.chat([{'role': 'user', 'content': 'Say yes.'}], SamplingParams(max_tokens=2))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    routed = [line for line in out.stdout.splitlines() if line.startswith("ragqa.models.llama llama.cpp: ")]
    assert len(routed) > 10, out.stdout[-2000:]
    assert out.stderr.strip() == "", out.stderr[-2000:]
