"""One writer at a time per index.

The lock is two locks taken in a fixed order, so that it holds wherever writers run:

- an `flock` on `<index>/.write.lock`: every process on this machine (and on machines
  sharing the index folder over a filesystem whose locks work, such as NFSv4);
- on PostgreSQL, also a session advisory lock in the index's database: writers on any
  machine that share the database, whatever their filesystem does with flock. The
  database ends the session, and frees the lock, when a writer dies.

`acquire(timeout)` waits up to `timeout` seconds (0: do not wait) and then raises
IndexLockedError."""

from __future__ import annotations

import fcntl
import os
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from ..errors import IndexLockedError

LOCK_FILE = ".write.lock"
# one index per database: one key for its writer lock
PG_LOCK_KEY = zlib.crc32(b"ragqa index writer")
POLL_S = 0.05


class WriterLock:
    def __init__(self, index_dir: Path, engine: Engine):
        self.index_dir = Path(index_dir)
        self.engine = engine
        self._fd: int | None = None
        self._pg: Connection | None = None  # the connection whose session holds the advisory lock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float = 0.0) -> None:
        if self.held:
            return
        deadline = time.monotonic() + max(0.0, timeout)
        self.index_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.index_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _wait(lambda: _try_flock(fd), deadline, self.index_dir)
            if self.engine.dialect.name == "postgresql":
                self._pg = self.engine.connect()
                _wait(self._try_advisory, deadline, self.index_dir)
        except BaseException:
            self._release_pg()
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        self._fd = fd

    def _try_advisory(self) -> bool:
        assert self._pg is not None
        got = bool(self._pg.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_LOCK_KEY}).scalar())
        self._pg.commit()  # a session lock outlives the transaction; do not sit idle in one
        return got

    def _release_pg(self) -> None:
        if self._pg is None:
            return
        try:
            self._pg.execute(text("SELECT pg_advisory_unlock_all()"))
            self._pg.commit()
        except Exception:  # could not unlock: end the session for real, which frees the lock
            self._pg.invalidate()
        finally:
            self._pg.close()
            self._pg = None

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self._release_pg()
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "WriterLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _wait(attempt: Callable[[], bool], deadline: float, index_dir: Path) -> None:
    while not attempt():
        if time.monotonic() >= deadline:
            raise IndexLockedError(f"another process is writing {index_dir}; try again when it finishes")
        time.sleep(POLL_S)
