"""A real PostgreSQL server for the tests, started by the test run itself: a throwaway
cluster (initdb) in a temporary directory, listening on 127.0.0.1 at a free port, stopped
at the end of the session. As root, the server runs as the `postgres` user (PostgreSQL
refuses to run as root).

The binaries: those that have the pgvector extension first (the vector-store tests need
it), else any. Looked for on PATH, in /usr/lib/postgresql/<version>/bin (Debian; this
machine's mirror has no pgvector package), and in the `pgserver` wheel (a dev dependency:
PostgreSQL 16 with pgvector 0.6). `.ci/run` installs the Debian packages when no
PostgreSQL is found at all."""

from __future__ import annotations

import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _candidates() -> list[Path]:
    found = []
    if (initdb := shutil.which("initdb")) and shutil.which("pg_ctl"):
        found.append(Path(os.path.realpath(initdb)).parent)
    found += [Path(d) for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    spec = importlib.util.find_spec("pgserver")  # located, not imported (importing it sets up runtime folders)
    if spec is not None and spec.origin:
        found.append(Path(spec.origin).parent / "pginstall" / "bin")
    return [d for d in found if (d / "initdb").exists() and (d / "pg_ctl").exists()]


def has_pgvector(bindir: Path) -> bool:
    """Whether this PostgreSQL can CREATE EXTENSION vector (its control file is installed)."""
    shares = [bindir.parent / "share" / "postgresql", bindir.parent / "share"]
    if bindir.parts[:4] == ("/", "usr", "lib", "postgresql"):  # Debian: /usr/share/postgresql/<version>
        shares.append(Path("/usr/share/postgresql") / bindir.parent.name)
    return any((d / "extension" / "vector.control").exists() for d in shares)


def binaries() -> Path | None:
    """The directory holding initdb and pg_ctl (one with pgvector if there is one), or None."""
    found = _candidates()
    return next((d for d in found if has_pgvector(d)), found[0] if found else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="ragqa-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self, **settings: str) -> "Server":
        """Start it; `settings` are server settings (default fsync=off: tests need no durability)."""
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "ragqa", "-E", "UTF8", "--no-sync")
        settings = {"fsync": "off", **settings}
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 " + \
            " ".join(f"-c {k}={v}" for k, v in settings.items())
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://ragqa@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)
