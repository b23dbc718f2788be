from ragqa.answer.citations import check, markers, strip_markers
from ragqa.types import Chunk, Hit


def hit(text: str, doc: str = "d", start: int = 100, page=None) -> Hit:
    return Hit(Chunk(id=1, document_id=1, document=doc, path=f"/x/{doc}.txt", ordinal=0, text=text,
                     start=start, end=start + len(text), page=page), score=0.8, rank=1)


SOURCES = [
    hit("Mount Etna is in Sicily. It erupted in 1669 and destroyed Nicolosi.", "etna", 100),
    hit("Honey bees dance to show where flowers are. A colony has one queen.", "bees", 0, page=3),
]


def test_markers_are_parsed_including_lists():
    assert [n for n, *_ in markers("A [1]. B [2, 3]. C [Source 4].")] == [1, 2, 3, 4]
    assert strip_markers("Etna erupted in 1669 [1].") == "Etna erupted in 1669."


def test_citation_is_grounded_to_the_supporting_sentence_span():
    result = check("Etna erupted in 1669 [1].", SOURCES)
    (c,) = result.citations
    assert (c.n, c.document, c.quote) == (1, "etna", "It erupted in 1669 and destroyed Nicolosi.")
    text = SOURCES[0].chunk.text
    assert (c.start, c.end) == (100 + text.index("It erupted"), 100 + len(text))
    assert result.grounding == 1.0 and result.numbers_supported and not result.invalid


def test_invalid_citation_numbers_are_reported_not_shown():
    result = check("Etna erupted in 1669 [7].", SOURCES)
    assert result.citations == () and result.invalid == (7,) and result.grounding == 0.0


def test_answer_not_in_the_cited_source_has_low_grounding():
    result = check("Etna erupted in 1669 [2].", SOURCES)
    assert result.citations[0].document == "bees"
    assert result.grounding < 0.5 and not result.numbers_supported


def test_wrong_number_is_caught():
    assert not check("Etna erupted in 1700 [1].", SOURCES).numbers_supported


def test_page_is_carried():
    (c,) = check("A colony has one queen [2].", SOURCES).citations
    assert c.page == 3
