"""Lexical index kept in step with the rows, and hybrid fusion."""

import sqlite3

import numpy as np
import pytest

from ragqa.answer.retrieval import FUSIONS, Retriever, fuse
from ragqa.errors import ConfigError
from ragqa.index import lexical
from ragqa.index.store import NewDocument, Store
from ragqa.testing import HashEmbedder
from ragqa.types import ChunkSpan

INFO = {"name": "hash-embedder", "dimension": 256, "max_tokens": 128}
CHUNKING = {"chunk_tokens": 50, "chunk_overlap": 10}


def new_doc(path, texts, embedder):
    chunks = [ChunkSpan(text=t, start=0, end=len(t), page=None, n_tokens=len(t.split())) for t in texts]
    return NewDocument(path=path, name=path, sha256=path + str(len(texts)), size=1, mtime=0.0, chunks=chunks,
                       vectors=embedder.embed(texts))


def open_w(tmp_path):
    return Store.open(tmp_path / "idx", f"sqlite:///{tmp_path / 'idx' / 'ragqa.db'}", INFO, CHUNKING, write=True)


def test_lexical_index_follows_every_write(tmp_path):
    emb = HashEmbedder()
    with open_w(tmp_path) as s:
        s.put_documents([new_doc("etna", ["Etna erupted in 1669 and destroyed Nicolosi."], emb),
                         new_doc("bees", ["Honey bees dance to show where flowers are."], emb)])
        assert [s.chunks([i])[i].document for i, _ in s.lexical_search("Nicolosi eruption", 5)] == ["etna"]
        s.put_documents([new_doc("etna", ["Etna is the highest volcano in Europe."], emb)])  # replaced
        assert s.lexical_search("Nicolosi", 5) == []
        assert len(s.lexical_search("volcano Europe", 5)) == 1
        s.remove_documents(["bees"])
        assert s.lexical_search("flowers", 5) == []


def test_a_query_of_operators_and_quotes_is_searched_as_words(tmp_path):
    emb = HashEmbedder()
    with open_w(tmp_path) as s:
        s.put_documents([new_doc("a", ['He said "NEAR" and OR AND NOT (x) *'], emb)])
        assert len(s.lexical_search('"NEAR" OR) AND* (', 5)) == 1
        assert s.lexical_search("   ", 5) == []


def test_an_index_made_before_the_lexical_table_gets_it_on_the_next_write(tmp_path):
    emb = HashEmbedder()
    with open_w(tmp_path) as s:
        s.put_documents([new_doc("etna", ["Etna destroyed Nicolosi."], emb)])
    db = sqlite3.connect(tmp_path / "idx" / "ragqa.db")
    for trigger in ("chunks_fts_insert", "chunks_fts_delete", "chunks_fts_update"):
        db.execute(f"DROP TRIGGER {trigger}")
    db.execute(f"DROP TABLE {lexical.TABLE}")
    db.commit()
    db.close()
    with Store.open(tmp_path / "idx", f"sqlite:///{tmp_path / 'idx' / 'ragqa.db'}") as r:
        assert r.lexical_search("Nicolosi", 5) == []  # read-only: nothing to search, no error
    with open_w(tmp_path) as s:
        assert len(s.lexical_search("Nicolosi", 5)) == 1  # rebuilt from the rows


def test_hybrid_fuses_both_rankings_and_keeps_cosine_scores(tmp_path):
    emb = HashEmbedder()
    texts = {
        "dense_only": "volcano eruption lava ash crater magma",
        "lexical_only": "Nicolosi Nicolosi Nicolosi town",
        "both": "volcano eruption destroyed Nicolosi",
    }
    with open_w(tmp_path) as s:
        s.put_documents([new_doc(k, [v], emb) for k, v in texts.items()])
        query = "volcano eruption Nicolosi"
        dense = Retriever(s, emb, mode="dense").search(query, 3)
        lex = Retriever(s, emb, mode="lexical").search(query, 3)
        hybrid = Retriever(s, emb, mode="hybrid").search(query, 3)
        assert hybrid[0].chunk.document == "both"  # near the top of both lists
        assert all(h.lexical_rank is None for h in dense) and all(h.dense_rank is None for h in lex)
        # every hit carries its cosine to the question, also those found by lexical search only
        q = emb.embed([query])[0]
        for h in hybrid + lex:
            v = emb.embed([h.chunk.text])[0]
            assert abs(h.score - float(np.dot(q, v))) < 1e-5
        # a weight of zero leaves one ranking alone, in either fusion
        for fusion in FUSIONS:
            only_dense = Retriever(s, emb, mode="hybrid", fusion=fusion, lexical_weight=0.0).search(query, 3)
            assert [h.chunk.id for h in only_dense] == [h.chunk.id for h in dense]
            assert Retriever(s, emb, mode="hybrid", fusion=fusion).search(query, 1)[0].chunk.document == "both"


def test_rrf_sums_weighted_reciprocal_ranks():
    dense, lexical = [(1, 0.9), (2, 0.8), (3, 0.1)], [(3, 12.0), (4, 5.0)]
    cosine = {1: 0.9, 2: 0.8, 3: 0.1, 4: 0.05}
    # 1: 1/61; 2: 1/62; 3: 1/63 + 1/61; 4: 1/62
    assert fuse(dense, lexical, cosine, method="rrf") == [3, 1, 2, 4]  # 2 and 4 tie: the dense rank decides
    # 3 is best if lexical is weighted 2: 1/63 + 2/61; 4: 2/62 beats 1: 1/61
    assert fuse(dense, lexical, cosine, method="rrf", lexical_weight=2.0) == [3, 4, 1, 2]


def test_convex_fusion_adds_scaled_cosine_and_scaled_bm25():
    dense, lexical = [(1, 0.9), (2, 0.5)], [(2, 10.0), (3, 4.0)]
    cosine = {1: 0.9, 2: 0.5, 3: 0.1}
    # scaled cosine: 1 -> 1.0, 2 -> 0.5, 3 -> 0.0; scaled BM25: 2 -> 1.0, 3 -> 0.4, 1 -> 0
    assert fuse(dense, lexical, cosine, method="convex") == [2, 1, 3]  # 1.5, 1.0, 0.4
    assert fuse(dense, lexical, cosine, method="convex", dense_weight=3.0) == [1, 2, 3]  # 3.0, 2.5, 0.4
    assert fuse([], [], {}, method="convex") == []
    with pytest.raises(ConfigError):
        fuse(dense, lexical, cosine, method="borda")


def test_lexical_mode_keeps_the_bm25_order(tmp_path):
    emb = HashEmbedder()
    with open_w(tmp_path) as s:
        s.put_documents([new_doc(k, [v], emb) for k, v in {
            "many": "Nicolosi Nicolosi Nicolosi town", "once": "volcano eruption destroyed Nicolosi crater"}.items()])
        query = "Nicolosi volcano eruption crater"
        bm25 = [s.chunks([i])[i].document for i, _ in s.lexical_search(query, 5)]
        assert [h.chunk.document for h in Retriever(s, emb, mode="lexical").search(query, 5)] == bm25
