"""One index: SQL rows and vectors kept in step (store.py) behind one VectorStore contract
(vectors.py) with a module per store (FAISS, pgvector), the manifest, migration between the
stores, lexical search and the writer lock."""
