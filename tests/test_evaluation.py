"""`ragqa eval` and `ragqa calibrate` through the library, on the deterministic fakes."""

import json

import pytest

from ragqa import RAG
from ragqa.errors import InputError
from ragqa.evaluation import calibrate as C
from ragqa.evaluation.run import REPORT_KEYS, RETRIEVAL_KEYS, collect, load_questions, load_rows, report, run, write
from ragqa.testing import ExtractiveGenerator, HashEmbedder

QUESTIONS = [
    {"id": "q1", "question": "Which town did Etna destroy in 1669?", "answers": ["Nicolosi"], "answerable": True, "gold_doc_ids": ["volcanoes"]},
    {"id": "q2", "question": "How do honey bees communicate the location of flowers?", "answers": ["waggle dance"], "answerable": True, "gold_doc_ids": ["bees"]},
    {"id": "q3", "question": "Who built the Pharos of Alexandria lighthouse?", "answers": ["the Ptolemaic Kingdom"], "answerable": True, "gold_doc_ids": ["lighthouse"]},
    {"id": "q4", "question": "Which town did Vesuvius destroy in 1669?", "answers": [], "answerable": False, "gold_doc_ids": [], "unanswerable_type": "squad_adversarial"},
    {"id": "q5", "question": "What is the boiling point of liquid nitrogen?", "answers": [], "answerable": False, "gold_doc_ids": [], "unanswerable_type": "not_in_corpus"},
]


@pytest.fixture
def qfile(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return path


def test_report_has_every_key_and_right_figures(fake_rag, docs, qfile, tmp_path):
    fake_rag.ingest([docs])
    rows = run(fake_rag, load_questions(qfile))
    rep = report(rows)
    assert set(REPORT_KEYS) <= set(rep) and rep["n"] == 5
    assert rep["recall@1"] == 1.0  # each gold document is the first retrieved
    by_id = {r["id"]: r for r in rows}
    # the fake drafts the whole sentence: it holds the gold answer but, by token F1 (0.18), is not right
    assert "Nicolosi" in by_id["q1"]["draft"] and not by_id["q1"]["right"]
    assert not by_id["q4"]["right"]  # any answer to an unanswerable question is wrong
    assert by_id["q5"]["abstained"] and by_id["q5"]["draft"] == ""  # nothing relevant: no draft
    answered = [r for r in rows if not r["abstained"]]
    assert rep["coverage"] == len(answered) / 5
    assert rep["selective_risk"] == sum(not r["right"] for r in answered) / len(answered)
    assert rep["abstain_rate_unanswerable"] == (by_id["q4"]["abstained"] + by_id["q5"]["abstained"]) / 2
    paths = write(tmp_path / "out", rows, rep)
    assert {p.name for p in paths} == {"report.json", "answers.jsonl", "risk_coverage.png", "reliability.png"}
    assert all(p.stat().st_size > 0 for p in paths)
    assert load_rows(tmp_path / "out" / "answers.jsonl")[0]["id"] == "q1"


def test_retrieval_only_reports_retrieval_and_generates_nothing(fake_rag, docs, qfile, tmp_path):
    fake_rag.ingest([docs])
    calls = len(fake_rag.generator.calls)
    rows = run(fake_rag, load_questions(qfile), retrieval_only=True)
    assert set(report(rows, retrieval_only=True)) == set(RETRIEVAL_KEYS)
    assert len(fake_rag.generator.calls) == calls
    assert {p.name for p in write(tmp_path / "o", rows, report(rows, True), True)} == {"report.json", "answers.jsonl"}


def test_bad_question_files_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok?"}\nnot json\n')
    with pytest.raises(InputError, match="bad.jsonl:2"):
        load_questions(bad)
    with pytest.raises(InputError, match="no such"):
        load_questions(tmp_path / "missing.jsonl")


def _rows(n_right, n_wrong):
    """Labelled rows whose grounding separates right from wrong answers."""
    good = {"n_citations": 1, "cited": [1], "grounding": 1.0, "retrieval_top": 0.7}
    bad = {"n_citations": 1, "cited": [1], "grounding": 0.6, "retrieval_top": 0.3}
    return ([{"id": f"r{i}", "kind": "answerable", "right": True, "signals": good} for i in range(n_right)]
            + [{"id": f"w{i}", "kind": "answerable", "right": False, "signals": bad} for i in range(n_wrong)])


def test_calibrate_saves_a_calibration_that_ask_then_uses(tmp_path, docs, qfile):
    # no threshold of its own: the calibration's certified one decides
    fake_rag = RAG(tmp_path / "index", embedder=HashEmbedder(), generator=ExtractiveGenerator(), min_relevance=0.1)
    fake_rag.ingest([docs])
    rows = collect(fake_rag, load_questions(qfile))
    assert all(r["draft"] for r in rows)  # collect drafts every question, also the irrelevant ones
    cal, path = fake_rag.calibrate(rows + _rows(60, 60), target_risk=0.1, delta=0.1)
    assert path == fake_rag.index_dir / C.FILENAME and path.is_file()
    assert cal.models["generator"] == {"name": "extractive-fake"} and cal.threshold <= 1
    answer = fake_rag.ask("Which town did Etna destroy in 1669?")
    assert answer.calibrated and fake_rag.policy.threshold == cal.threshold
    assert answer.confidence == pytest.approx(cal.probability(answer.signals))
    assert ("calibrated confidence" in answer.reason) and f"{cal.threshold:.2f}" in answer.reason


def test_a_calibration_for_another_model_warns_and_is_not_used(tmp_path, docs):
    other = RAG(tmp_path / "i", embedder=HashEmbedder(), generator=ExtractiveGenerator(), min_relevance=0.1)
    other.ingest([docs])
    cal, path = other.calibrate(_rows(60, 60))
    cal.models["generator"] = {"name": "some-other.gguf"}
    cal.save(path)
    with RAG(tmp_path / "i", embedder=HashEmbedder(), generator=ExtractiveGenerator(), min_relevance=0.1) as rag:
        answer = rag.ask("Which town did Etna destroy in 1669?")
        assert not answer.calibrated and "some-other.gguf" in rag.policy.warning
        # an uncertified model is never presented as answered: the draft is kept, unverified
        assert rag.policy.threshold > 1 and answer.abstained and answer.draft and "no calibration applies" in answer.reason
    with RAG(tmp_path / "i", embedder=HashEmbedder(), generator=ExtractiveGenerator(), calibration="off") as rag:
        assert not rag.ask("Which town did Etna destroy in 1669?").calibrated and rag.policy.warning is None
    with RAG(tmp_path / "i", embedder=HashEmbedder(), generator=ExtractiveGenerator(), calibration="off",
             min_confidence=0.5) as rag:  # a threshold of the user's own still answers, and is not called certified
        answer = rag.ask("Which town did Etna destroy in 1669?")
        assert not answer.abstained and "certified" not in answer.reason and "0.50" in answer.reason
