"""The answer prompt's constant prefix kept on disk (ragqa.models.prefix_state), with the real
GGUF: a new process restores it instead of evaluating it, answers as without it, and a
damaged file costs only the time it would have saved."""

import pickle

import pytest

from ragqa import RAG
from ragqa.testing import HashEmbedder

pytestmark = pytest.mark.integration

FACTS = ("The Kellan Island lighthouse was finished in 1887. Its first keeper was Mara Voss, who kept the light "
         "burning for forty years.\n")


@pytest.fixture(autouse=True)
def _reader(monkeypatch):
    """The reader's file (RAGQA_MODEL's, else the default), found before a test points
    RAGQA_CACHE_DIR (where installed models live too) at a folder of its own."""
    import os

    from ragqa.models.catalogue import default_path, resolve

    chosen = os.environ.get("RAGQA_MODEL")
    monkeypatch.setenv("RAGQA_MODEL", str(resolve(chosen) if chosen else default_path()))


def _rag(tmp_path, **kw):
    return RAG(tmp_path / "index", embedder=HashEmbedder(), calibration="off", min_confidence=0.5, min_relevance=0.0, **kw)


def _docs(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "kellan.txt").write_text(FACTS)
    return docs


def test_a_new_context_restores_the_prefix_and_answers_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGQA_CACHE_DIR", str(tmp_path / "cache"))
    with _rag(tmp_path) as first:
        first.ingest([_docs(tmp_path)])
        first.ask("When was the Kellan Island lighthouse finished?")  # cold: evaluates and saves the prefix
        assert first.generator.restored_tokens == 0
        saved = list((tmp_path / "cache" / "prefix-state").glob("*.pkl"))
        assert len(saved) == 1 and saved[0].stat().st_size > 1_000_000
        kept = first.generator.llm.detokenize(pickle.loads(saved[0].read_bytes())["input_ids"]).decode()
        assert "Nicolosi [1]" in kept  # the worked examples are in it
        assert "Kellan" not in kept  # the question's own sources are not: nothing of the documents is kept

    question = "Who was the first keeper of the Kellan Island lighthouse?"
    with _rag(tmp_path) as second:  # a new llama.cpp context, as in a new process
        restored = second.ask(question)
        assert second.generator.restored_tokens > 200
    with _rag(tmp_path, prefix_cache=0) as plain:
        cold = plain.ask(question)
        assert plain.generator.restored_tokens == 0
    assert restored.draft == cold.draft and restored.draft


def test_a_damaged_state_file_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGQA_CACHE_DIR", str(tmp_path / "cache"))
    with _rag(tmp_path) as first:
        first.ingest([_docs(tmp_path)])
        first.ask("When was the Kellan Island lighthouse finished?")
    for path in (tmp_path / "cache" / "prefix-state").glob("*.pkl"):
        path.write_bytes(b"not a state")
    with _rag(tmp_path) as second:
        answer = second.ask("Who was the first keeper of the Kellan Island lighthouse?")
        assert second.generator.restored_tokens == 0 and answer.draft


def test_a_cache_folder_that_cannot_be_written_costs_no_answer(tmp_path, monkeypatch):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("RAGQA_CACHE_DIR", str(blocked))
    with _rag(tmp_path) as rag:
        rag.ingest([_docs(tmp_path)])
        assert rag.ask("When was the Kellan Island lighthouse finished?").draft
