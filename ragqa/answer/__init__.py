"""The steps of one question, over parts given to them (steps.py), and policy.py: THE
decision to answer or abstain. Also retrieval, the prompt's context and grammar, citations,
signals and the scorer. Imports models/, index/ and ingest/ (chunking), never the facade."""
