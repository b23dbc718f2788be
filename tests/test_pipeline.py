import json

import pytest

from ragqa import RAG, Answer
from ragqa.errors import IndexNotFoundError, InputError
from ragqa.testing import HashEmbedder, ScriptedGenerator


def test_answer_cites_the_file_that_holds_it(fake_rag, docs):
    fake_rag.ingest([docs])
    answer = fake_rag.ask("Which town did Etna destroy in 1669?")
    assert not answer.abstained, answer.reason
    assert "Nicolosi" in answer.answer
    assert [c.document for c in answer.citations] == ["volcanoes"]
    c = answer.citations[0]
    source_text = (docs / "volcanoes.txt").read_text()
    assert source_text[c.start: c.end] == c.quote  # the span points at the original text
    assert 0 <= answer.confidence <= 1 and answer.signals["grounding"] == 1.0


def test_stream_yields_text_then_the_answer(fake_rag, docs):
    fake_rag.ingest([docs])
    parts = list(fake_rag.stream("How do honey bees communicate the location of flowers?"))
    assert all(isinstance(p, str) for p in parts[:-1]) and len(parts) > 2
    assert isinstance(parts[-1], Answer)
    assert "".join(parts[:-1]).strip() == parts[-1].answer


def test_absent_topic_is_abstained_on_without_generating(fake_rag, docs):
    fake_rag.ingest([docs])
    calls = len(fake_rag.generator.calls)
    answer = fake_rag.ask("What is the boiling point of liquid nitrogen?")
    assert answer.abstained and "nothing relevant" in answer.reason
    assert len(fake_rag.generator.calls) == calls
    assert answer.sources, "the closest sources are still listed"


@pytest.mark.parametrize("reply,reason", [
    ("Etna erupted in 1669.", "cites no source"),
    ("Etna erupted in 1669 [9].", "not given"),
    ("Bees dance in the spring meadows of Provence [1].", "not supported"),
    ("I cannot answer from these documents.", "no answer"),
])
def test_ungrounded_answers_are_withdrawn(tmp_path, docs, reply, reason):
    with RAG(tmp_path / "i", embedder=HashEmbedder(), generator=ScriptedGenerator(reply), min_relevance=0.1) as rag:
        rag.ingest([docs])
        answer = rag.ask("When did Etna erupt and destroy Nicolosi?")
    assert answer.abstained and reason in answer.reason
    assert answer.draft == reply and answer.citations == ()


def test_json_shape(fake_rag, docs):
    fake_rag.ingest([docs])
    d = json.loads(json.dumps(fake_rag.ask("What was the Pharos of Alexandria?").to_dict()))
    assert {"question", "answer", "abstained", "confidence", "citations", "sources", "timings"} <= set(d)
    assert set(d["citations"][0]) >= {"n", "document", "path", "page", "start", "end", "quote"}
    assert set(d["sources"][0]) == {"n", "document", "path", "page", "score", "dense_rank", "lexical_rank", "text"}
    assert set(d["timings"]) == {"retrieve_s", "generate_s", "check_s", "total_s"}
    assert d["citations"][0]["document"] == "lighthouse"


def test_asking_before_ingesting_is_a_clear_error(tmp_path):
    with RAG(tmp_path / "none", embedder=HashEmbedder(), generator=ScriptedGenerator("x")) as rag:
        with pytest.raises(IndexNotFoundError):
            rag.ask("anything?")
        with pytest.raises(InputError):
            rag.ask("   ")


def test_condense_uses_the_rewrite_or_falls_back_to_the_conversation(tmp_path):
    good = RAG(tmp_path, embedder=HashEmbedder(), generator=ScriptedGenerator("When did Thomas Savery die?"))
    assert good.condense([("Who patented a steam pump?", "Thomas Savery [1].")], "and when did he die?") == "When did Thomas Savery die?"
    bad = RAG(tmp_path, embedder=HashEmbedder(), generator=ScriptedGenerator("Steam pumps are great."))
    q = bad.condense([("Who patented a steam pump?", "Thomas Savery [1].")], "and when did he die?")
    assert q == "Who patented a steam pump? and when did he die?"
    assert bad.condense([], "Standalone?") == "Standalone?"


def test_a_rewrite_that_adds_words_of_its_own_is_never_the_query(tmp_path):
    """The bundled model once turned "Who developed it?" into an invented statement; the
    rewrite may use the conversation's words and the follow-up's, nothing else."""
    from ragqa.answer.followup import invented

    history = [("When was the first commercial steam-powered device developed?", "")]  # withheld: no answer shown
    statement = "The first commercial steam-powered device was developed by James Watt in 1876."
    assert invented(statement, history, "Who developed it?") == {"jame", "watt", "1876"}  # content words fold a plural -s
    inventing = RAG(tmp_path, embedder=HashEmbedder(), generator=ScriptedGenerator(statement))
    assert inventing.condense(history, "Who developed it?") == f"{history[0][0]} Who developed it?"
    faithful = RAG(tmp_path, embedder=HashEmbedder(),
                   generator=ScriptedGenerator("Who developed the first commercial steam-powered device?"))
    assert faithful.condense(history, "Who developed it?") == "Who developed the first commercial steam-powered device?"
    # words from an answer that was shown are the conversation's, not invented
    shown = [("Who patented a steam pump?", "Thomas Savery [1].")]
    assert invented("When did Thomas Savery die?", shown, "and when did he die?") == set()


def test_filters_restrict_the_documents_an_answer_may_come_from(fake_rag, docs):
    from ragqa import Filters

    fake_rag.ingest([docs])
    question = "Which town did Etna destroy in 1669?"
    only_bees = fake_rag.ask(question, filters={"documents": ["bees"]})
    assert {h.chunk.document for h in only_bees.sources} <= {"bees"}
    assert only_bees.abstained  # the answer is in volcanoes, which the filter excludes
    by_name = fake_rag.ask(question, filters=Filters(documents=("volcanoes", "bees")))
    assert not by_name.abstained and by_name.citations[0].document == "volcanoes"
    prefix = str(docs / "volc")
    by_path = fake_rag.retrieve(question, 5, filters={"path_prefix": prefix})
    assert by_path and {h.chunk.document for h in by_path} == {"volcanoes"}
    assert fake_rag.retrieve(question, 5, filters={"path_prefix": str(docs / "VOLC")}) == []  # case-sensitive
    for mode in ("dense", "lexical"):
        assert {h.chunk.document for h in fake_rag.retrieve("Etna volcano bees", 5, mode=mode,
                                                             filters={"documents": ["bees"]})} == {"bees"}
    nothing = fake_rag.ask(question, filters={"documents": ["no-such-document"]})
    assert nothing.abstained and "no document matches the filters" in nothing.reason
    with pytest.raises(InputError):
        fake_rag.ask(question, filters={"author": "me"})


def test_every_signal_an_answer_carries_is_declared_once(fake_rag, docs):
    from ragqa.answer.signals import SIGNALS
    from ragqa.evaluation.calibrate import FEATURES

    fake_rag.ingest([docs])
    answers = [fake_rag.ask("Which town did Etna destroy?"), fake_rag.ask("What is the boiling point of neon?")]
    carried = set().union(*(a.signals for a in answers))
    assert carried - set(SIGNALS) == set()
    assert list(FEATURES) == [n for n, s in SIGNALS.items() if s.feature]
