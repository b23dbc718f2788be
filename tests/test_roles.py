"""Keys with roles on a real `ragqa serve` process: every endpoint of the API (read from its
own OpenAPI description, so that a new one without a decided role fails here) against a key
of each role, made with `ragqa keys add`. A call without its role is a 403 that names the
role; with it (admin has every role, review includes ask), never a 401 or 403."""

from __future__ import annotations

import os

import httpx
import pytest

from devkit.servers import cli, start_server

pytestmark = pytest.mark.integration

# the role each endpoint needs (None: open, or any valid key for FastAPI's own description)
NEEDS = {
    ("GET", "/healthz"): None,
    ("GET", "/v1/status"): "ask",
    ("POST", "/v1/ask"): "ask",
    ("GET", "/v1/models"): "ask",
    ("POST", "/v1/chat/completions"): "ask",
    ("GET", "/v1/questions/{question_id}"): "ask",
    ("GET", "/v1/log"): "review",
    ("GET", "/v1/reviews/next"): "review",
    ("POST", "/v1/reviews"): "review",
    ("GET", "/v1/reviews/progress"): "review",
    ("GET", "/v1/handoff"): "review",
    ("POST", "/v1/calibrate"): "admin",
    ("POST", "/v1/documents"): "admin",
    ("GET", "/v1/documents"): "admin",
    ("DELETE", "/v1/documents/{name}"): "admin",
    ("GET", "/v1/jobs"): "admin",
    ("GET", "/v1/jobs/{job_id}"): "admin",
}
ROLES = ("ask", "review", "admin")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("roles")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}, "RAGQA_INDEX": str(base / "index")}
    keys = {}
    for role in ROLES:
        made = cli(env, "keys", "add", f"{role}-user", "--role", role)
        assert made.returncode == 0, made.stderr
        keys[role] = made.stdout.strip()
    listed = cli(env, "keys", "list")
    assert [line.split()[:2] for line in listed.stdout.splitlines()] == [[f"{r}-user", r] for r in ROLES]
    assert not any(k in listed.stdout for k in keys.values())  # only hashes are kept
    proc, log, url = start_server(base, env, "--no-worker")
    client = httpx.Client(base_url=url, timeout=120)
    yield {"client": client, "keys": keys, "env": env}
    proc.terminate()
    proc.wait(60)
    client.close()
    log.close()


def call(client: httpx.Client, method: str, path: str, key: str | None) -> httpx.Response:
    path = path.replace("{question_id}", "1").replace("{name}", "nothing").replace("{job_id}", "1")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    # an empty body: a call that passes the role check is then refused as invalid (422), never run
    return client.request(method, path, headers=headers, json={} if method == "POST" else None)


def test_every_endpoint_has_a_decided_role(server):
    spec = server["client"].get("/openapi.json", headers={"Authorization": f"Bearer {server['keys']['ask']}"}).json()
    endpoints = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert endpoints == set(NEEDS)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_its_endpoints(server, role):
    c, key = server["client"], server["keys"][role]
    for (method, path), needed in NEEDS.items():
        r = call(c, method, path, key)
        allowed = needed is None or role == "admin" or role == needed or (needed, role) == ("ask", "review")
        if allowed:
            assert r.status_code not in (401, 403), (role, method, path, r.text)
        else:
            assert r.status_code == 403, (role, method, path, r.status_code)
            message = r.json()["error"]["message"]
            assert f"lacks the role {needed!r}" in message and f"{role}-user" in message, message


def test_no_key_or_a_removed_key_is_a_401(server):
    c = server["client"]
    assert call(c, "GET", "/v1/status", None).status_code == 401
    assert call(c, "GET", "/healthz", None).status_code == 200
    made = cli(server["env"], "keys", "add", "temp", "--role", "ask")
    temp = made.stdout.strip()
    assert call(c, "GET", "/v1/status", temp).status_code == 200
    assert cli(server["env"], "keys", "remove", "temp").returncode == 0
    import time

    time.sleep(2.5)  # keys are re-read every 2 s by a running server
    assert call(c, "GET", "/v1/status", temp).status_code == 401


def test_an_asker_sees_only_the_questions_asked_with_its_key(server, tmp_path):
    """Another asker's question is not found (404, as if absent) for an ask-only key; the
    asker's own, and any question for a reviewer, are there."""
    c, keys = server["client"], server["keys"]
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "kellan.txt").write_text("The Kellan Island lighthouse was finished in 1887.\n")
    assert cli(server["env"], "ingest", str(tmp_path / "docs")).returncode == 0
    other = cli(server["env"], "keys", "add", "other-asker", "--role", "ask").stdout.strip()
    asked = c.post("/v1/ask", headers={"Authorization": f"Bearer {keys['ask']}"},
                   json={"question": "Who kept the Kellan Island lighthouse?"})
    assert asked.status_code == 200 and asked.json()["id"] is not None, asked.text
    qid = asked.json()["id"]
    mine = call(c, "GET", f"/v1/questions/{qid}", keys["ask"])
    assert mine.status_code == 200, mine.text
    assert mine.json()["question"] == "Who kept the Kellan Island lighthouse?"
    theirs = call(c, "GET", f"/v1/questions/{qid}", other)
    assert theirs.status_code == 404 and "other-asker" in theirs.json()["error"]["message"]
    assert "Kellan" not in theirs.text
    assert call(c, "GET", f"/v1/questions/{qid}", keys["review"]).status_code == 200
    assert call(c, "GET", "/v1/reviews/next", other).status_code == 403  # nor the review queue
