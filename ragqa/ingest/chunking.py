"""Text -> chunks cut at sentence and paragraph boundaries, token-aware, with overlap.

Every chunk's text is exactly `source[start:end]`, so a citation can point back at the
characters it came from. No chunk is longer than `max_tokens` as counted by the
embedder's own tokenizer: a sentence longer than that is cut between words."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..types import ChunkSpan, LoadedText

TokenCounter = Callable[[str], int]

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "no",
    "fig", "al", "inc", "ltd", "co", "corp", "u.s", "u.k", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "approx", "ca", "cf", "vol",
}
# A sentence ends at . ! ? (plus closing quotes/brackets) followed by white space.
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s)")
_PARAGRAPH = re.compile(r"\n\s*\n")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    """(start, end) of each sentence in text[start:end], white space trimmed."""
    end = len(text) if end is None else end
    cursor = start
    for m in _SENTENCE_END.finditer(text, start, end):
        word = text[max(start, text.rfind(" ", start, m.start()) + 1): m.start()].lower().strip("(\"'")
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            continue  # "Dr. Smith", "J. Watt"
        nxt = text[m.end(): m.end() + 3].lstrip()
        if nxt and nxt[0].islower():
            continue
        yield from _trimmed(text, cursor, m.end())
        cursor = m.end()
    yield from _trimmed(text, cursor, end)


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        yield start, end


def _paragraph_spans(text: str) -> Iterator[tuple[int, int]]:
    cursor = 0
    for m in _PARAGRAPH.finditer(text):
        yield from _trimmed(text, cursor, m.start())
        cursor = m.end()
    yield from _trimmed(text, cursor, len(text))


def _units(text: str, count: TokenCounter, max_tokens: int) -> Iterator[tuple[_Unit, bool]]:
    """Sentences (cut between words when too long), each flagged when it opens a paragraph."""
    for p_start, p_end in _paragraph_spans(text):
        first = True
        for s_start, s_end in sentence_spans(text, p_start, p_end):
            n = count(text[s_start:s_end])
            if n <= max_tokens:
                yield _Unit(s_start, s_end, n), first
            else:
                for piece in _split_long(text, s_start, s_end, count, max_tokens):
                    yield piece, first
                    first = False
            first = False


def _split_long(text: str, start: int, end: int, count: TokenCounter, max_tokens: int) -> Iterator[_Unit]:
    words = [(m.start(), m.end()) for m in _WORD.finditer(text, start, end)]
    i = 0
    while i < len(words):
        # grow the window word by word; a single over-long "word" is cut by characters
        j, n = i + 1, count(text[words[i][0]: words[i][1]])
        if n > max_tokens:
            w_start, w_end = words[i]
            step = max(1, (w_end - w_start) * max_tokens // (n + 1))
            for c in range(w_start, w_end, step):
                yield _Unit(c, min(c + step, w_end), count(text[c: min(c + step, w_end)]))
            i += 1
            continue
        while j < len(words):
            m = count(text[words[i][0]: words[j][1]])
            if m > max_tokens:
                break
            j, n = j + 1, m
        yield _Unit(words[i][0], words[j - 1][1], n)
        i = j


def chunk_text(
    loaded: LoadedText | str,
    count_tokens: TokenCounter,
    max_tokens: int = 200,
    overlap_tokens: int = 40,
) -> list[ChunkSpan]:
    """Pack whole sentences into chunks of at most `max_tokens`; each chunk after the first
    repeats the last sentences of the one before, up to `overlap_tokens`, unless a new
    paragraph starts there."""
    if isinstance(loaded, str):
        loaded = LoadedText(text=loaded)
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    overlap_tokens = max(0, min(overlap_tokens, max_tokens // 2))
    # A chunk never crosses a page break, so every chunk (and every quote in it) has one page.
    starts = [p.start for p in loaded.pages] or [0]
    bounds = list(zip(starts, starts[1:] + [len(loaded.text)]))
    if bounds[0][0] > 0:
        bounds.insert(0, (0, bounds[0][0]))
    chunks: list[ChunkSpan] = []
    for lo, hi in bounds:
        units = [(_Unit(u.start + lo, u.end + lo, u.tokens), first)
                 for u, first in _units(loaded.text[lo:hi], count_tokens, max_tokens)]
        chunks += _pack(loaded, units, count_tokens, max_tokens, overlap_tokens)
    return chunks


def _pack(loaded: LoadedText, units: list[tuple[_Unit, bool]], count_tokens: TokenCounter,
          max_tokens: int, overlap_tokens: int) -> list[ChunkSpan]:
    text = loaded.text
    chunks: list[ChunkSpan] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and total + units[j][0].tokens <= max_tokens:
            total += units[j][0].tokens
            j += 1
        j = max(j, i + 1)
        # prefer to end where a paragraph ends, when that keeps the chunk at least half full
        for k in range(j - 1, i, -1):
            if j < len(units) and units[k][1] and sum(u.tokens for u, _ in units[i:k]) >= max_tokens // 2:
                j = k
                break
        start, end = units[i][0].start, units[j - 1][0].end
        n = count_tokens(text[start:end])
        while n > max_tokens and j - 1 > i:  # word pieces do not always add up exactly
            j -= 1
            end = units[j - 1][0].end
            n = count_tokens(text[start:end])
        chunks.append(ChunkSpan(text=text[start:end], start=start, end=end, page=loaded.page_at(start), n_tokens=n))
        if j >= len(units):
            break
        # overlap: step back over trailing sentences of this chunk, within the budget
        back, carried = j, 0
        while back - 1 > i and not units[back][1] and carried + units[back - 1][0].tokens <= overlap_tokens:
            back -= 1
            carried += units[back][0].tokens
        i = back if back > i else j
    return chunks
