"""Ingest: discover files, read each in a child process (file_reader.py), chunk at sentence
boundaries, embed, and store (run.py)."""
