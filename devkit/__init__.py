"""Helpers shared by tests/, bench/, drills/ and tools/ (never imported by ragqa itself):
documents made on the spot, a PostgreSQL server started for a run, a ragqa server
process, the CLI parsed without running it, rows and vectors for index tests.

Everything here runs from the repository's root: pytest puts it on the path
(`pythonpath` in pyproject.toml), and the scripts run as modules (`python -m drills.kill`)."""
