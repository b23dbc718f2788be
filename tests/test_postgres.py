"""The same index on a real PostgreSQL server: rows, full-text search kept in step by the
database itself, hybrid retrieval and filters (fast fakes for the models)."""

import pytest
from sqlalchemy import create_engine, text

from ragqa import RAG
from ragqa.index import lexical
from ragqa.testing import ExtractiveGenerator, HashEmbedder


@pytest.fixture
def pg_rag(tmp_path, postgres_url):
    # no calibration applies to the fakes: a threshold of the test's own
    rag = RAG(tmp_path / "index", database_url=postgres_url, embedder=HashEmbedder(),
              generator=ExtractiveGenerator(), min_relevance=0.1, min_confidence=0.5)
    yield rag
    rag.close()


def test_ingest_ask_and_cite_on_postgresql(pg_rag, docs):
    report = pg_rag.ingest([docs])
    assert len(report.added) == 3 and not report.failed
    status = pg_rag.status()
    assert status["database"].startswith("postgresql+psycopg://") and status["documents"] == 3
    answer = pg_rag.ask("Which town did Etna destroy in 1669?")
    assert not answer.abstained, answer.reason
    assert "Nicolosi" in answer.answer and [c.document for c in answer.citations] == ["volcanoes"]
    assert len(pg_rag.ingest([docs]).unchanged) == 3  # idempotent by content hash here too


def test_full_text_search_follows_the_rows(pg_rag, docs):
    pg_rag.ingest([docs])
    store = pg_rag._store()
    hits = store.lexical_search("waggle dance of honey bees", 5)
    assert hits and store.chunks([hits[0][0]])[hits[0][0]].document == "bees"
    assert [h.chunk.document for h in pg_rag.retrieve("waggle dance", 1, mode="lexical")] == ["bees"]
    # user text never breaks the query: operators and quotes are plain words
    assert store.lexical_search('bees" OR -queen & !(', 5)
    assert store.lexical_search("the of and", 5) == []  # stop words only: nothing to rank

    (docs / "bees.md").write_text("# Bees\n\nBumblebees nest in the ground.\n", encoding="utf-8")
    pg_rag.ingest([docs])  # changed file: rows replaced, the search follows in the same transaction
    assert pg_rag._store().lexical_search("waggle dance", 5) == []
    assert pg_rag._store().lexical_search("bumblebees nest", 5)


def test_filters_restrict_both_searches(pg_rag, docs):
    pg_rag.ingest([docs])
    hits = pg_rag.retrieve("Etna volcano lighthouse bees", 5, filters={"documents": ["lighthouse"]})
    assert hits and {h.chunk.document for h in hits} == {"lighthouse"}
    prefix = str(docs / "vol")
    assert {h.chunk.document for h in pg_rag.retrieve("Etna", 5, filters={"path_prefix": prefix})} == {"volcanoes"}
    assert pg_rag.ask("Etna", filters={"documents": ["nothing"]}).reason == "no document matches the filters"


def test_an_index_made_without_full_text_search_gets_it(pg_rag, docs, postgres_url):
    pg_rag.ingest([docs])
    pg_rag.close()
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE chunks DROP COLUMN tsv"))
    assert not lexical.available(engine)
    pg_rag.ingest([docs])  # opened for writing: the column is added and filled from the rows
    assert lexical.available(engine)
    assert pg_rag._store().lexical_search("Pharos Alexandria", 3)
    engine.dispose()


def test_rare_words_count_more_than_frequent_ones(tmp_path, postgres_url):
    """The ranking weighs each word by its inverse document frequency, as BM25 does: a short
    chunk repeating a common word loses to one holding the rare word once (without IDF it wins)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(4):
        (folder / f"rivers{i}.txt").write_text("Water, water, water.", encoding="utf-8")
    (folder / "etna.txt").write_text("Lava reached Nicolosi in 1669 and buried its houses.", encoding="utf-8")
    with RAG(tmp_path / "index", database_url=postgres_url, embedder=HashEmbedder(),
             generator=ExtractiveGenerator()) as rag:
        rag.ingest([folder])
        hits = rag.retrieve("water Nicolosi", 5, mode="lexical")
        assert hits[0].chunk.document == "etna" and len(hits) == 5
