"""The prompt's sources under a token budget: best sentences, contiguous excerpts whose
offsets still point at the document, and citations grounded through them."""

from ragqa.answer import context
from ragqa.answer.citations import check
from ragqa.types import Chunk, Hit

DOC = ("Using boiling water to make motion is old. The Spanish inventor Ayanz patented a steam engine in 1606. "
       "In 1698 Thomas Savery patented a steam pump. It raised water from mines. Newcomen built an engine in 1712.")
OFFSET = 500  # the chunk starts 500 characters into its document


def hits():
    chunk = Chunk(id=1, document_id=1, document="steam", path="/d/steam.txt", ordinal=0, text=DOC,
                  start=OFFSET, end=OFFSET + len(DOC), page=None)
    other = Chunk(id=2, document_id=2, document="bees", path="/d/bees.txt", ordinal=0,
                  text="Bees make honey. A colony has one queen.", start=0, end=40, page=None)
    return [Hit(chunk=chunk, score=0.7, rank=1, dense_rank=1, lexical_rank=2),
            Hit(chunk=other, score=0.2, rank=2, dense_rank=2, lexical_rank=None)]


def words(text):
    return len(text.split())


def no_dense(question, sentences):
    return [0.0] * len(sentences)


def test_a_budget_of_zero_keeps_whole_chunks():
    assert context.select("anything", hits(), budget=0, count_tokens=words, score=no_dense) == hits()


def test_best_sentences_within_the_budget_as_contiguous_excerpts_with_document_offsets():
    out = context.select("Who patented a steam pump in 1698?", hits(), budget=14, count_tokens=words, score=no_dense)
    # "In 1698 ... steam pump." (8 words) is best, then "... patented a steam engine in 1606." (10) no longer
    # fits, "It raised water from mines." (5) does, and it follows the best one: one excerpt of two sentences
    assert [h.chunk.text for h in out] == ["In 1698 Thomas Savery patented a steam pump. It raised water from mines."]
    h = out[0]
    assert DOC[h.chunk.start - OFFSET: h.chunk.end - OFFSET] == h.chunk.text
    assert (h.score, h.dense_rank, h.lexical_rank, h.rank, h.chunk.id) == (0.7, 1, 2, 1, 1)
    assert sum(words(x.chunk.text) for x in out) <= 14


def test_separate_runs_become_separate_sources_best_first():
    scores = {"Newcomen built an engine in 1712.": 1.0, "Using boiling water to make motion is old.": 0.5}

    def dense(question, sentences):
        return [scores.get(s, 0.0) for s in sentences]

    out = context.select("zzz", hits(), budget=15, count_tokens=words, score=dense)
    assert [h.chunk.text for h in out] == ["Newcomen built an engine in 1712.", "Using boiling water to make motion is old."]
    assert [h.rank for h in out] == [1, 2]


def test_the_best_sentence_is_kept_even_beyond_the_budget():
    out = context.select("Savery steam pump 1698", hits(), budget=1, count_tokens=words, score=no_dense)
    assert [h.chunk.text for h in out] == ["In 1698 Thomas Savery patented a steam pump."]


def test_a_citation_of_an_excerpt_is_grounded_in_the_original_document():
    out = context.select("Who patented a steam pump in 1698?", hits(), budget=14, count_tokens=words, score=no_dense)
    checked = check("Thomas Savery [1]", out)
    (c,) = checked.citations
    assert DOC[c.start - OFFSET: c.end - OFFSET] == c.quote == "In 1698 Thomas Savery patented a steam pump."
    assert checked.grounding == 1.0
