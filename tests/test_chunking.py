from ragqa.ingest.chunking import chunk_text, sentence_spans
from ragqa.types import LoadedText, Page


def count(text: str) -> int:
    return len(text.split())


def test_sentences_keep_abbreviations_and_initials_together():
    text = "Dr. Smith went to the U.S. in 1900. He met J. Watt there! Was it fine? Yes."
    got = [text[s:e] for s, e in sentence_spans(text)]
    assert got == ["Dr. Smith went to the U.S. in 1900.", "He met J. Watt there!", "Was it fine?", "Yes."]


def test_every_chunk_is_the_exact_source_span_and_within_budget():
    sentences = [f"Sentence number {i} talks about topic {i % 7} at some length here." for i in range(120)]
    text = "\n\n".join(" ".join(sentences[i: i + 6]) for i in range(0, 120, 6))
    chunks = chunk_text(text, count, max_tokens=50, overlap_tokens=12)
    assert len(chunks) > 10
    for c in chunks:
        assert text[c.start: c.end] == c.text
        assert c.n_tokens == count(c.text) <= 50
    # every sentence is in some chunk
    covered = " ".join(c.text for c in chunks)
    assert all(s in covered for s in sentences)


def test_overlap_repeats_trailing_sentences_within_a_paragraph():
    text = " ".join(f"Alpha beta gamma delta {i}." for i in range(40))  # one paragraph, 5 words each
    chunks = chunk_text(text, count, max_tokens=20, overlap_tokens=10)
    assert len(chunks) >= 3
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end, "consecutive chunks of one paragraph overlap"
        assert a.end - b.start <= len(text[b.start: a.end])
        assert count(text[b.start: a.end]) <= 10


def test_sentence_longer_than_budget_is_cut_between_words():
    text = " ".join(f"w{i}" for i in range(100)) + "."
    chunks = chunk_text(text, count, max_tokens=30, overlap_tokens=0)
    assert len(chunks) == 4
    assert all(c.n_tokens <= 30 for c in chunks)
    assert " ".join(c.text for c in chunks) == text


def test_chunks_know_their_page():
    page1 = "First page text here now. It has two whole sentences."
    page2 = "Second page text is short. Also two whole sentences."
    loaded = LoadedText(text=page1 + "\n\n" + page2 + "\n", pages=(Page(1, 0), Page(2, len(page1) + 2)))
    chunks = chunk_text(loaded, count, max_tokens=8, overlap_tokens=0)
    assert [c.page for c in chunks] == [1, 1, 2, 2]


def test_paragraph_boundary_preferred_over_a_cut_mid_paragraph():
    p1 = " ".join(["One two three four five."] * 6)  # 30 words
    p2 = " ".join(["Six seven eight nine ten."] * 6)
    chunks = chunk_text(p1 + "\n\n" + p2, count, max_tokens=40, overlap_tokens=5)
    assert chunks[0].text == p1
