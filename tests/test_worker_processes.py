"""`ragqa worker` processes with the real MiniLM on a real PostgreSQL server: a worker
killed in the middle of a job loses it to another once its lease runs out, two workers
finish the queue, and the index they wrote is consistent and answers."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devkit.servers import cli

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent



def long_ledger(folder: Path) -> Path:
    """A file that takes a worker several seconds (about 600 chunks), so that a kill lands
    while its job runs: a demo file's job takes well under a second with int8 embeddings, less
    than the test needs to see the job running."""
    folder.mkdir()
    lines = [f"Ledger entry {i}: warehouse {i % 97} received {i * 7 % 1000} crates of item {i * 13 % 503}, "
             f"counted by clerk {i % 41} on shelf {i % 59}." for i in range(5000)]
    path = folder / "ledger.txt"
    path.write_text("\n\n".join(" ".join(lines[k:k + 4]) for k in range(0, len(lines), 4)), encoding="utf-8")
    return path


def test_killed_worker_loses_its_job_to_another_and_the_index_stays_consistent(tmp_path, postgres_url):
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "corpora" / "demo", docs)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")},
           "RAGQA_INDEX": str(tmp_path / "index"), "RAGQA_DATABASE_URL": postgres_url,
           "RAGQA_JOB_LEASE": "3", "RAGQA_CALIBRATION": "off", "RAGQA_MIN_CONFIDENCE": "0.5"}  # a threshold of the test's own
    ids = []
    for folder in (long_ledger(tmp_path / "ledger").parent, docs):  # the ledger's job first: workers take the oldest
        queued = cli(env, "ingest", str(folder), "--queue", "--files-per-job", "1", "--json")
        assert queued.returncode == 0, queued.stderr
        ids += [j["id"] for j in json.loads(queued.stdout)]
    assert len(ids) == 4

    def jobs():
        out = cli(env, "jobs", "--json")
        assert out.returncode == 0, out.stderr
        return {j["id"]: j for j in json.loads(out.stdout)["jobs"]}

    doomed = subprocess.Popen([sys.executable, "-m", "ragqa.cli", "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (running := [j for j in jobs().values() if j["state"] == "running"]):
        assert time.monotonic() < deadline and doomed.poll() is None
        time.sleep(0.1)
    doomed.send_signal(signal.SIGKILL)  # no chance to finish or to give the job back
    doomed.wait(30)
    lost = running[0]["id"]
    assert lost == ids[0]
    assert jobs()[lost]["state"] == "running"  # still leased to the dead worker
    time.sleep(3.5)  # the lease runs out

    workers = [subprocess.Popen([sys.executable, "-m", "ragqa.cli", "worker", "--exit-when-idle"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=600)
        assert w.returncode == 0, err
    final = jobs()
    assert {final[i]["state"] for i in ids} == {"done"}
    assert final[lost]["attempts"] == 2 and final[lost]["worker"] != running[0]["worker"]

    status = cli(env, "status", "--json")
    st = json.loads(status.stdout)
    assert st["database"].startswith("postgresql+psycopg://")
    assert st["documents"] == 4 and st["chunks"] == st["vectors"] > 50
    assert not (tmp_path / "index" / ".write.pending").exists()

    asked = cli(env, "ask", "Who developed a steam-powered water pump in 1698?", "--json")
    answer = json.loads(asked.stdout)
    assert not answer["abstained"], answer["reason"]
    assert "Savery" in answer["answer"] and {c["document"] for c in answer["citations"]} == {"steam_engine"}
