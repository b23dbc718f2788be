"""`ragqa eval` and `ragqa calibrate` end to end through the real models (MiniLM and the
default reader's GGUF), on a few SQuAD 2.0 questions about one shipped article."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragqa.evaluation.run import REPORT_KEYS, RETRIEVAL_KEYS

pytestmark = pytest.mark.integration

SQUAD = Path(__file__).resolve().parent.parent / "corpora" / "squad2"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "ragqa.cli", *args], capture_output=True, text=True, timeout=900,
                          env={k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")})


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    base = tmp_path_factory.mktemp("eval")
    questions = [json.loads(line) for line in (SQUAD / "questions_heldout.jsonl").read_text().splitlines()]
    normans = [q for q in questions if q.get("article") == "Normans"]
    picked = [q for q in normans if q["answerable"]][:3] + [q for q in normans if not q["answerable"]][:2]
    picked += [q for q in questions if q.get("unanswerable_type") == "not_in_corpus"][:1]
    qfile = base / "q.jsonl"
    qfile.write_text("".join(json.dumps(q) + "\n" for q in picked))
    index = base / "index"
    r = cli("ingest", *[str(p) for p in sorted((SQUAD / "corpus").glob("squad2-Normans-*.txt"))], "--index", str(index))
    assert r.returncode == 0, r.stderr
    return qfile, index, base


def test_eval_writes_the_report_the_answers_and_the_plots(small):
    qfile, index, base = small
    out = base / "out"
    r = cli("eval", str(qfile), "--index", str(index), "--out", str(out))
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "report.json").read_text())
    assert set(REPORT_KEYS) <= set(report) and report["n"] == 6
    assert report["recall@5"] >= 0.5  # the gold paragraphs are in this small index
    for png in ("risk_coverage.png", "reliability.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    drafted = [r for r in rows if r["draft"]]
    # the bundled calibration scores every draft; the relevance gate (no draft) is a hard rule
    assert len(rows) == 6 and drafted and all(r["calibrated"] for r in drafted)
    assert all(r["confidence"] == 0.0 and "nothing relevant" in r["reason"] for r in rows if not r["draft"])
    assert drafted and all(r["signals"]["logprob_mean"] < 0 for r in drafted)  # real token log-probabilities
    assert all(0.0 <= r["confidence"] <= 1.0 for r in rows)
    assert not any(r["right"] for r in rows if not r["answerable"])


def test_eval_retrieval_only_generates_nothing(small):
    qfile, index, base = small
    out = base / "ret"
    r = cli("eval", str(qfile), "--index", str(index), "--out", str(out), "--retrieval-only", "--retrieval", "lexical")
    assert r.returncode == 0, r.stderr
    assert set(json.loads((out / "report.json").read_text())) == set(RETRIEVAL_KEYS)
    assert not (out / "risk_coverage.png").exists()


def test_calibrate_fits_and_saves_or_says_plainly_why_it_cannot(small):
    qfile, index, base = small
    r = cli("calibrate", str(qfile), "--index", str(index), "--out", str(base / "cal"))
    assert "Traceback" not in r.stderr
    rows = [json.loads(line) for line in (base / "cal" / "answers.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(row["draft"] for row in rows)  # every question drafted, none gated
    if r.returncode == 0:
        saved = json.loads((index / "calibration.json").read_text())
        assert saved["models"]["generator"]["name"] == "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"  # the default reader
        assert saved["models"]["embedder"]["name"] == "all-MiniLM-L6-v2"
    else:  # six questions may hold no right draft at all: then fitting is impossible, and it says so
        assert r.returncode == 1 and "both right and wrong" in r.stderr
