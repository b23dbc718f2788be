"""The question log (ragqa.review.log): every question asked through any interface is in
the index's database with what ragqa did and why, on SQLite and on PostgreSQL; it stays
readable when a document goes, and a failed write never costs the answer."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest

from ragqa import RAG
from ragqa.testing import ExtractiveGenerator, HashEmbedder

ANSWERED = "Which town did Etna destroy in 1669?"
WITHHELD = "What is the boiling point of liquid nitrogen?"


def rag_on(tmp_path, db_url=None, **settings) -> RAG:
    settings.setdefault("min_confidence", 0.5)  # no calibration applies to the fakes: a threshold of the test's own
    return RAG(tmp_path / "index", embedder=HashEmbedder(), generator=ExtractiveGenerator(), min_relevance=0.1,
               **({"database_url": db_url} if db_url else {}), **settings)


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_every_question_is_logged_with_what_was_shown_and_why(tmp_path, docs, db, request):
    url = request.getfixturevalue("postgres_url") if db == "postgresql" else None
    with rag_on(tmp_path, url) as rag:
        rag.ingest([docs])
        given = rag.ask(ANSWERED)
        withheld = rag.ask(WITHHELD, asker="alice")
        assert not given.abstained and withheld.abstained
        entries = list(rag.question_log.entries())
    assert [e["id"] for e in entries] == [withheld.id, given.id] and given.id < withheld.id
    last, first = entries
    assert first["question"] == ANSWERED and not first["abstained"] and "Nicolosi" in first["answer"]
    assert first["sources"][0]["document"] == "volcanoes" and first["sources"][0]["chunk_id"] > 0
    assert "Nicolosi" in first["sources"][0]["text"] and first["citations"][0]["document"] == "volcanoes"
    assert first["signals"]["grounding"] == given.signals["grounding"] and first["reason"] == given.reason
    assert first["models"]["generator"] == {"name": "extractive-fake"} and first["interface"] == "python"
    assert "threshold" in first["calibration"] and first["timings"]["total_s"] > 0
    assert last["abstained"] and last["asker"] == "alice" and last["reason"] == withheld.reason
    assert last["answer"] == withheld.answer and last["draft"] == withheld.draft


def test_the_log_can_be_turned_off_and_measurement_runs_are_not_logged(tmp_path, docs):
    from ragqa.evaluation.run import collect

    with rag_on(tmp_path, question_log=0) as rag:
        rag.ingest([docs])
        assert rag.ask(ANSWERED).id is None
    with rag_on(tmp_path) as rag:
        collect(rag, [{"id": "q", "question": ANSWERED, "answers": ["Nicolosi"], "answerable": True, "gold_doc_ids": []}])
        assert rag.question_log.count() == 0  # labelled questions are measured, not queued for review


def test_deleting_a_document_leaves_the_log_readable(tmp_path, docs):
    with rag_on(tmp_path) as rag:
        rag.ingest([docs])
        answer = rag.ask(ANSWERED)
        rag.delete_document("volcanoes")
        entry = rag.question_log.get(answer.id)
    assert entry is not None and "Nicolosi" in entry["sources"][0]["text"]


def test_a_log_write_that_fails_never_costs_the_answer(tmp_path, docs, monkeypatch, caplog):
    from ragqa.review.log import QuestionLog

    def broken(self):
        raise OSError("disk full")

    monkeypatch.setattr(QuestionLog, "_ensure", broken)
    with rag_on(tmp_path) as rag, caplog.at_level(logging.WARNING, logger="ragqa"):
        rag.ingest([docs])
        answer = rag.ask(ANSWERED)
    assert not answer.abstained and "Nicolosi" in answer.answer and answer.id is None
    assert "could not be logged: disk full" in caplog.text


def test_http_and_openai_questions_are_logged_with_their_interface(tmp_path, docs):
    from ragqa.service import create_app

    rag = rag_on(tmp_path, calibration="off")
    rag.ingest([docs])
    app = create_app(rag=rag, worker=False)

    async def scenario():
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ragqa") as c:
                asked = (await c.post("/v1/ask", json={"question": ANSWERED})).json()
                await c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": WITHHELD}]})
                return asked

    asked = asyncio.run(scenario())
    with rag_on(tmp_path) as reader:
        entries = {e["id"]: e for e in reader.question_log.entries()}
    assert entries[asked["id"]]["interface"] == "http" and entries[asked["id"]]["question"] == ANSWERED
    assert [e["interface"] for e in entries.values()] == ["openai", "http"]


def test_ragqa_log_lists_and_exports(tmp_path, docs, monkeypatch):
    from typer.testing import CliRunner

    from ragqa.cli.app import app

    with rag_on(tmp_path) as rag:
        rag.ingest([docs])
        rag.ask(ANSWERED)
        rag.ask(WITHHELD)
    monkeypatch.setenv("RAGQA_INDEX", str(tmp_path / "index"))
    runner = CliRunner()
    listed = runner.invoke(app, ["log", "--json"])
    assert listed.exit_code == 0, listed.output
    lines = [json.loads(line) for line in listed.output.splitlines()]
    assert [e["question"] for e in lines] == [WITHHELD, ANSWERED]
    out = tmp_path / "log.jsonl"
    exported = runner.invoke(app, ["log", "--export", str(out)])
    assert exported.exit_code == 0 and "wrote 2 logged questions" in exported.output
    assert [json.loads(line)["question"] for line in out.read_text().splitlines()] == [ANSWERED, WITHHELD]
    missing = runner.invoke(app, ["log", "--index", str(tmp_path / "none")])
    assert missing.exit_code != 0 and not (tmp_path / "none").exists()  # no index made by looking
