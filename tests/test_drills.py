"""A fast subset of the fault drills under drills/ (run in full with `make drills`): the
real CLI, the real MiniLM and the bundled GGUF; each drill exits 1 on any failure."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def drill(*args, timeout=900):
    """`python -m drills.NAME ARGS...` from the repository's root."""
    return subprocess.run([sys.executable, "-m", f"drills.{args[0]}", *args[1:]], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_kill_9_during_ingest_and_reingest_leaves_a_consistent_index(tmp_path):
    out = tmp_path / "kill.json"
    r = drill("kill", "--trials", "2", "--reingest", "1", "--workers", "0", "--db", "sqlite",
              "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads(out.read_text())
    assert len(rows) == 3 and all(row["consistent"] for row in rows)


def test_injected_instructions_are_never_answered(tmp_path):
    out = tmp_path / "inject.json"
    r = drill("inject", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    results = json.loads(out.read_text())
    assert sum(1 for rows in results.values() for row in rows if row["follows"] and row["answered"]) == 0
    assert len(results["min_confidence 0"]) == 20
