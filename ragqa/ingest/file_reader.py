"""Read one file at a time in a child process, under a time limit and a memory limit.

A parser can hang on a hostile file (a PDF whose page tree loops, markup nested 100,000
deep) or inflate it until the machine swaps (a DOCX whose document.xml unzips to
gigabytes). Those costs belong to the file, not to the ingest: `FileReader` hands each
path to a child (`python -m ragqa.ingest.file_reader`) that runs `ragqa.loaders.load` with its
address space capped, waits at most `timeout` seconds for the text, and kills and
replaces the child when it does not come back. The file is then one failure with its
reason, and the run goes on.

Protocol, one request at a time over the child's stdin/stdout: the parent writes a JSON
line {"path": ...}; the child answers with a line holding a byte count, then that many
bytes of JSON: {"ok": {text, encoding, pages}} or {"error": reason}, with its peak
resident memory. `timeout=0` reads in this process with no limits (fast unit tests)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..errors import DocumentError
from ..settings import Settings
from ..types import LoadedText, Page

_STARTUP_GRACE = 30.0  # the child's first answer may wait for its imports too


class FileReader:
    def __init__(self, *, timeout: float = Settings.read_timeout, memory_mb: int = Settings.read_memory_mb,
                 max_bytes: int | None = None, max_chars: int | None = None):
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.max_bytes = max_bytes
        self.max_chars = max_chars
        self.peak_rss_mb = 0.0  # the largest resident set a child reported
        self._proc: subprocess.Popen | None = None
        self._fresh = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "FileReader":
        """A reader with the settings' limits; close it when done."""
        return cls(timeout=settings.read_timeout, memory_mb=settings.read_memory_mb,
                   max_bytes=int(settings.max_file_mb * (1 << 20)) or None, max_chars=settings.max_text_chars or None)

    def read(self, path: Path) -> LoadedText:
        """The file's text, or DocumentError with the reason it cannot be had."""
        if self.timeout <= 0 or os.name == "nt":
            from .loaders import load

            return load(path, max_bytes=self.max_bytes, max_chars=self.max_chars)
        proc = self._child()
        deadline = time.monotonic() + self.timeout + (_STARTUP_GRACE if self._fresh else 0.0)
        self._fresh = False
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write((json.dumps({"path": str(path)}) + "\n").encode())
            proc.stdin.flush()
            header = _read_line(proc.stdout.fileno(), deadline)
            reply = json.loads(_read_exact(proc.stdout.fileno(), int(header), deadline))
        except TimeoutError:
            self._kill()
            raise DocumentError(f"reading took longer than {self.timeout:g} s (setting read_timeout)") from None
        except (BrokenPipeError, EOFError, ValueError):
            code = self._kill()
            raise DocumentError(_death(code, self.memory_mb)) from None
        self.peak_rss_mb = max(self.peak_rss_mb, reply.get("rss_mb", 0.0))
        if "error" in reply:
            raise DocumentError(reply["error"])
        ok = reply["ok"]
        return LoadedText(text=ok["text"], encoding=ok["encoding"],
                          pages=tuple(Page(number=n, start=s) for n, s in ok["pages"]))

    def close(self) -> None:
        if self._proc is not None:
            proc, self._proc = self._proc, None
            try:
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()

    def __enter__(self) -> "FileReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _child(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            args = [sys.executable, "-m", "ragqa.ingest.file_reader", str(self.memory_mb),
                    str(self.max_bytes or 0), str(self.max_chars or 0)]
            self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, start_new_session=True)
            self._fresh = True
        return self._proc

    def _kill(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        return proc.wait()


def _death(code: int | None, memory_mb: int) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        return f"the reader process died of {name} on this file (a parser crash, or over {memory_mb} MB)"
    return f"the reader process stopped on this file (exit code {code}; over the {memory_mb} MB memory limit?)"


def _read_line(fd: int, deadline: float) -> bytes:
    out = b""
    while not out.endswith(b"\n"):
        out += _read_some(fd, 1, deadline)
    return out


def _read_exact(fd: int, n: int, deadline: float) -> bytes:
    parts, got = [], 0
    while got < n:
        block = _read_some(fd, min(n - got, 1 << 20), deadline)
        parts.append(block)
        got += len(block)
    return b"".join(parts)


def _read_some(fd: int, n: int, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
        raise TimeoutError
    block = os.read(fd, n)
    if not block:
        raise EOFError
    return block


def _serve(memory_mb: int, max_bytes: int, max_chars: int) -> None:  # the child
    import resource

    if memory_mb > 0:
        limit = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from .loaders import load

    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        path = Path(json.loads(line)["path"])
        reply: dict[str, object]
        try:
            loaded = load(path, max_bytes=max_bytes or None, max_chars=max_chars or None)
            reply = {"ok": {"text": loaded.text, "encoding": loaded.encoding,
                            "pages": [[p.number, p.start] for p in loaded.pages]}}
        except DocumentError as e:
            reply = {"error": str(e)}
        except MemoryError:
            reply = {"error": f"reading needs more than the {memory_mb} MB memory limit (setting read_memory_mb)"}
        except RecursionError:
            reply = {"error": "structure nested too deeply to read"}
        except Exception as e:  # a parser bug on one odd file
            reply = {"error": f"{type(e).__name__}: {e}"}
        reply["rss_mb"] = peak_rss_mb()
        body = json.dumps(reply).encode()
        out.write(b"%d\n" % len(body))
        out.write(body)
        out.flush()


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB. VmHWM, where Linux has it: getrusage's
    maxrss survives exec, so a child started by a large process (the embedder's) reports
    its parent's peak (measured: 513 MB for a child whose own peak was 13 MB)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    _serve(*(int(a) for a in sys.argv[1:4]))
