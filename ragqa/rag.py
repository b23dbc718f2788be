"""The RAG facade: ingest(), ask(), stream(), condense(), status().

The CLI, the chat and (later) the server are thin layers over this class; they hold no
logic that the Python API lacks."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .answer import followup
from .answer.policy import Policy
from .answer.retrieval import Retriever
from .answer.scorer import Scorer
from .answer.steps import Answering
from .errors import IndexNotFoundError, InputError, NotFoundError, RagqaError
from .evaluation import calibrate as calib
from .index.db import make_engine, redact
from .index.factory import saved_stamp
from .index.manifest import no_index, read_manifest, recorded_backend
from .index.migrate import migrate_vectors
from .index.store import Store
from .index.vectors import VectorOptions
from .ingest.file_reader import FileReader
from .ingest.run import EventHandler, IngestReport, run_ingest
from .models import llama_check
from .models.catalogue import default_name
from .models.embed import Embedder, make_embedder
from .models.generator import Generator
from .models.llama import LlamaCppGenerator
from .review.desk import Desk
from .review.log import QuestionLog
from .settings import Settings
from .types import Answer, Filters, Hit

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000


def embedder_for(settings: Settings) -> Embedder:
    """The embedder these settings name, on the backend set, else the one their index was
    built with, else the default for a new index."""
    return make_embedder(settings, settings.embed_backend
                         or recorded_backend(settings.index_dir, settings.resolved_database_url))


class RAG:
    """`RAG("indexes/default")`; every Settings field can be given as a keyword."""

    def __init__(self, index: str | Path | None = None, *, settings: Settings | None = None,
                 embedder: Embedder | None = None, generator: Generator | None = None,
                 scorer: Scorer | None = None, **overrides: Any):
        base = settings or Settings.load()
        if index is not None:
            overrides["index_dir"] = index
        self.settings = base.replace(**overrides) if overrides else base
        self._embedder = embedder
        self._generator = generator
        self._scorer = scorer  # given: used as is, instead of the calibration found for the models
        self._policy: Policy | None = None
        self._models: dict[str, Any] | None = None
        self._log: QuestionLog | None = None
        self._reader: Store | None = None
        self._reader_stamp: tuple | None = None
        self._cert_stamp: int | None = None  # the newest certificate from reviews seen (ragqa.review.certificates)
        self._desk: Desk | None = None

    # --- components, loaded when first needed -------------------------------------

    @property
    def index_dir(self) -> Path:
        return Path(self.settings.index_dir)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = embedder_for(self.settings)
        return self._embedder

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            s = self.settings
            self._generator = LlamaCppGenerator(s.model_path, n_ctx=s.n_ctx, n_gpu_layers=s.n_gpu_layers,
                                                n_threads=s.n_threads, seed=s.seed, check=bool(s.llama_check),
                                                prefix_cache=bool(s.prefix_cache))
        return self._generator

    @property
    def policy(self) -> Policy:
        """The abstain decision for these models: the calibration that applies to them (found
        when first needed), the threshold and what it is certified for (ragqa.answer.policy)."""
        if self._policy is None:
            self._policy = Policy(self.settings, self.index_dir, self._identities, scorer=self._scorer,
                                  stored=lambda models: self.reviews.certificates.current(models))
        return self._policy

    def models(self) -> dict[str, Any]:
        """The identities a calibration is tied to, read without loading either model."""
        ident = self.generator.identity
        manifest = self._manifest()
        emb = manifest.get("embedder", {}) if manifest is not None else self._embedder_info()
        return {"generator": ident, "embedder": {"name": emb.get("name"), "dimension": emb.get("dimension")}}

    def _embedder_info(self) -> dict:
        e = self.embedder
        return {"name": e.name, "dimension": e.dimension, "max_tokens": e.max_tokens, "backend": e.backend}

    def _store(self) -> Store:
        """The index opened for reading; reopened when another process saved new vectors."""
        stamp = saved_stamp(self.index_dir)
        if self._reader is None or stamp != self._reader_stamp:
            self._require_index()  # before any model loads
            if self._reader is not None:
                self._reader.close()
            self._reader = self._open_store(self._embedder_info())
            self._reader_stamp = stamp
        return self._reader

    # --- ingest -------------------------------------------------------------------

    def ingest(self, paths: Iterable[str | Path], *, prune: bool = False,
               on_event: EventHandler | None = None, hold_lock: bool = True) -> IngestReport:
        """Add files and folders (idempotent by content hash). hold_lock=False takes the
        index's writer lock only while writing each batch, so that several workers can
        embed at once (see ragqa.index.store); the default holds it throughout."""
        paths = list(paths)
        if not paths:
            raise InputError("nothing to ingest: give at least one file or folder")
        for path in paths:  # before any model loads
            if not Path(path).expanduser().exists():
                raise InputError(f"no such file or folder: {path}")
        s = self.settings
        chunking = {"chunk_tokens": s.chunk_tokens, "chunk_overlap": s.chunk_overlap}
        with self._open_store(self._embedder_info(), chunking, write=True, hold_lock=hold_lock) as store, \
                FileReader.from_settings(s) as reader:
            recorded = store.manifest.get("chunking", chunking)  # an index keeps the chunking it was built with
            report = run_ingest(store, self.embedder, paths, chunk_tokens=int(recorded["chunk_tokens"]),
                                chunk_overlap=int(recorded["chunk_overlap"]), prune=prune, on_event=on_event,
                                reader=reader)
        return report

    def reindex(self, kind: str = "auto", nlist: int = 0) -> str:
        """Rebuild the vector index as `kind`: flat (exact), auto (what its size calls for),
        ivf (FAISS, see ragqa.index.faiss_index) or hnsw (pgvector). Returns the new index's description."""
        if kind not in ("auto", "flat", "ivf", "hnsw"):
            raise InputError(f"index kind {kind!r}: use auto, flat, ivf (FAISS) or hnsw (pgvector)")
        self._require_index()
        with self._open_store(write=True) as store:
            return store.reindex(kind, nlist)

    def migrate_vectors(self, to: str) -> str:
        """Move the index's vectors to `to` (faiss or pgvector), keeping their chunk ids.
        Returns the vector index's description there."""
        self._require_index()
        with self._open_store(write=True, any_store=True) as store:
            described = migrate_vectors(store, to)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        return described

    def _manifest(self) -> dict | None:
        return read_manifest(self.index_dir, self.settings.resolved_database_url)

    def _require_index(self) -> None:
        if self._manifest() is None:
            raise no_index(self.index_dir)

    def documents(self) -> list[dict[str, Any]]:
        """Every document of the index: name, path, chunks, size, content hash, updated."""
        try:
            store = self._open_store()  # reads the manifest once (a database round trip with pgvector)
        except IndexNotFoundError:
            return []
        with store:
            return [{"name": d.name, "path": d.path, "chunks": d.n_chunks, "bytes": d.size, "sha256": d.sha256,
                     "updated_at": d.updated_at.isoformat(timespec="seconds") if d.updated_at else None}
                    for _, d in sorted(store.documents_by_path().items())]

    def delete_document(self, name: str) -> list[str]:
        """Remove every document of this name, its chunks and vectors, and its uploaded
        file if it came from an upload. Returns their paths."""
        self._require_index()
        with self._open_store(write=True, hold_lock=False) as store:
            paths = store.paths_named(name)
            if not paths:
                raise NotFoundError(f"no document named {name!r}")
            with store.writing():
                store.remove_documents(paths)
        uploaded = self.settings.resolved_upload_dir.resolve()
        for path in map(Path, paths):
            if path.parent == uploaded:
                path.unlink(missing_ok=True)
        return paths

    def _open_store(self, embedder_info: dict | None = None, chunking: dict | None = None, *, write: bool = False,
                    hold_lock: bool = True, any_store: bool = False) -> Store:
        """This index's store, with the settings' vector-index and lock options (any_store:
        wherever its vectors are, whatever RAGQA_VECTOR_STORE says)."""
        s = self.settings
        return Store.open(self.index_dir, s.resolved_database_url, embedder_info, chunking, write=write, hold_lock=hold_lock,
                          vector_store=None if any_store else s.vector_store, **asdict(VectorOptions.of(s)))

    # --- ask ----------------------------------------------------------------------

    def retrieve(self, question: str, top_k: int | None = None, *, mode: str | None = None,
                 filters: Filters | dict | None = None, vector: "np.ndarray | None" = None) -> list[Hit]:
        """The best chunks for `question` (`vector`: its embedding, if already made)."""
        retriever = self._retriever(mode)
        return retriever.search(question, top_k or self.settings.top_k, Filters.of(filters), vector=vector)

    def _retriever(self, mode: str | None = None) -> Retriever:
        """A retriever over the index as it is now (opened, or reopened after another
        process saved vectors: before any timing starts)."""
        s = self.settings
        return Retriever(self._store(), self.embedder, mode=mode or s.retrieval, fusion=s.fusion,
                         dense_weight=s.dense_weight, lexical_weight=s.lexical_weight)

    def ask(self, question: str, *, top_k: int | None = None, retrieval_query: str | None = None,
            filters: Filters | dict | None = None, interface: str = "python", asker: str | None = None,
            log: bool = True) -> Answer:
        """Answer from the documents (those `filters` allow, e.g. {"documents": ["report"]}
        or {"path_prefix": "/home/me/docs/2024"}), or abstain, with the reason. The question
        is logged (ragqa.review.log) with the interface it came through and who asked (a
        label), unless `log` is False or the setting question_log is 0."""
        answer = None
        for part in self.stream(question, top_k=top_k, retrieval_query=retrieval_query, filters=filters,
                                interface=interface, asker=asker, log=log):
            if isinstance(part, Answer):
                answer = part
        assert answer is not None
        return answer

    def stream(self, question: str, *, top_k: int | None = None, retrieval_query: str | None = None,
               filters: Filters | dict | None = None, interface: str = "python", asker: str | None = None,
               log: bool = True) -> Iterator[str | Answer]:
        """Yield the answer's text as it is generated, then the final Answer (with its id in
        the question log, when logged; see `ask`).

        The streamed text is the model's draft; the Answer says whether it stands
        (grounded and confident enough) or is withdrawn as an abstention."""
        question = _check_question(question)
        logging_on = log and bool(self.settings.question_log)
        reused = self.reviews.reuse(question) if logging_on and not filters else None
        if reused is not None:  # a person answered this question before: their answer, not a new draft
            yield reused.answer
            yield replace(reused, id=self.question_log.record(reused, interface=interface, asker=asker,
                                                              models=self._identities(), calibration="a person's answer"))
            return
        stamp = self._certificate_stamp()
        if stamp != self._cert_stamp:  # certified from reviews since (perhaps by another process): use it
            self._cert_stamp, self._policy = stamp, None
        steps = Answering(self._retriever(), self.embedder, self.generator, self.policy, self.settings)
        for part in steps.stream(question, top_k, retrieval_query, filters):
            if isinstance(part, Answer) and logging_on:
                part = replace(part, id=self.question_log.record(part, interface=interface, asker=asker,
                                                                 models=self._identities(), calibration=self.policy.describe()))
            yield part

    @property
    def question_log(self) -> QuestionLog:
        """Every question asked of this index (ragqa.review.log), in its database; opening it
        loads no model."""
        if self._log is None:
            self._require_index()
            self._log = QuestionLog(make_engine(self.settings.resolved_database_url))
        return self._log

    def refresh_policy(self) -> Policy:
        """Look for the calibration again (after certifying, here or in another process)."""
        self._policy = None
        return self.policy

    def _certificate_stamp(self) -> int | None:
        try:
            return self.reviews.certificates.latest_id()
        except Exception:  # no index yet, or a database that cannot be read: nothing new
            return self._cert_stamp

    @property
    def reviews(self) -> Desk:
        """A person in the loop (ragqa.review.desk): review logged answers, certify a threshold
        from the reviews, answer withheld questions."""
        if self._desk is None:
            self._desk = Desk(self.question_log, self._identities)
        return self._desk

    def _identities(self) -> dict[str, Any]:
        if self._models is None:
            self._models = self.models()
        return self._models

    def companion(self) -> "RAG":
        """A RAG over the same index and the same models, for bookkeeping on another thread
        (status, reviews, certifying: the model identities must be these); loads nothing."""
        return RAG(settings=self.settings, embedder=self._embedder, generator=self._generator, scorer=self._scorer)

    def derive(self, **changes: Any) -> "RAG":
        """A RAG over the same index and the same loaded models, with these settings changed
        (e.g. `calibration="off"`): ragqa.evaluation.run drafts every question with one."""
        return RAG(settings=self.settings.replace(**changes), embedder=self.embedder, generator=self.generator)

    # --- calibration --------------------------------------------------------------

    def calibrate(self, rows: Sequence[dict[str, Any]], *, target_risk: float = 0.1, delta: float = 0.1,
                  save: str | Path | None = None) -> tuple[calib.Calibration, Path]:
        """Fit a calibration on labelled rows (ragqa.evaluation.collect) and save it, by
        default as <index>/calibration.json, where ask() finds it."""
        cal = calib.fit_rows(rows, target_risk=target_risk, delta=delta, models=self.models(),
                             min_grounding=self.settings.min_grounding)
        path = Path(save) if save else self.index_dir / calib.FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        cal.save(path)
        self._policy = None  # found again on the next question
        return cal, path

    # --- conversation -------------------------------------------------------------

    def condense(self, history: Sequence[tuple[str, str]], question: str) -> str:
        """Rewrite a follow-up into a standalone question for retrieval, or, when the rewrite
        drops the follow-up's words or adds words of its own, join it to the previous
        question (ragqa.answer.followup)."""
        return followup.condense(self.generator, history, _check_question(question), self.settings.seed)

    # --- status -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        store = self._open_store()
        try:
            counts = store.counts()
            vector_index = store.vectors.describe()
            sizes = {p.name: p.stat().st_size for p in sorted(self.index_dir.iterdir())
                     if p.is_file() and not p.name.startswith(".")} if self.index_dir.is_dir() else {}
            sizes.update(store.vectors.sizes())
        finally:
            store.close()
        s = self.settings
        return {
            "index": str(self.index_dir), "database": redact(s.resolved_database_url), **counts,
            "vector_store": store.vector_store, "vector_index": vector_index,
            "embedder": store.manifest.get("embedder"), "chunking": store.manifest.get("chunking"),
            "model": str(s.model_path or f"default ({default_name()})"),
            "calibration": self._calibration_summary(), "people": self._people(),
            "llama_cpp": llama_check.system_info(), "cpu": llama_check.cpu(),
            "created_at": store.manifest.get("created_at"), "ragqa_version": store.manifest.get("ragqa_version"),
            "bytes_on_disk": sizes,
        }

    def _people(self) -> dict[str, Any]:
        """The person in the loop at a glance: questions logged, reviews, withheld questions waiting."""
        try:
            desk = self.reviews
            return {"questions_logged": self.question_log.count(), "reviews": desk.reviews.counts(),
                    "withheld_waiting_for_a_person": desk.reviews.handoff_count()}
        except Exception as e:  # a database that cannot be read: status still works
            return {"unknown": str(e)}

    def _calibration_summary(self) -> str:
        try:
            return self.policy.summary()
        except RagqaError as e:  # e.g. the model file is missing: status still works
            return f"unknown: {e}"

    def close(self) -> None:
        if self._log is not None:
            self._log.engine.dispose()
            self._log, self._desk = None, None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._embedder is not None:
            self._embedder.close()

    def __enter__(self) -> "RAG":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_question(question: str) -> str:
    question = (question or "").strip()
    if not question:
        raise InputError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
    return question
