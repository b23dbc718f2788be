"""Ingestion: files -> text -> chunks -> vectors + rows, idempotent by content hash.

`run_ingest` is the job that `ragqa ingest` runs in-process and that a worker
(ragqa.service.worker) runs for a queued job. Files are read, chunked and embedded outside the
index's writer lock; each batch is written inside `store.writing()`. A file whose content hash is already recorded is not read again; a
changed file has its chunks and vectors replaced; one bad file is recorded with its
reason and the run goes on."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DocumentError, InputError
from ..index.store import NewDocument, Store
from ..models.embed import Embedder
from ..types import ChunkSpan, document_name
from .chunking import chunk_text
from .file_reader import FileReader
from .loaders import file_kind, is_supported, open_regular

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
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): left out on purpose
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
            "ignored": self.ignored,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped], "chunks_embedded": self.chunks_embedded,
            "seconds": round(self.seconds, 3), "embed_seconds": round(self.embed_seconds, 3),
        }


# on_event(kind, **data): "start" (files), "file" (path, status, chunks), "embedded" (chunks)
EventHandler = Callable[..., None]


def discover(paths: Iterable[Path | str], report: IngestReport) -> list[Path]:
    """Every supported file under the given paths, sorted; hidden files and folders skipped.

    Inside a folder, a symbolic link is followed only to a file inside that same folder:
    one leading outside it is skipped and named in the report (a folder given to ingest
    is a boundary; name the outside file itself to ingest it). Symlinked folders are not
    descended. A link loop, a dangling link, a FIFO, a socket or a device is a failed
    file with its reason, never opened (reading a FIFO blocks forever)."""
    found: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists() and not path.is_symlink():
            raise InputError(f"no such file or folder: {raw}")
        if not path.is_dir():  # named explicitly: followed wherever it leads; unsupported types fail loudly
            _, file, reason = _classify(path, None)
            if file is None:
                report.failed.append((str(path.absolute()), reason))
            else:
                found[str(file)] = file
            continue
        top = path.resolve()
        for root, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith("."):
                    continue
                entry = Path(root, name)
                if not is_supported(entry):
                    report.ignored.append(str(entry))
                    continue
                outcome, file, reason = _classify(entry, top)
                if file is not None:
                    found[str(file)] = file
                elif outcome == "skipped":
                    report.skipped.append((str(entry), reason))
                else:
                    report.failed.append((str(entry), reason))
    return [found[k] for k in sorted(found)]


def _classify(entry: Path, top: Path | None) -> tuple[str, Path | None, str]:
    """("ok", the resolved regular file, ""), ("skipped", None, why: a link leading
    outside `top`) or ("failed", None, why)."""
    try:
        target = entry.resolve(strict=True)
    except RuntimeError:  # Python 3.11-3.12 raise this for a loop; 3.13 raises OSError(ELOOP)
        return "failed", None, "symbolic link loop"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "failed", None, "symbolic link loop"
        if entry.is_symlink():
            return "failed", None, "dangling symbolic link (its target does not exist)"
        return "failed", None, f"cannot read file: {e.strerror or e}"
    if top is not None and not target.is_relative_to(top):
        return "skipped", None, f"symbolic link to {target}, outside the folder being ingested"
    try:
        mode = target.stat().st_mode
    except OSError as e:
        return "failed", None, f"cannot read file: {e.strerror or e}"
    if not stat.S_ISREG(mode):
        return "failed", None, f"not a regular file ({file_kind(mode)})"
    return "ok", target, ""


def sha256_file(path: Path) -> str:
    """The file's content hash (a FIFO put in its place is refused: see open_regular)."""
    h = hashlib.sha256()
    with open_regular(path) as (f, _st):
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
    reader: FileReader | None = None,
) -> IngestReport:
    """reader: reads each file's text (default: in this process, no limits; RAG.ingest
    passes one with the settings' time, size and memory limits)."""
    started = time.perf_counter()
    emit = on_event or (lambda kind, **data: None)
    report = IngestReport()
    files = discover(paths, report)
    report.files = len(files) + len(report.failed)
    emit("start", files=report.files)
    for failed, _reason in report.failed:
        emit("file", path=failed, status="failed", chunks=0)
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

    reader = reader or FileReader(timeout=0)
    for path, status, payload in _read_all(files, known, embedder, max_tokens, chunk_overlap, reader):
        if status == "unchanged":
            report.unchanged.append(str(path))
            emit("file", path=str(path), status="unchanged", chunks=0)
        elif status == "failed":
            report.failed.append((str(path), str(payload)))
            emit("file", path=str(path), status="failed", chunks=0)
        else:
            assert isinstance(payload, _Pending)
            pending.append(payload)
            if sum(len(p.chunks) for p in pending) >= EMBED_BATCH_CHUNKS:
                flush()
    flush()

    if prune:
        gone = [p for p in known if not Path(p).exists()]
        with store.writing():
            store.remove_documents(gone)
        report.removed = sorted(gone)
    store.save()  # what changed (pgvector: builds its HNSW index once the collection is large enough)
    report.seconds = time.perf_counter() - started
    return report


def _read_all(files: list[Path], known: dict, embedder: Embedder, max_tokens: int,
              overlap: int, reader: FileReader) -> Iterator[tuple[Path, str, object]]:
    for path in files:
        try:
            st = path.stat()
            digest = sha256_file(path)
        except OSError as e:
            yield path, "failed", f"cannot read file: {e.strerror or e}"
            continue
        except DocumentError as e:
            yield path, "failed", str(e)
            continue
        old = known.get(str(path))
        if old is not None and old.sha256 == digest:
            yield path, "unchanged", None
            continue
        try:
            loaded = reader.read(path)
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
        yield path, status, _Pending(path, digest, st.st_size, st.st_mtime, chunks, status)
