"""The person-in-the-loop path as a user runs it, with the real models (MiniLM, the default
reader's GGUF): questions asked through the Python API are logged; `ragqa review --labels`
applies a file of labels; `ragqa calibrate --reviews` tries to certify from them with the
shipped calibration as prior and, with few reviews, says how many more reviews would do
it and keeps what was in use; the attempt is counted."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from devkit.servers import cli
from ragqa import RAG

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
ARTICLE = "Steam_engine"


def test_review_labels_then_calibrate_from_reviews_with_the_real_models(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for path in (ROOT / "corpora" / "squad2" / "corpus").glob(f"squad2-{ARTICLE}-p*.txt"):
        shutil.copy2(path, docs / path.name)
    rows = [json.loads(line) for line in (ROOT / "corpora" / "squad2" / "questions_heldout.jsonl").read_text().splitlines()]
    asked = [r for r in rows if r.get("article") == ARTICLE and r["answerable"]][:30]
    assert len(asked) == 30
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in asked))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}, "RAGQA_INDEX": str(tmp_path / "index")}

    with RAG(tmp_path / "index") as rag:
        rag.ingest([docs])
        answers = [rag.ask(r["question"]) for r in asked]
        assert all(a.id is not None for a in answers)
        assert rag.policy.calibration is not None  # the default reader's shipped calibration: the prior
    drafted = sum(bool(a.draft) for a in answers)

    applied = cli(env, "review", "--labels", str(labels))
    assert applied.returncode == 0, applied.stderr
    assert "30 logged questions labelled from 30 labels (0 labels match no logged question)" in applied.stdout
    assert f"can certify: {drafted} " in applied.stdout  # every drafted answer has a verdict now

    tried = cli(env, "calibrate", "--reviews", "--target-risk", "0.1")
    assert tried.returncode == 0, tried.stderr
    out = " ".join(tried.stdout.split())
    assert "prior: shipped for qwen2.5-coder-1.5b-instruct-q4_k_m.gguf: fitted and certified on" in out  # the shipped calibration
    assert "not certified" in out  # a 10% risk at level 0.05 needs 29 answered reviews, none wrong
    assert "more reviews" in out or "choose a higher target risk" in out
    assert "still in use:" in out
    progress = cli(env, "review", "--progress")
    assert "certification attempts: 1" in " ".join(progress.stdout.split())
