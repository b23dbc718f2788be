"""The HTTP API as a client meets it: a real `ragqa serve` process on 127.0.0.1 with the
real models (MiniLM, SmolLM2-135M GGUF), an API key, its in-process worker ingesting
the demo corpus queued with `ragqa ingest --queue`, and small limits so that they can be
reached: one question may wait while one is answered; uploads up to 50 KiB."""

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from devkit.servers import start_server, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
KEY = "test-key-5f1c"
AUTH = {"Authorization": f"Bearer {KEY}"}
FACT = ("The Kellan Island lighthouse was finished in 1887. Its first keeper was Mara Voss, "
        "who kept the light burning for forty years.\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("http")
    docs = base / "docs"
    shutil.copytree(ROOT / "corpora" / "demo", docs)
    index = base / "index"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")},
           "RAGQA_INDEX": str(index), "RAGQA_API_KEY": KEY, "RAGQA_CALIBRATION": "off", "RAGQA_MIN_CONFIDENCE": "0.5",
           "RAGQA_ASK_QUEUE": "1", "RAGQA_MAX_UPLOAD_MB": str(50 / 1024)}
    queued = subprocess.run([sys.executable, "-m", "ragqa.cli", "ingest", str(docs), "--queue", "--json"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert queued.returncode == 0, queued.stderr
    assert [len(j["payload"]["paths"]) for j in json.loads(queued.stdout)] == [3]  # one job for the three files
    proc, log, url = start_server(base, env)
    client = httpx.Client(base_url=url, timeout=120)
    wait_for(lambda: client.get("/v1/status", headers=AUTH).json()["jobs"]["done"] == 1, 180, "the demo corpus")
    yield {"client": client, "index": index, "base": base, "proc": proc, "log": log}
    proc.terminate()
    proc.wait(60)
    client.close()
    log.close()


def test_healthz_is_open_and_every_other_endpoint_needs_the_key(server):
    c = server["client"]
    assert c.get("/healthz").json()["status"] == "ok"
    for method, path in (("GET", "/v1/status"), ("POST", "/v1/ask"), ("GET", "/openapi.json"),
                         ("POST", "/v1/documents"), ("GET", "/v1/jobs/1"), ("POST", "/v1/chat/completions")):
        r = c.request(method, path, json={"question": "x"} if method == "POST" else None)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", (method, path)
        assert "API key" in r.json()["error"]["message"]
    assert c.get("/v1/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
    spec = c.get("/openapi.json", headers=AUTH).json()
    assert {"/v1/ask", "/v1/documents", "/v1/jobs/{job_id}", "/v1/documents/{name}", "/v1/status",
            "/v1/chat/completions", "/healthz"} <= set(spec["paths"])


def test_status_reports_the_index_the_jobs_and_the_line(server):
    st = server["client"].get("/v1/status", headers=AUTH).json()
    assert st["ready"] and st["documents"] >= 3 and st["chunks"] == st["vectors"] > 50
    assert st["questions"]["max_waiting"] == 1 and st["in_process_worker"] is True
    assert "ragqa:" not in json.dumps(st)  # no password or key in what status shows
    assert KEY not in json.dumps(st)


def test_upload_becomes_a_job_and_then_an_answer_citing_the_uploaded_file(server):
    c = server["client"]
    r = c.post("/v1/documents", headers=AUTH, files={"file": ("kellan_lighthouse.txt", FACT.encode(), "text/plain")})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["document"] == "kellan_lighthouse" and r.headers["location"] == f"/v1/jobs/{body['job']['id']}"
    job = wait_for(lambda: (j := c.get(r.headers["location"], headers=AUTH).json())["state"] in ("done", "failed") and j,
                   120, "the upload's job")
    assert job["state"] == "done" and job["result"]["added"], job
    assert (server["index"] / "uploads" / "kellan_lighthouse.txt").read_text() == FACT
    answer = c.post("/v1/ask", headers=AUTH, json={"question": "Who was the first keeper of the Kellan Island lighthouse?"}).json()
    assert not answer["abstained"], answer["reason"]
    assert "Mara Voss" in answer["answer"]
    assert answer["citations"] and {c_["document"] for c_ in answer["citations"]} == {"kellan_lighthouse"}
    for cite in answer["citations"]:
        assert FACT[cite["start"]: cite["end"]] == cite["quote"]


def test_ask_streams_tokens_then_the_answer(server):
    events = []
    with server["client"].stream("POST", "/v1/ask", headers=AUTH,
                                 json={"question": "Who developed a steam-powered water pump in 1698?", "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
    kinds = [e for e, _ in events]
    assert kinds[-1] == "answer" and kinds.count("answer") == 1 and kinds.count("token") >= 2
    final = events[-1][1]
    streamed = "".join(d["text"] for e, d in events if e == "token").strip()
    assert streamed == final["draft"]  # the tokens are the draft
    assert "Savery" in streamed and final["sources"][0]["document"] == "steam_engine"


def test_oversized_uploads_are_refused(server):
    c = server["client"]
    big = b"word " * (30 * 1024)  # 150 KiB, the limit is 50
    r = c.post("/v1/documents", headers=AUTH, files={"file": ("big.txt", big, "text/plain")})
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]

    def chunked():  # no Content-Length: the limit must hold while the body streams
        boundary = b"--xyz"
        yield boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="big2.txt"\r\n\r\n'
        for _ in range(30):
            yield b"x" * 5120
        yield b"\r\n" + boundary + b"--\r\n"

    r = c.post("/v1/documents", headers={**AUTH, "Content-Type": "multipart/form-data; boundary=xyz"}, content=chunked())
    assert r.status_code == 413, r.text
    uploads = server["index"] / "uploads"
    assert not (uploads / "big.txt").exists() and not (uploads / "big2.txt").exists()


@pytest.mark.parametrize("name", ["../escape.txt", "../../escape.txt", "/tmp/escape.txt", "sub/escape.txt",
                                  "..\\escape.txt", ".hidden.txt", "..", "payload.exe"])
def test_file_names_that_would_escape_the_upload_folder_are_refused(server, name):
    r = server["client"].post("/v1/documents", headers=AUTH, files={"file": (name, b"escape attempt", "text/plain")})
    assert r.status_code == 422, (name, r.status_code, r.text)
    assert r.json()["error"]["message"]
    for folder in (server["index"], server["base"], Path("/tmp")):
        assert not (folder / "escape.txt").exists()


def test_concurrent_asks_are_all_answered_or_refused_with_503(server):
    c = server["client"]
    results, start = [], threading.Barrier(8)

    def ask(i):
        start.wait()
        r = c.post("/v1/ask", headers=AUTH, json={"question": f"What did Thomas Savery develop? ({i})"})
        results.append(r)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    codes = sorted(r.status_code for r in results)
    assert len(codes) == 8 and set(codes) <= {200, 503}, codes
    assert 200 in codes and 503 in codes, codes  # one answered, one waiting, the rest turned away
    for r in results:
        if r.status_code == 503:
            assert r.json()["error"]["type"] == "busy" and int(r.headers["retry-after"]) >= 1
        else:
            assert "abstained" in r.json()
    assert c.get("/v1/status", headers=AUTH).json()["questions"]["waiting"] == 0


def test_bad_requests_get_a_json_message_and_never_a_traceback(server):
    c = server["client"]
    cases = [
        c.post("/v1/ask", headers={**AUTH, "Content-Type": "application/json"}, content=b"{not json"),
        c.post("/v1/ask", headers=AUTH, json={}),
        c.post("/v1/ask", headers=AUTH, json={"question": "x" * 2001}),
        c.post("/v1/ask", headers=AUTH, json={"question": "   "}),
        c.post("/v1/ask", headers=AUTH, json={"question": "Who?", "top_k": 0}),
        c.post("/v1/ask", headers=AUTH, json={"question": "Who?", "filters": {"colour": "red"}}),
        c.post("/v1/ask", headers=AUTH, json={"question": "Who?", "surprise": 1}),
        c.post("/v1/ask", headers={**AUTH, "Content-Type": "application/json"}, content=b"x" * (2 << 20)),
        c.get("/v1/jobs/999999", headers=AUTH),
        c.get("/v1/jobs/abc", headers=AUTH),
        c.delete("/v1/documents/no_such_document", headers=AUTH),
        c.post("/v1/documents", headers=AUTH, data={"not_a_file": "1"}),
        c.get("/v1/nowhere", headers=AUTH),
        c.post("/v1/chat/completions", headers=AUTH, json={"messages": [{"role": "assistant", "content": "hi"}]}),
        c.post("/v1/chat/completions", headers=AUTH, json={"messages": []}),
    ]
    expected = [422, 422, 422, 422, 422, 422, 422, 413, 404, 422, 404, 422, 404, 422, 422]
    assert [r.status_code for r in cases] == expected, [(r.status_code, r.text[:200]) for r in cases]
    for r in cases:
        body = r.json()
        assert body["error"]["message"] and body["error"]["code"] == r.status_code
        assert "Traceback" not in r.text and 'File "' not in r.text
    server["log"].flush()
    assert "Traceback" not in Path(server["log"].name).read_text()


def test_delete_removes_a_document_and_its_vectors(server):
    c = server["client"]
    r = c.post("/v1/documents", headers=AUTH, files={"file": ("temporary_note.md", b"# Note\n\nThe vault code word is heliotrope.\n", "text/markdown")})
    wait_for(lambda: c.get(r.headers["location"], headers=AUTH).json()["state"] == "done", 120, "the upload")
    names = [d["name"] for d in c.get("/v1/documents", headers=AUTH).json()["documents"]]
    assert "temporary_note" in names
    before = c.get("/v1/status", headers=AUTH).json()
    gone = c.delete("/v1/documents/temporary_note", headers=AUTH)
    assert gone.status_code == 200 and gone.json()["paths"][0].endswith("uploads/temporary_note.md")
    after = c.get("/v1/status", headers=AUTH).json()
    assert after["documents"] == before["documents"] - 1 and after["chunks"] == after["vectors"] < before["vectors"]
    hits = c.post("/v1/ask", headers=AUTH, json={"question": "What is the vault code word?"}).json()["sources"]
    assert all(h["document"] != "temporary_note" for h in hits)
    assert c.delete("/v1/documents/temporary_note", headers=AUTH).status_code == 404


def test_openai_compatible_chat_completions(server):
    c = server["client"]
    models = c.get("/v1/models", headers=AUTH).json()
    assert models["data"][0]["id"].endswith(".gguf")
    body = {"model": "ragqa", "messages": [{"role": "system", "content": "Be brief."},
                                           {"role": "user", "content": "Who developed a steam-powered water pump in 1698?"}]}
    r = c.post("/v1/chat/completions", headers=AUTH, json=body)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["object"] == "chat.completion" and done["choices"][0]["finish_reason"] == "stop"
    message = done["choices"][0]["message"]
    extra = done["ragqa"]
    assert message["role"] == "assistant" and {"abstained", "confidence", "citations", "reason"} <= set(extra)
    if extra["abstained"]:
        assert extra["reason"] in message["content"]
    else:
        assert message["content"].startswith(extra["answer"]) and "steam_engine" in message["content"]

    chunks = []
    with c.stream("POST", "/v1/chat/completions", headers=AUTH, json={**body, "stream": True}) as s:
        assert s.status_code == 200
        for line in s.iter_lines():
            if line.startswith("data: "):
                chunks.append(line[6:])
    assert chunks[-1] == "[DONE]"
    parsed = [json.loads(x) for x in chunks[:-1]]
    assert parsed[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(p["choices"][0]["delta"].get("content", "") for p in parsed)
    assert parsed[-1]["choices"][0]["finish_reason"] == "stop" and "ragqa" in parsed[-1]
    assert text == message["content"]  # same question, same greedy answer, same checked content
