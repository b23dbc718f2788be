"""A draft that is a worked example's answer, which its sources do not hold, is never shown:
it is drafted again from the same prompt as a verbatim span of its sources
(ragqa.answer.steps.Answering.generate), and the streamed text holds back its first pieces
while they could still become one."""

from __future__ import annotations

from ragqa import RAG
from ragqa.answer.prompts import copies_example, copyable_answers, may_become_example_answer
from ragqa.testing import HashEmbedder, ScriptedGenerator, parse_sources

COPY = "the Ptolemaic Kingdom [1]"


class Echoing(ScriptedGenerator):
    """Free to answer anything, answers with the third worked example's answer; under a
    grammar that allows only spans of the sources, with "Nicolosi" and its source number.
    Says yes to its self-check, recording what it was asked."""

    can_self_check = True

    def __init__(self):
        super().__init__(COPY)
        self.grammars: list[str | None] = []
        self.checked: list[list[dict[str, str]]] = []

    def chat(self, messages, params):
        self.grammars.append(params.grammar)
        if params.grammar and '"Nicolosi"' in params.grammar:
            sources, _ = parse_sources(messages)
            self.reply = f"Nicolosi [{next(i for i, t in enumerate(sources, start=1) if 'Nicolosi' in t)}]"
        return super().chat(messages, params)

    def yes_probability(self, messages, apart=False):
        self.checked.append(list(messages))
        return 0.9


def test_a_copied_example_answer_is_drafted_again_as_a_span_of_the_sources_and_never_streamed(tmp_path, docs):
    gen = Echoing()
    with RAG(tmp_path / "index", embedder=HashEmbedder(), generator=gen, min_relevance=0.1, top_k=1,
             self_check=True) as rag:
        rag.ingest([docs])
        streamed = list(rag.stream("Which town did Etna destroy in 1669?", log=False))
    answer, pieces = streamed[-1], streamed[:-1]
    assert len(gen.calls) == 2 and gen.calls[0] == gen.calls[1]  # the same prompt: cached by llama.cpp
    assert '"Nicolosi"' not in (gen.grammars[0] or "") and '"Nicolosi"' in gen.grammars[1]  # then a span's grammar
    assert answer.draft.startswith("Nicolosi [") and answer.signals["example_copied"] == COPY
    assert "".join(pieces) == answer.draft and "Ptolemaic" not in "".join(pieces)
    assert gen.checked and all(m[-2]["content"] == answer.draft for m in gen.checked)  # the check reads the second


def test_an_example_answer_that_the_sources_hold_is_an_answer_streamed_as_it_comes(tmp_path, docs):
    gen = ScriptedGenerator(COPY)
    with RAG(tmp_path / "index", embedder=HashEmbedder(), generator=gen, min_relevance=0.1, top_k=1) as rag:
        rag.ingest([docs])
        *pieces, answer = rag.stream("Who built the Pharos of Alexandria lighthouse?", log=False)
    assert "Ptolemaic" in answer.sources[0].chunk.text
    assert len(gen.calls) == 1 and answer.draft == COPY and "example_copied" not in answer.signals
    # it cannot be a copy, so it holds nothing back ("the" alone could still begin "the 1825")
    assert pieces == ["the Ptolemaic ", "Kingdom ", "[1]"]


def test_streaming_holds_back_only_while_the_draft_could_become_an_example_answer(tmp_path, docs):
    gen = ScriptedGenerator("the town of Nicolosi [1]")  # streamed word by word: "the ", "town ", ...
    with RAG(tmp_path / "index", embedder=HashEmbedder(), generator=gen, min_relevance=0.1, top_k=1) as rag:
        rag.ingest([docs])
        pieces = list(rag.stream("Which town did Etna destroy in 1669?", log=False))[:-1]
    assert pieces == ["the town ", "of ", "Nicolosi ", "[1]"]
    assert len(gen.calls) == 1


def test_what_counts_as_a_copy():
    assert copies_example("The Ptolemaic Kingdom [2].", copyable_answers(["Egypt was ruled from Alexandria."]))
    assert copies_example("1825 [1]", copyable_answers(["The Suez Canal opened in 1869."]))
    assert copies_example("Thomas Savery [1]", copyable_answers(["x"]))  # the default system prompt's own example
    assert not copies_example("1825 [1]", copyable_answers(["The Erie Canal was completed in 1825."]))  # the source holds it
    assert not copies_example("18250 [1]", copyable_answers(["x"])) and not copies_example("", copyable_answers(["x"]))
    assert not copies_example("Nicolosi, a town on Etna [1]", copyable_answers(["x"]))
    for start in ("", "the", "The Ptol", "18", "1825 [", "Nicolosi [1"):
        assert may_become_example_answer(start), start
    for start in ("Paris", "1826", "the town", "1825 [1] and"):
        assert not may_become_example_answer(start), start
    # only the answers the sources do not hold can be copies, and only they hold a draft back
    copyable = copyable_answers(["Thomas Savery patented a pump in 1698."])
    assert "thomas savery" not in copyable and "ptolemaic kingdom" in copyable
    assert not may_become_example_answer("Thomas", copyable) and may_become_example_answer("the Pto", copyable)
