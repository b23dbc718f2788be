"""The messages sent to the model: numbered sources for an answer, the self-check that
asks whether the sources state the answer, and the rewrite of a follow-up question
into a standalone one."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from ..settings import DEFAULT_SYSTEM_PROMPT
from ..textutil import normalize_answer
from ..types import Hit
from .citations import strip_markers
from .injection import fence

ABSTAIN_TEXT = "I cannot answer that from these documents."
CHECK_QUESTION = "Is your answer stated in the sources? Reply yes or no."
CONTENT_FREE = "N/A"
ANSWER_CUE = "Answer, citing the source number like [1]:"

# Worked examples given as earlier turns of the chat, written for ragqa (no evaluation
# text, and about nothing a user's documents are likely to hold: an example about the
# demo corpus's subject made the 135M model answer the demo question with the example's
# answer). On 100 answerable SQuAD questions (bundled model, top_k 2, context_tokens 32)
# these examples gave 44 right drafts; without the last two, 39.
EXAMPLES = (
    ("[1] (volcanoes) Mount Etna erupted violently in 1669 and destroyed the town of Nicolosi.\n\n"
     "[2] (bees) A honey bee colony has one queen and thousands of workers.",
     "Which town did Etna destroy?", "Nicolosi [1]"),
    ("[1] (bridges) The Brooklyn Bridge opened in 1883 after fourteen years of work.\n\n"
     "[2] (canals) The Erie Canal was completed in 1825 and linked the Hudson River to Lake Erie.",
     "When was the Erie Canal completed?", "1825 [2]"),
    ("[1] (lighthouses) The Pharos of Alexandria was a lighthouse built by the Ptolemaic Kingdom.\n\n"
     "[2] (wonders) It was one of the Seven Wonders of the Ancient World.",
     "Who built the Pharos of Alexandria?", "the Ptolemaic Kingdom [1]"),
)


def _user(sources_text: str, question: str) -> str:
    return f"Sources:\n{sources_text}\n\nQuestion: {question.strip()}\n{ANSWER_CUE}"


def _examples() -> list[dict[str, str]]:
    out = []
    for sources_text, question, answer in EXAMPLES:
        out += [{"role": "user", "content": _user(sources_text, question)}, {"role": "assistant", "content": answer}]
    return out


# A small reader sometimes answers a question its sources do not answer with a worked
# example's answer ("the Ptolemaic Kingdom [1]": Qwen2.5-Coder-1.5B in 9 of 2,694 SQuAD
# calibration drafts, 0.5B in 17 of 1,952). Such a draft is not shown: the answer is drafted
# again, from the same prompt, as a verbatim span of its sources (steps.Answering.generate;
# drafted without the examples instead, the 0.5B answered 7 of those 17 with the system
# prompt's own example, "Thomas Savery"), and streaming holds back the first pieces while
# they could still become one.
_MARKER_OR_PART = re.compile(r"\[[^\]]*\]?")
_SHOWN_ANSWERS = (*(a for *_, a in EXAMPLES), DEFAULT_SYSTEM_PROMPT.rpartition("like: ")[2])  # and the format's
_EXAMPLE_ANSWERS = tuple(normalize_answer(_MARKER_OR_PART.sub(" ", a)) for a in _SHOWN_ANSWERS)


def _lower_words(text: str) -> str:
    text = _MARKER_OR_PART.sub(" ", text.lower())
    return " ".join("".join(ch for ch in text if ch not in string.punctuation).split())


def copyable_answers(source_texts: Sequence[str]) -> tuple[str, ...]:
    """The examples' answers (normalized) that none of these sources holds: a draft equal to
    one of them can only be a copy."""
    held = f" {normalize_answer(' '.join(source_texts))} "
    return tuple(a for a in _EXAMPLE_ANSWERS if f" {a} " not in held)


def may_become_example_answer(partial: str, copyable: Sequence[str] = _EXAMPLE_ANSWERS) -> bool:
    """Whether a draft that begins so could still end as one of the `copyable` answers."""
    start = _lower_words(partial)
    return any(f"{article}{a}".startswith(start) for a in copyable for article in ("", "the ", "a ", "an "))


def copies_example(draft: str, copyable: Sequence[str]) -> bool:
    """The draft is the answer of a worked example (or of the default system prompt's format,
    "Thomas Savery [2]") that its sources do not hold: one of `copyable_answers(sources)`."""
    answer = normalize_answer(_MARKER_OR_PART.sub(" ", draft))
    return bool(answer) and answer in copyable


def _answer_messages(question: str, sources: Sequence[tuple[str, str]], system_prompt: str) -> list[dict[str, str]]:
    lines = [f"[{n}] ({fence(where)}) {fence(' '.join(text.split()))}" for n, (where, text) in enumerate(sources, start=1)]
    return [{"role": "system", "content": system_prompt}, *_examples(),
            {"role": "user", "content": _user("\n\n".join(lines), question)}]


def answer_messages(question: str, sources: Sequence[Hit], system_prompt: str) -> list[dict[str, str]]:
    return _answer_messages(question, [(h.chunk.document + (f", page {h.chunk.page}" if h.chunk.page else ""), h.chunk.text)
                                       for h in sources], system_prompt)


def check_messages(question: str, sources: Sequence[Hit], system_prompt: str, draft: str) -> list[dict[str, str]]:
    """The answer's own conversation, then: is that answer stated in the sources? Its prefix
    is the answer prompt, so llama.cpp evaluates only the new turn."""
    return answer_messages(question, sources, system_prompt) + [
        {"role": "assistant", "content": draft}, {"role": "user", "content": CHECK_QUESTION}]


def content_free_check_messages(question: str, n_sources: int, system_prompt: str, draft: str) -> list[dict[str, str]]:
    """The same check with every source replaced by a content-free text: how much the model
    says "yes" without evidence (contextual calibration, Zhao et al., 2021)."""
    sources = [(CONTENT_FREE, CONTENT_FREE)] * max(1, n_sources)
    return _answer_messages(question, sources, system_prompt) + [
        {"role": "assistant", "content": draft}, {"role": "user", "content": CHECK_QUESTION}]


SENTENCE_CHECK_SYSTEM = ("You check answers strictly. A sentence supports an answer only if it states that "
                         "answer to the exact question asked, not to a similar question about something else.")


def sentence_check_messages(question: str, sentence: str, draft: str) -> list[dict[str, str]]:
    """Does the one sentence the answer cites state that answer to this exact question? A
    short prompt of its own: no sources, no worked examples, not the answer's conversation
    (there the reader mostly agrees with itself: AUROC 0.62 against 0.79 apart, docs/readers.md).
    A question written to look answerable shares the sentence's words but asks about
    something it does not say."""
    return [{"role": "system", "content": SENTENCE_CHECK_SYSTEM},
            {"role": "user", "content": f"Sentence: {fence(' '.join(sentence.split()))}\nQuestion: {question.strip()}\n"
                                        f"Answer: {strip_markers(draft)}\nDoes the sentence state this answer to this "
                                        "exact question? Reply yes or no."}]


def condense_messages(history: Sequence[tuple[str, str]], question: str) -> list[dict[str, str]]:
    convo = "\n".join(f"User: {q}\nAssistant: {a}" for q, a in history[-3:])
    return [
        {"role": "system", "content": "Rewrite the user's last question so that it can be understood without "
                                      "the conversation. Reply with the rewritten question only."},
        {"role": "user", "content": f"Conversation:\n{convo}\n\nLast question: {question}\nRewritten question:"},
    ]
