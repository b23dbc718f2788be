"""Benchmarks, run on purpose: `make bench` (python -m bench) runs them and says which it skips and why."""
