"""Grammars (llama.cpp GBNF) that shape a draft: a short answer ending in a citation, or a
verbatim span of one source. Generators that cannot constrain output ignore them."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..textutil import content_words

# A short phrase and its citation: longer drafts from small models were rambles that
# restated the question (measured with the few-shot prompt: 80 chars 7/24 right, 300 chars 8/24).
MAX_ANSWER_CHARS = 120


def citation_grammar(n_sources: int, max_chars: int = MAX_ANSWER_CHARS) -> str:
    """GBNF: a one-line answer that ends with one citation marker naming a given source.
    The grammar guarantees the form; whether the cited source supports the answer is
    checked afterwards (ragqa.answer.citations), never assumed."""
    digits = "|".join(f'"{i}"' for i in range(1, max(1, n_sources) + 1))
    return f'root ::= [^\\[\\n] [^\\[\\n]{{0,{max_chars}}} " [" ({digits}) "]"'


_PIECE = re.compile(r"\w+|[^\w\s]")


def _gbnf_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def span_starts(question: str, piece: str) -> bool:
    """Whether an answer span may start at this piece of a source: a word that is neither a
    stop word nor one of the question's own words. An answer that merely repeats the
    question ("the European Parliament" to "Who elects the members of the European
    Parliament?") is the commonest wrong draft of a small model; a leading article
    changes nothing in an answer's meaning."""
    if not piece[0].isalnum():
        return False
    own = content_words(piece)
    return bool(own) and not own <= content_words(question)


def span_candidates(question: str, sources: Sequence[str]) -> list[str]:
    """The words an answer may start with (see span_starts), in source order."""
    return list(dict.fromkeys(m.group() for text in sources for m in _PIECE.finditer(text)
                              if span_starts(question, m.group())))


def span_grammar(sources: Sequence[str], max_words: int = 12, question: str = "") -> str:
    """GBNF: an answer that is a verbatim span of one source (whitespace as the prompt shows
    it), of at most `max_words` words, followed by that source's marker: `Thomas Savery [1]`.
    Grounding holds by construction, and the model's probability of the span it chose
    becomes a clean confidence signal. A span starts at a word allowed by span_starts and
    may end at any piece."""
    rules = []
    alternatives = []
    for n, text in enumerate(sources, start=1):
        flat = " ".join(text.split())
        pieces = [(m.group(), m.start()) for m in _PIECE.finditer(flat)]
        if not pieces:
            continue
        starts = []
        for i, (piece, _at) in enumerate(pieces):
            if not span_starts(question, piece):
                continue
            # span i: pieces i.. up to max_words words, each step optional (the span may stop)
            words, j = 0, i
            tail_parts = []
            while j < len(pieces) and words < max_words:
                p, pos = pieces[j]
                sep = "" if j == i or flat[pos - 1:pos] != " " else " "
                tail_parts.append(_gbnf_literal(sep + p))
                words += p[0].isalnum()
                j += 1
            # nested optionals: a (b (c)?)?
            chain = tail_parts[-1]
            for part in reversed(tail_parts[:-1]):
                chain = f"{part} ({chain})?"
            rules.append(f"s{n}x{i} ::= {chain}")
            starts.append(f"s{n}x{i}")
        if starts:
            rules.append(f"src{n} ::= " + " | ".join(starts))
            alternatives.append(f'src{n} " [{n}]"')
    if not alternatives:
        return citation_grammar(len(sources))
    return "root ::= " + " | ".join(alternatives) + "\n" + "\n".join(rules)

