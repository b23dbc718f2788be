"""Drill: abusive clients of a real `ragqa serve` process on 127.0.0.1 (bounded loops).

    python -m drills.abuse

Every endpoint without the key and with a wrong one; path tricks in upload names; a body
trickled for 20 s while others are served; 200 rapid requests; a 1 MB question; malformed
JSON and multipart. Afterwards /healthz must still answer, no response may carry a
traceback, and nothing may have been written outside the upload folder. Prints one line
per probe and a summary; exits 1 on any surprise.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from devkit.servers import free_port, wait_up

ROOT = Path(__file__).resolve().parent.parent
KEY = "drill-key-8c2e"
AUTH = {"Authorization": f"Bearer {KEY}"}
ENDPOINTS = [("GET", "/v1/status"), ("POST", "/v1/ask"), ("POST", "/v1/documents"), ("GET", "/v1/documents"),
             ("DELETE", "/v1/documents/x"), ("GET", "/v1/jobs/1"), ("GET", "/v1/jobs"), ("GET", "/v1/models"),
             ("POST", "/v1/chat/completions")]


class Drill:
    def __init__(self) -> None:
        self.rows: list[tuple[bool, str, str]] = []
        self.bodies: list[str] = []

    def expect(self, what: str, ok: bool, got: str) -> None:
        self.rows.append((ok, what, got))
        print(f"{'ok ' if ok else 'BAD'} {what:58s} {got}", flush=True)

    def seen(self, r: httpx.Response) -> httpx.Response:
        self.bodies.append(r.text)
        return r


def trickle(port: int, seconds: float) -> str:
    """Send a POST /v1/ask body one byte every ~0.4 s for `seconds`, then the rest."""
    body = json.dumps({"question": "Who developed a steam-powered water pump in 1698?"}).encode()
    head = (f"POST /v1/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=seconds + 120) as s:
        s.sendall(head)
        t0, i = time.monotonic(), 0
        try:
            while time.monotonic() - t0 < seconds and i < len(body) - 1:
                s.sendall(body[i:i + 1])
                i += 1
                time.sleep(0.4)
            s.sendall(body[i:])
            return s.recv(65536).decode(errors="replace").split("\r\n", 1)[0]
        except OSError as e:  # the server gave up on the slow client: acceptable
            return f"connection closed by server ({type(e).__name__})"


def main() -> int:
    d = Drill()
    with tempfile.TemporaryDirectory(prefix="ragqa-abuse-") as tmp:
        base = Path(tmp)
        docs = base / "docs"
        shutil.copytree(ROOT / "corpora" / "demo", docs)
        index, uploads = base / "index", base / "index" / "uploads"
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")},
               "RAGQA_INDEX": str(index), "RAGQA_API_KEY": KEY, "RAGQA_MAX_UPLOAD_MB": "1"}
        subprocess.run([sys.executable, "-m", "ragqa.cli", "ingest", str(docs)], env=env, check=True,
                       capture_output=True, timeout=300)
        before = {p for p in base.rglob("*")}
        port = free_port()
        log = open(base / "server.log", "w+")
        proc = subprocess.Popen([sys.executable, "-m", "ragqa.cli", "serve", "--port", str(port)], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        c = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        try:
            wait_up(c, proc, timeout=120)
            probe(d, c, port, uploads)
        finally:
            proc.terminate()
            proc.wait(30)
        log.seek(0)
        server_log = log.read()
        after = {p for p in base.rglob("*")}
        outside = sorted(str(p) for p in after - before
                         if not (p.is_relative_to(uploads) or p.parent == index or p.name == "server.log"))
        d.expect("nothing written outside the upload folder", not outside, ", ".join(outside) or "none")
        d.expect("no response body carries a traceback", not any("Traceback" in b for b in d.bodies),
                 f"{len(d.bodies)} bodies read")
        d.expect("server log: tracebacks (from handled errors)", True, str(server_log.count("Traceback")))
    bad = [r for r in d.rows if not r[0]]
    print(f"\n{len(d.rows) - len(bad)}/{len(d.rows)} probes as expected")
    return 1 if bad else 0


def probe(d: Drill, c: httpx.Client, port: int, uploads: Path) -> None:
    for method, path in ENDPOINTS:
        for label, headers in (("no key", {}), ("wrong key", {"Authorization": "Bearer wrong"}),
                               ("key as query", {})):
            url = path + (f"?api_key={KEY}" if label == "key as query" else "")
            r = d.seen(c.request(method, url, headers=headers, json={} if method == "POST" else None))
            d.expect(f"{method} {path} {label}", r.status_code == 401, str(r.status_code))

    for name in ("../x.txt", "..%2fx.txt", "/etc/passwd.txt", "a/../../x.txt", "x\x00.txt", "..\\x.txt", ".hidden.txt",
                 "CON.txt\n", "x" * 300 + ".txt"):
        try:
            r = d.seen(c.post("/v1/documents", headers=AUTH, files={"file": (name, b"Some text.\n", "text/plain")}))
            got = str(r.status_code) + (f" stored as {Path(r.json()['job']['payload']['paths'][0]).name!r}"
                                        if r.status_code == 202 else "")
            ok = r.status_code in (400, 422) or (r.status_code == 202 and _inside(uploads, r.json()))
        except httpx.HTTPError as e:  # the client library refused to send it: nothing reached the server
            got, ok = f"not sent ({type(e).__name__})", True
        d.expect(f"upload named {name[:40]!r}", ok, got)

    for raw in (b"x\x00.txt", b"../../escape.txt", b"/tmp/abs.txt"):  # raw bytes in the part header, not escaped by a client
        body = (b"--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + raw
                + b"\"\r\nContent-Type: text/plain\r\n\r\nSome text.\r\n--zz--\r\n")
        r = d.seen(c.post("/v1/documents", headers={**AUTH, "Content-Type": "multipart/form-data; boundary=zz"},
                          content=body))
        d.expect(f"raw multipart file name {raw!r}", r.status_code in (400, 422), f"{r.status_code} {r.text[:60]}")

    result: dict[str, str] = {}
    slow = threading.Thread(target=lambda: result.setdefault("slow", trickle(port, 20.0)))
    slow.start()
    time.sleep(2)
    t0 = time.monotonic()
    meanwhile = [d.seen(c.get("/v1/status", headers=AUTH)).status_code for _ in range(5)]
    d.expect("others are served while a body trickles in for 20 s", meanwhile == [200] * 5,
             f"{meanwhile} in {time.monotonic() - t0:.1f} s")
    slow.join(180)
    d.expect("the trickled request ends with a status", bool(result.get("slow")), result.get("slow", "no answer"))

    statuses: dict[int, int] = {}
    t0 = time.monotonic()
    for i in range(200):
        r = d.seen(c.get("/v1/status" if i % 2 else "/healthz", headers=AUTH))
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    d.expect("200 rapid requests", set(statuses) == {200}, f"{statuses} in {time.monotonic() - t0:.1f} s")

    r = d.seen(c.post("/v1/ask", headers=AUTH, json={"question": "why " * 250_000}))
    d.expect("a 1 MB question", r.status_code in (413, 422), f"{r.status_code} {r.text[:80]}")
    for label, body, ctype in (("malformed JSON", b'{"question": "x"', "application/json"),
                               ("JSON of the wrong shape", b'["question"]', "application/json"),
                               ("not JSON at all", b"\xff\xfe\x00garbage", "application/json"),
                               ("malformed multipart", b"--zzz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx",
                                "multipart/form-data; boundary=zzz"),
                               ("multipart without a boundary", b"abc", "multipart/form-data")):
        url = "/v1/documents" if "multipart" in label else "/v1/ask"
        r = d.seen(c.post(url, headers={**AUTH, "Content-Type": ctype}, content=body))
        d.expect(label, 400 <= r.status_code < 500 and r.headers.get("content-type", "").startswith("application/json"),
                 f"{r.status_code} {r.text[:70]}")
    r = d.seen(c.get("/healthz"))
    d.expect("afterwards /healthz answers", r.status_code == 200, str(r.status_code))
    r = d.seen(c.post("/v1/ask", headers=AUTH, json={"question": "Who developed a steam-powered water pump in 1698?"}))
    d.expect("afterwards a question is answered or withheld", r.status_code == 200 and "abstained" in r.json(),
             str(r.status_code))


def _inside(uploads: Path, reply: dict) -> bool:
    paths = reply["job"]["payload"]["paths"]
    return len(paths) == 1 and Path(paths[0]).resolve().parent == uploads.resolve()


if __name__ == "__main__":
    sys.exit(main())
