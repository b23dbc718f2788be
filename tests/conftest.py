from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "corpora" / "demo"


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A small folder of documents about unrelated subjects."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "volcanoes.txt").write_text(
        "Volcanoes\n\nMount Etna is an active volcano on the east coast of Sicily. "
        "It erupted violently in 1669 and destroyed the town of Nicolosi.\n\n"
        "Etna is the highest active volcano in Europe outside the Caucasus.\n", encoding="utf-8")
    (folder / "bees.md").write_text(
        "# Bees\n\nHoney bees communicate the location of flowers with a waggle dance. "
        "A colony has one queen, thousands of workers and a few hundred drones.\n", encoding="utf-8")
    (folder / "lighthouse.html").write_text(
        "<html><head><title>Lighthouse</title><script>alert('no')</script></head><body>"
        "<p>The Pharos of Alexandria was a lighthouse built by the Ptolemaic Kingdom.</p>"
        "<p>It was one of the Seven Wonders of the Ancient World.</p></body></html>", encoding="utf-8")
    return folder


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "demo"
    shutil.copytree(DEMO, folder)
    return folder


@pytest.fixture
def fake_rag(tmp_path: Path):
    from ragqa import RAG
    from ragqa.testing import ExtractiveGenerator, HashEmbedder

    # no calibration applies to the fakes: a threshold of the test's own, so that drafts can be given
    rag = RAG(tmp_path / "index", embedder=HashEmbedder(), generator=ExtractiveGenerator(), min_relevance=0.1,
              min_confidence=0.5)
    yield rag
    rag.close()


def pytest_collection_modifyitems(items):
    """A test that uses the real PostgreSQL server is an integration test (`make test-fast`,
    `-m "not integration"`, leaves it out), whichever fixture brought the server in."""
    for item in items:
        on_postgres = "postgres_server" in getattr(item, "fixturenames", ()) or \
            getattr(getattr(item, "callspec", None), "params", {}).get("db_url") == "postgresql"
        if on_postgres:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch):
    """Tests see only the settings they set themselves."""
    import os

    for key in list(os.environ):
        if key.startswith("RAGQA_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def llama_runs() -> str | None:
    """None when the bundled GGUF answers a short chat in a child process; else why not.
    A llama.cpp build this CPU cannot run would kill pytest itself at the first prompt, so
    the tests that load the real model in this process are skipped then, and
    tests/test_llama_check.py fails with the signal."""
    from ragqa.errors import RagqaError
    from ragqa.models.llama_check import smoke
    from ragqa.models.paths import bundled_gguf_path

    try:
        smoke(bundled_gguf_path(), n_threads=2)
    except RagqaError as e:
        return str(e)
    return None


@pytest.fixture(autouse=True)
def _real_model_runs_here(request):
    if request.node.get_closest_marker("integration") is not None:
        why = request.getfixturevalue("llama_runs")
        if why:
            pytest.skip(f"the real GGUF crashed in a child process: {why}")


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server, started for this test session (see tests/postgres.py)."""
    from devkit.postgres import Server, binaries

    bindir = binaries()
    if bindir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: `apt-get install postgresql` (.ci/run does)")
    server = Server(bindir).start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server, request) -> str:
    """SQLAlchemy URL of a new, empty database on the test server."""
    import re

    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:50] + f"_{id(request) % 100000}"
    return postgres_server.create_database(name)


@pytest.fixture
def pgvector_url(postgres_server, request) -> str:
    """A new, empty database on a test server that has the pgvector extension."""
    from devkit.postgres import has_pgvector

    if not has_pgvector(postgres_server.bindir):
        pytest.skip(f"the PostgreSQL at {postgres_server.bindir} has no pgvector: `pip install pgserver` "
                    "(a dev dependency; `make install` does) or install pgvector for it")
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """The same test on SQLite and on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ragqa.db'}"
    return request.getfixturevalue("postgres_url")
