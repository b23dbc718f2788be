"""Real processes for tests, benchmarks and drills: the `ragqa` CLI, and a `ragqa serve`
on a free port of 127.0.0.1, waited for until it answers /healthz."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(env: dict[str, str] | None, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`ragqa ARGS...` in a new process, its output captured."""
    return subprocess.run([sys.executable, "-m", "ragqa.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def wait_for(predicate, timeout: float, what: str) -> Any:
    """The predicate's first true value, polled every 0.2 s; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def start_server(base: Path, env: dict[str, str], *options: str):
    """A `ragqa serve` process (with these options) on a free port, its output in
    base/server.log, once it answers /healthz: (process, log, url)."""
    import httpx

    port = free_port()
    log = open(base / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "ragqa.cli", "serve", "--port", str(port), *options],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            log.seek(0)
            raise AssertionError(f"server exited: {log.read()}")
        try:
            return httpx.get(url + "/healthz").status_code == 200
        except httpx.TransportError:
            return False

    wait_for(up, 180, "the server to start")
    return proc, log, url


def wait_up(client, server, timeout: float = 300) -> None:
    """Until the server answers /healthz; SystemExit if it exits or takes over `timeout` s."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            said = server.stderr.read() if server.stderr is not None and server.poll() is not None else ""
            raise SystemExit(f"server did not start: {said}")
        time.sleep(0.2)
