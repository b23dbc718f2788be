"""The HTTP app in-process, through httpx's ASGI transport, with ragqa.testing's fakes
(fast, beside the real-server tests in test_http.py): the key, limits, SSE, uploads
through the in-process worker, and the OpenAI shapes."""

import asyncio
import json

import httpx
import pytest

from ragqa import RAG
from ragqa.testing import ExtractiveGenerator, HashEmbedder

KEY = "inproc-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
FACT = b"The Kellan Island lighthouse was finished in 1887. Its first keeper was Mara Voss.\n"


def run(tmp_path, scenario, **settings):
    """Start the app (its lifespan: warm-up, worker thread), run `scenario(client)`, stop."""
    from ragqa.service import create_app

    rag = RAG(tmp_path / "index", embedder=HashEmbedder(), generator=ExtractiveGenerator(), min_relevance=0.1,
              calibration="off", min_confidence=0.5, api_key=KEY, **settings)
    app = create_app(rag=rag)

    async def main():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ragqa") as client:
                return await scenario(client)

    return asyncio.run(main())


async def _until_done(client, job_id):
    for _ in range(200):
        job = (await client.get(f"/v1/jobs/{job_id}", headers=AUTH)).json()
        if job["state"] in ("done", "failed"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError("the job did not finish")


async def _ingested(client, name: str = "kellan.txt") -> None:
    """Upload FACT as `name` and wait until the in-process worker has ingested it."""
    r = await client.post("/v1/documents", headers=AUTH, files={"file": (name, FACT, "text/plain")})
    assert (await _until_done(client, r.json()["job"]["id"]))["state"] == "done"


def test_the_key_is_needed_everywhere_but_healthz(tmp_path):
    async def scenario(c):
        assert (await c.get("/healthz")).status_code == 200
        for method, path in (("GET", "/v1/status"), ("POST", "/v1/ask"), ("GET", "/v1/documents"),
                             ("GET", "/v1/jobs"), ("POST", "/v1/chat/completions")):
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                r = await c.request(method, path, headers=headers)
                assert r.status_code == 401, (method, path)
                assert r.json()["error"]["type"] == "unauthorized"
        return True

    assert run(tmp_path, scenario)


def test_upload_is_ingested_by_the_worker_then_answered_with_its_citation(tmp_path):
    async def scenario(c):
        r = await c.post("/v1/documents", headers=AUTH, files={"file": ("kellan.txt", FACT, "text/plain")})
        assert r.status_code == 202 and r.headers["location"] == f"/v1/jobs/{r.json()['job']['id']}"
        assert (await _until_done(c, r.json()["job"]["id"]))["state"] == "done"
        answer = (await c.post("/v1/ask", headers=AUTH, json={"question": "Who was the first keeper of Kellan Island?"})).json()
        assert not answer["abstained"] and answer["citations"][0]["document"] == "kellan"
        docs = (await c.get("/v1/documents", headers=AUTH)).json()["documents"]
        assert [d["name"] for d in docs] == ["kellan"]
        return True

    assert run(tmp_path, scenario)


def test_ask_streams_tokens_then_one_answer_event(tmp_path):
    async def scenario(c):
        await _ingested(c)
        r = await c.post("/v1/ask", headers=AUTH, json={"question": "When was the Kellan Island lighthouse finished?",
                                                         "stream": True})
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line.split(": ", 1)[1] for line in r.text.splitlines() if line.startswith("event: ")]
        assert events[-1] == "answer" and set(events[:-1]) == {"token"} and len(events) > 1
        last = json.loads(r.text.strip().split("data: ")[-1])
        assert "1887" in last["answer"]
        return True

    assert run(tmp_path, scenario)


def test_limits_and_bad_requests_are_json_errors(tmp_path):
    async def scenario(c):
        big = await c.post("/v1/documents", headers=AUTH, files={"file": ("big.txt", b"x" * 3000, "text/plain")})
        assert big.status_code == 413 and big.json()["error"]["type"] == "too_large"
        bad = await c.post("/v1/ask", headers={**AUTH, "Content-Type": "application/json"}, content=b'{"question": ')
        assert bad.status_code == 422
        assert bad.json()["error"]["message"].startswith("the request body is not valid JSON")
        escape = await c.post("/v1/documents", headers=AUTH, files={"file": ("../x.txt", b"hi", "text/plain")})
        assert escape.status_code == 422 and "plain file name" in escape.json()["error"]["message"]
        missing = await c.get("/v1/jobs/9999", headers=AUTH)
        assert missing.status_code == 404 and missing.json()["error"]["message"] == "no job 9999"
        return True

    assert run(tmp_path, scenario, max_upload_mb=2000 / (1 << 20))


@pytest.mark.parametrize("stream", [False, True])
def test_openai_chat_completions_shape(tmp_path, stream):
    async def scenario(c):
        await _ingested(c)
        body = {"model": "ragqa", "stream": stream,
                "messages": [{"role": "user", "content": "When was the Kellan Island lighthouse finished?"}]}
        r = await c.post("/v1/chat/completions", headers=AUTH, json=body)
        assert r.status_code == 200
        if not stream:
            out = r.json()
            assert out["object"] == "chat.completion" and out["choices"][0]["message"]["role"] == "assistant"
            assert "1887" in out["choices"][0]["message"]["content"]
        else:
            chunks = [json.loads(line[6:]) for line in r.text.splitlines()
                      if line.startswith("data: ") and line != "data: [DONE]"]
            assert r.text.rstrip().endswith("data: [DONE]")
            assert {ch["object"] for ch in chunks} == {"chat.completion.chunk"}
            assert "1887" in "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks)
        models = (await c.get("/v1/models", headers=AUTH)).json()
        assert models["object"] == "list" and models["data"][0]["object"] == "model"
        return True

    assert run(tmp_path, scenario)


def test_the_page_and_its_files_are_served_without_the_key_and_load_nothing_from_outside(tmp_path):
    async def scenario(c):
        page = await c.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        html = page.text
        assert 'src="/ui/app.js"' in html and 'href="/ui/style.css"' in html
        assert "http://" not in html and "https://" not in html  # no CDN
        for path, kind in (("/ui/app.js", "javascript"), ("/ui/style.css", "css")):
            r = await c.get(path)
            assert r.status_code == 200 and kind in r.headers["content-type"]
            assert "http://" not in r.text and "https://" not in r.text
        script = (await c.get("/ui/app.js")).text
        assert "innerHTML" not in script  # document text goes on the page as text only
        assert (await c.get("/v1/documents")).status_code == 401  # the data still needs the key
        return True

    assert run(tmp_path, scenario)


def test_status_gives_the_threshold_and_ask_takes_the_conversation(tmp_path):
    async def scenario(c):
        await _ingested(c, "lighthouse.txt")
        status = (await c.get("/v1/status", headers=AUTH)).json()
        assert status["threshold"] == 0.5  # no calibration: the test's own threshold
        first = (await c.post("/v1/ask", headers=AUTH, json={"question": "When was the Kellan Island lighthouse finished?"})).json()
        assert "retrieval_query" not in first
        follow = (await c.post("/v1/ask", headers=AUTH, json={
            "question": "Who was its first keeper?",
            "history": [{"question": "When was the Kellan Island lighthouse finished?", "answer": first["answer"]}]})).json()
        assert "Kellan" in follow["retrieval_query"]  # the follow-up was made to stand alone for retrieval
        bad = await c.post("/v1/ask", headers=AUTH, json={"question": "x", "history": [{"question": "q"}] * 11})
        assert bad.status_code == 422
        return True

    assert run(tmp_path, scenario)
