"""The extractive answer form: a grammar that admits only verbatim spans of the sources
(never a span that starts by repeating the question), checked on the real llama.cpp
grammar parser; and the shipped question files keep calibration and report apart."""

import json
import re
from pathlib import Path

import pytest

from ragqa.answer.grammar import span_candidates, span_grammar, span_starts
from ragqa.models.llama import start_probability

ROOT = Path(__file__).resolve().parent.parent
Q = "Who developed a steam-powered water pump in 1698?"
SRC = ["The first commercial steam-powered device was a water pump, developed in 1698 by Thomas Savery.",
       'He said "no" to the  King.']


def spans_of(grammar: str) -> dict[str, str]:
    return dict(re.findall(r"^(s\d+x\d+) ::= (.*)$", grammar, re.M))


def test_spans_start_at_words_the_question_does_not_hold():
    assert span_candidates(Q, SRC) == ["first", "commercial", "device", "Thomas", "Savery", "said", "King"]
    assert not span_starts(Q, "1698") and not span_starts(Q, "the") and not span_starts(Q, ",")
    assert span_starts("When was it built?", "1698")


def test_grammar_spans_follow_the_source_text_verbatim():
    g = span_grammar(SRC, question=Q)
    rules = spans_of(g)
    thomas = next(body for body in rules.values() if body.startswith('"Thomas"'))
    assert thomas == '"Thomas" (" Savery" (".")?)?'
    assert '"King" (".")?' in rules.values()  # the double space of the source is one space, as in the prompt
    assert re.search(r'^root ::= src1 " \[1\]" \| src2 " \[2\]"$', g, re.M)
    assert '"\\"' in g  # a quote in the source is escaped


def test_span_length_is_bounded():
    words = " ".join(f"w{i}" for i in range(30))
    rules = spans_of(span_grammar([words], max_words=5))
    assert max(body.count('"') // 2 for body in rules.values()) == 5


def test_no_allowed_start_falls_back_to_the_citation_grammar():
    assert span_grammar(["the of and"], question="").startswith("root ::= [^")


def test_the_real_grammar_parser_accepts_it():
    llama_cpp = pytest.importorskip("llama_cpp")
    assert llama_cpp.LlamaGrammar.from_string(span_grammar(SRC, question=Q), verbose=False) is not None


def test_start_probability_is_a_softmax_over_the_candidates():
    scores = [0.0] * 10
    scores[3], scores[5] = 2.0, 0.0
    p = start_probability(scores, 3, [3, 5, 5])
    assert p == pytest.approx(1 / (1 + 2.718281828 ** -2), rel=1e-6)
    assert start_probability(scores, 7, [3, 5]) is None


def read(name):
    return [json.loads(line) for line in (ROOT / "corpora/squad2" / name).read_text(encoding="utf-8").splitlines()]


def test_calibration_and_report_questions_are_disjoint():
    cal, held = read("questions_calibrate.jsonl"), read("questions_heldout.jsonl")
    assert len(cal) == 1634 and len(held) == 867
    assert not {q["id"] for q in cal} & {q["id"] for q in held}
    for rows in (cal, held):
        kinds = {q.get("unanswerable_type") for q in rows}
        assert kinds == {None, "squad_adversarial", "not_in_corpus"}
