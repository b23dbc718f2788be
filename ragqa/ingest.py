"""Ingestion: files -> text -> chunks -> vectors + rows, idempotent by content hash.

`run_ingest` is the job that `ragqa ingest` runs in-process and that a worker
(ragqa.worker) runs for a queued job. Files are read, chunked and embedded outside the
index's writer lock; each batch is written inside `store.writing()`. A file whose content hash is already recorded is not read again; a
changed file has its chunks and vectors replaced; one bad file is recorded with its
reason and the run goes on."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .chunking import chunk_text
from .embedding import Embedder
from .errors import DocumentError, InputError
from .loaders import is_supported, load
from .store import NewDocument, Store
from .types import ChunkSpan, document_name

log = logging.getLogger(__name__)

# Chunks gathered across files before one embedding call (feeds the process pool well).
EMBED_BATCH_CHUNKS = 512
# Save the vectors at least this often, so a crash loses little work.
SAVE_EVERY_CHUNKS = 4096


@dataclass
class IngestReport:
    files: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    ignored: list[str] = field(default_factory=list)  # unsupported types met while walking folders
    chunks_embedded: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    repaired: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict:
        return {
            "files": self.files, "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "removed": self.removed, "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "ignored": self.ignored, "chunks_embedded": self.chunks_embedded,
            "seconds": round(self.seconds, 3), "embed_seconds": round(self.embed_seconds, 3),
        }


# on_event(kind, **data): "start" (files), "file" (path, status, chunks), "embedded" (chunks)
EventHandler = Callable[..., None]


def discover(paths: Iterable[Path | str], report: IngestReport) -> list[Path]:
    """Every supported file under the given paths, sorted; hidden files and folders skipped."""
    found: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise InputError(f"no such file or folder: {raw}")
        if path.is_file():
            found[str(path.resolve())] = path.resolve()  # named explicitly: unsupported types fail loudly
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith("."):
                    continue
                file = Path(root, name).resolve()
                if is_supported(file):
                    found[str(file)] = file
                else:
                    report.ignored.append(str(file))
    return [found[k] for k in sorted(found)]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class _Pending:
    path: Path
    sha256: str
    size: int
    mtime: float
    chunks: list[ChunkSpan]
    status: str  # "added" or "updated"


def run_ingest(
    store: Store,
    embedder: Embedder,
    paths: Iterable[Path | str],
    *,
    chunk_tokens: int,
    chunk_overlap: int,
    prune: bool = False,
    on_event: EventHandler | None = None,
) -> IngestReport:
    started = time.perf_counter()
    emit = on_event or (lambda kind, **data: None)
    report = IngestReport()
    files = discover(paths, report)
    report.files = len(files)
    emit("start", files=len(files))
    known = store.documents_by_path()
    max_tokens = min(chunk_tokens, embedder.max_tokens)

    pending: list[_Pending] = []
    since_save = 0

    def flush() -> None:
        nonlocal pending, since_save
        if not pending:
            return
        batch, pending = pending, []
        texts = [c.text for p in batch for c in p.chunks]
        t0 = time.perf_counter()
        try:
            vectors = embedder.embed(texts)
        except Exception as e:  # the embedder failed on this batch: fail its files, keep going
            for p in batch:
                report.failed.append((str(p.path), f"embedding failed: {e}"))
                emit("file", path=str(p.path), status="failed", chunks=0)
            return
        report.embed_seconds += time.perf_counter() - t0
        docs, offset = [], 0
        for p in batch:
            n = len(p.chunks)
            docs.append(NewDocument(path=str(p.path), name=document_name(str(p.path)), sha256=p.sha256, size=p.size,
                                    mtime=p.mtime, chunks=p.chunks, vectors=vectors[offset: offset + n]))
            offset += n
        with store.writing():
            store.put_documents(docs)
        report.chunks_embedded += len(texts)
        since_save += len(texts)
        for p in batch:
            getattr(report, p.status).append(str(p.path))
            emit("file", path=str(p.path), status=p.status, chunks=len(p.chunks))
        emit("embedded", chunks=len(texts))
        if since_save >= SAVE_EVERY_CHUNKS and store.vectors.dirty:  # a writer holding the lock throughout
            store.save()
            since_save = 0

    for path, status, payload in _read_all(files, known, embedder, max_tokens, chunk_overlap):
        if status == "unchanged":
            report.unchanged.append(str(path))
            emit("file", path=str(path), status="unchanged", chunks=0)
        elif status == "failed":
            report.failed.append((str(path), payload))
            emit("file", path=str(path), status="failed", chunks=0)
        else:
            pending.append(payload)
            if sum(len(p.chunks) for p in pending) >= EMBED_BATCH_CHUNKS:
                flush()
    flush()

    if prune:
        gone = [p for p in known if not Path(p).exists()]
        with store.writing():
            store.remove_documents(gone)
        report.removed = sorted(gone)
    if store.vectors.dirty:
        store.save()
    report.seconds = time.perf_counter() - started
    return report


def _read_all(files: list[Path], known: dict, embedder: Embedder, max_tokens: int,
              overlap: int) -> Iterator[tuple[Path, str, object]]:
    for path in files:
        try:
            stat = path.stat()
            digest = sha256_file(path)
        except OSError as e:
            yield path, "failed", f"cannot read file: {e.strerror or e}"
            continue
        old = known.get(str(path))
        if old is not None and old.sha256 == digest:
            yield path, "unchanged", None
            continue
        try:
            loaded = load(path)
            chunks = chunk_text(loaded, embedder.count_tokens, max_tokens, overlap)
        except DocumentError as e:
            yield path, "failed", str(e)
            continue
        except Exception as e:  # a parser bug on one odd file must not stop the run
            log.exception("unexpected error reading %s", path)
            yield path, "failed", f"{type(e).__name__}: {e}"
            continue
        if not chunks:
            yield path, "failed", "no text to index"
            continue
        status = "updated" if old is not None else "added"
        yield path, status, _Pending(path, digest, stat.st_size, stat.st_mtime, chunks, status)
