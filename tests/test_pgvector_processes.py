"""Machines that share nothing but the database (pgvector): a server and two workers, each
with a folder of its own, on a real PostgreSQL with pgvector and the real models. The
server answers from vectors the workers committed after it started, reloading nothing."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devkit.servers import cli, start_server

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
KEY = "pgvector-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def machine(tmp_path: Path, name: str, url: str) -> dict[str, str]:
    """The environment of a process on its own 'machine': its own index folder."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")},
            "RAGQA_INDEX": str(tmp_path / name / "index"), "RAGQA_DATABASE_URL": url, "RAGQA_VECTOR_STORE": "pgvector",
            "RAGQA_API_KEY": KEY, "RAGQA_CALIBRATION": "off"}


def test_a_server_answers_from_what_workers_on_other_machines_committed(tmp_path, pgvector_url):
    docs = tmp_path / "shared-corpus"
    shutil.copytree(ROOT / "corpora" / "demo", docs)
    (tmp_path / "api").mkdir()
    proc, log, url = start_server(tmp_path / "api", machine(tmp_path, "api", pgvector_url), "--no-worker")
    try:
        client = httpx.Client(base_url=url, timeout=120)
        assert client.get("/v1/status", headers=AUTH).json()["documents"] == 0  # no index yet
        queued = cli(machine(tmp_path, "cli", pgvector_url), "ingest", str(docs), "--queue", "--files-per-job", "1", "--json")
        assert queued.returncode == 0, queued.stderr
        workers = [subprocess.Popen([sys.executable, "-m", "ragqa.cli", "worker", "--exit-when-idle"],
                                    env=machine(tmp_path, f"worker{i}", pgvector_url), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for i in (1, 2)]
        for w in workers:
            _, err = w.communicate(timeout=600)
            assert w.returncode == 0, err
        status = client.get("/v1/status", headers=AUTH).json()
        assert status["documents"] == 3 and status["chunks"] == status["vectors"] > 50, status
        assert status["jobs"]["done"] == 3
        r = client.post("/v1/ask", headers=AUTH, json={"question": "Who developed a steam-powered water pump in 1698?"})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["sources"][0]["document"] == "steam_engine" and "Savery" in answer["sources"][0]["text"]
        for name in ("api", "cli", "worker1", "worker2"):  # no vectors and no manifest in any folder
            folder = tmp_path / name / "index"
            assert not (folder / "vectors.faiss").exists() and not (folder / "manifest.json").exists()
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()
    info = json.loads(cli(machine(tmp_path, "laptop", pgvector_url), "status", "--json").stdout)
    assert info["vector_store"] == "pgvector" and info["vector_index"] == "pgvector exact"


def test_migrate_vectors_moves_an_index_both_ways_and_it_answers_the_same(tmp_path, pgvector_url):
    env = {**machine(tmp_path, "laptop", pgvector_url)}
    del env["RAGQA_VECTOR_STORE"]  # a FAISS index whose rows are on PostgreSQL
    assert cli(env, "ingest", str(ROOT / "corpora" / "demo")).returncode == 0
    question = "Who developed a steam-powered water pump in 1698?"

    def sources() -> list[tuple[str, float]]:
        out = cli(env, "ask", question, "--json")
        assert out.returncode == 0, out.stderr
        return [(s["document"], s["score"]) for s in json.loads(out.stdout)["sources"]]

    before = sources()
    moved = cli(env, "migrate-vectors", "--to", "pgvector")
    assert moved.returncode == 0 and "pgvector exact" in moved.stdout, moved.stderr
    assert json.loads(cli(env, "status", "--json").stdout)["vector_store"] == "pgvector"
    after = sources()
    assert [d for d, _ in after] == [d for d, _ in before]
    assert [s for _, s in after] == pytest.approx([s for _, s in before], abs=1e-4)
    refused = cli({**env, "RAGQA_VECTOR_STORE": "faiss"}, "ask", question)
    assert refused.returncode == 1 and "migrate-vectors --to faiss" in refused.stderr
    assert "Traceback" not in refused.stderr
    back = cli(env, "migrate-vectors", "--to", "faiss")
    assert back.returncode == 0 and "IDMap2,Flat" in back.stdout, back.stderr
    assert json.loads(cli(env, "status", "--json").stdout)["vector_store"] == "faiss"
    assert sources() == before
