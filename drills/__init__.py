"""Fault drills that pass or fail: `make drills` (python -m drills)."""
