"""Citations: parse the answer's `[n]` markers, check each names a source that was
given, and ground it to the sentence of that source that best supports the claim,
as a character span of the original document."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..ingest.chunking import sentence_spans
from ..textutil import content_words, numbers
from ..types import Citation, Hit

_MARKER = re.compile(r"\[(?:source\s*)?(\d+(?:\s*[,;]\s*(?:source\s*)?\d+)*)\]", re.IGNORECASE)


@dataclass(frozen=True)
class CitationCheck:
    citations: tuple[Citation, ...]  # valid ones, grounded to spans
    invalid: tuple[int, ...]  # numbers that name no given source
    grounding: float  # share of the answer's content words found in the cited sources
    numbers_supported: bool  # every number in the answer appears in a cited source


def markers(answer: str) -> list[tuple[int, int, int]]:
    """(n, start, end) of every cited number, in order."""
    out = []
    for m in _MARKER.finditer(answer):
        for n in re.findall(r"\d+", m.group(1)):
            out.append((int(n), m.start(), m.end()))
    return out


def strip_markers(answer: str) -> str:
    return re.sub(r"\s+([.,;:!?])", r"\1", _MARKER.sub("", answer)).strip()


def _claim_for(answer: str, pos: int) -> str:
    """The sentence of the answer that the marker at `pos` closes (or, for a marker that
    opens the answer, the sentence after it)."""
    for start, end in sentence_spans(answer):
        if start <= pos <= end + 1:
            claim = strip_markers(answer[start:end])
            if content_words(claim):
                return claim
    return strip_markers(answer)


def ground(claim: str, hit: Hit) -> tuple[int, int, str, float]:
    """The sentence of the hit's chunk that shares most content words with the claim:
    (start, end) in the document, the quote, and the share of the claim it covers."""
    want = content_words(claim)
    text = hit.chunk.text
    best = (0, len(text), 0.0)
    for s, e in sentence_spans(text):
        have = content_words(text[s:e])
        score = len(want & have) / len(want) if want else 0.0
        if score > best[2]:
            best = (s, e, score)
    s, e, score = best
    return hit.chunk.start + s, hit.chunk.start + e, text[s:e], score


def check(answer: str, sources: Sequence[Hit]) -> CitationCheck:
    found = markers(answer)
    citations: dict[int, Citation] = {}
    invalid: list[int] = []
    for n, start, _end in found:
        if not 1 <= n <= len(sources):
            if n not in invalid:
                invalid.append(n)
            continue
        hit = sources[n - 1]
        claim = _claim_for(answer, start)
        s, e, quote, support = ground(claim, hit)
        if n not in citations or support > citations[n].support:
            citations[n] = Citation(n=n, document=hit.chunk.document, path=hit.chunk.path, page=hit.chunk.page,
                                    start=s, end=e, quote=quote, support=round(support, 4))
    cited_text = " ".join(sources[n - 1].chunk.text for n in citations)
    body = strip_markers(answer)
    want = content_words(body)
    grounding = len(want & content_words(cited_text)) / len(want) if want and citations else 0.0
    nums_ok = numbers(body) <= numbers(cited_text) if citations else False
    return CitationCheck(citations=tuple(citations[n] for n in sorted(citations)), invalid=tuple(invalid),
                         grounding=round(grounding, 4), numbers_supported=nums_ok)
