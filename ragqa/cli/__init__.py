"""`ragqa` on the command line (ragqa.cli.app), a thin layer over ragqa.rag.RAG."""
