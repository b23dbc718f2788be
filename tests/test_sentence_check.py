"""The sentence check (ragqa.answer.steps.Answering.sentence_check): one extra question to the
reader, whether the sentence its answer cites states that answer to this question; run when
the calibration in use reads it (or when set on), never for a draft a hard check withholds."""

from __future__ import annotations

import pytest

from ragqa import RAG
from ragqa.answer.citations import strip_markers
from ragqa.answer.scorer import CalibratedScorer, Calibration
from ragqa.testing import ExtractiveGenerator, HashEmbedder


class Judging(ExtractiveGenerator):
    """The extractive fake, able to say yes or no with a set probability."""

    can_self_check = True

    def __init__(self, p_yes: float):
        super().__init__()
        self.p_yes = p_yes
        self.asked: list[list[dict[str, str]]] = []

    def yes_probability(self, messages, apart=False):
        assert apart  # asked apart from the answer's conversation: the cache is kept for the next answer
        self.asked.append(list(messages))
        return self.p_yes


def reading(*names: str) -> Calibration:
    """A calibration whose confidence is the sentence check's P(yes) pushed through a steep
    logistic (threshold 0.5), or a constant 0.73 when it reads other signals."""
    coef = [8.0] if names == ("sentence_check",) else [0.0] * len(names)
    return Calibration(features=list(names), mean=[0.5] * len(names), scale=[1.0] * len(names), coef=coef,
                       intercept=1.0 if names != ("sentence_check",) else 0.0, threshold=0.5, target_risk=0.2,
                       delta=0.1, models={})


def rag_with(tmp_path, docs, generator, calibration, **settings) -> RAG:
    rag = RAG(tmp_path / "index", embedder=HashEmbedder(), generator=generator, scorer=CalibratedScorer(calibration),
              min_relevance=0.1, **settings)
    rag.ingest([docs])
    return rag


@pytest.mark.parametrize("p_yes,given", [(0.95, True), (0.05, False)])
def test_a_calibration_that_reads_it_asks_about_the_cited_sentence(tmp_path, docs, p_yes, given):
    gen = Judging(p_yes)
    with rag_with(tmp_path, docs, gen, reading("sentence_check")) as rag:
        answer = rag.ask("Which town did Etna destroy in 1669?")
    assert len(gen.asked) == 1
    turn = gen.asked[0][-1]["content"]
    assert "Sentence: It erupted violently in 1669 and destroyed the town of Nicolosi." in turn  # the cited one
    assert "Which town did Etna destroy in 1669?" in turn
    assert f"Answer: {strip_markers(answer.draft)}" in turn
    # asked apart from the answer's sources, examples and reply (in their company the reader agrees with itself)
    assert len(gen.asked[0]) == 2 and not any("Sources:" in m["content"] for m in gen.asked[0])
    assert answer.draft not in [m["content"] for m in gen.asked[0]]
    assert answer.signals["sentence_check"] == p_yes
    assert answer.abstained is not given


def test_not_asked_when_the_calibration_does_not_read_it(tmp_path, docs):
    gen = Judging(0.05)
    with rag_with(tmp_path, docs, gen, reading("grounding")) as rag:
        answer = rag.ask("Which town did Etna destroy in 1669?")
    assert gen.asked == [] and "sentence_check" not in answer.signals
    assert not answer.abstained, answer.reason


def test_on_and_off_override_the_calibration(tmp_path, docs):
    on, off = Judging(0.9), Judging(0.9)
    with rag_with(tmp_path / "on", docs, on, reading("grounding"), sentence_check="on") as rag:
        assert rag.ask("Which town did Etna destroy in 1669?").signals["sentence_check"] == 0.9
    with rag_with(tmp_path / "off", docs, off, reading("sentence_check"), sentence_check="off") as rag:
        answer = rag.ask("Which town did Etna destroy in 1669?")
    assert len(on.asked) == 1 and off.asked == []
    assert "sentence_check" not in answer.signals  # read as its fitted mean by the calibration


class Uncited(Judging):
    def chat(self, messages, params):
        yield "Etna erupted in 1669."


def test_not_asked_for_a_draft_a_hard_check_withholds(tmp_path, docs):
    gen = Uncited(0.99)
    with rag_with(tmp_path, docs, gen, reading("sentence_check")) as rag:
        answer = rag.ask("Which town did Etna destroy in 1669?")
    assert answer.abstained and "cites no source" in answer.reason
    assert gen.asked == []


def test_turning_it_off_under_a_calibration_that_reads_it_leaves_no_certificate(tmp_path, docs):
    """A calibration describes one pipeline: without the signal it reads, its threshold
    certifies nothing, and ragqa says why instead of imputing the signal."""
    index = tmp_path / "index"
    with RAG(index, embedder=HashEmbedder(), generator=Judging(0.9), min_relevance=0.1) as rag:
        rag.ingest([docs])
    reading("sentence_check").save(index / "calibration.json")
    with RAG(index, embedder=HashEmbedder(), generator=Judging(0.9), min_relevance=0.1) as rag:
        assert rag.policy.calibration is not None
        assert not rag.ask("Which town did Etna destroy in 1669?").abstained
    with RAG(index, embedder=HashEmbedder(), generator=Judging(0.9), min_relevance=0.1, sentence_check="off") as rag:
        answer = rag.ask("Which town did Etna destroy in 1669?")
        assert rag.policy.calibration is None and "RAGQA_SENTENCE_CHECK=off" in rag.policy.warning
        assert answer.abstained and not answer.calibrated
