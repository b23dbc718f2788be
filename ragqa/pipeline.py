"""The RAG facade: ingest(), ask(), stream(), condense(), status().

The CLI, the chat and (later) the server are thin layers over this class; they hold no
logic that the Python API lacks."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import calibration as calib
from . import confidence as conf
from . import llama_check
from .citations import check as check_citations
from .citations import markers as _markers
from .confidence import BlendScorer, Scorer
from .context import select as select_context
from .embedding import Embedder, SentenceTransformerEmbedder
from .errors import ConfigError, InputError, NotFoundError, RagqaError
from .generation import Generator, LlamaCppGenerator, SamplingParams, citation_grammar, span_candidates, span_grammar
from .ingest import EventHandler, IngestReport, run_ingest
from .injection import is_instruction
from .prompts import ABSTAIN_TEXT, answer_messages, check_messages, condense_messages, content_free_check_messages
from .retrieval import Retriever
from .settings import Settings
from .store import MANIFEST, VECTORS, Store, file_stamp, no_index, redact
from .textutil import content_words
from .types import Answer, Filters, Hit

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000


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
        self._scorer: Scorer | None = scorer
        self.calibration: calib.Calibration | None = None
        self.calibration_warning: str | None = None  # set when a calibration exists but does not apply
        self._reader: Store | None = None
        self._reader_stamp: tuple | None = None

    # --- components, loaded when first needed -------------------------------------

    @property
    def index_dir(self) -> Path:
        return Path(self.settings.index_dir)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = SentenceTransformerEmbedder.from_settings(self.settings)
        return self._embedder

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            s = self.settings
            self._generator = LlamaCppGenerator(s.model_path, n_ctx=s.n_ctx, n_gpu_layers=s.n_gpu_layers,
                                                n_threads=s.n_threads, seed=s.seed, check=bool(s.llama_check))
        return self._generator

    @property
    def scorer(self) -> Scorer:
        """The calibrated scorer when a calibration fits these models (see ragqa.calibration),
        else the uncalibrated blend."""
        if self._scorer is None:
            self._scorer = BlendScorer()
            choice = self.settings.calibration
            if choice == "off":
                pass
            elif choice == "auto":
                self.calibration, self.calibration_warning = calib.find(self.index_dir, self.models())
            else:
                found = calib.Calibration.load(Path(choice))
                self.calibration_warning = found.applies_to(self.models())
                if self.calibration_warning is None:
                    self.calibration = found
                else:
                    self.calibration_warning = f"the calibration {choice} does not apply: {self.calibration_warning}"
            if self.calibration is not None:
                self._scorer = calib.CalibratedScorer(self.calibration)
            if self.calibration_warning:
                log.warning("%s", self.calibration_warning)
        return self._scorer

    @property
    def min_confidence(self) -> float:
        """The abstain threshold: the setting, else the calibration's, else 0.5."""
        if self.settings.min_confidence is not None:
            return self.settings.min_confidence
        self.scorer  # noqa: B018 - finds the calibration
        if self.calibration is None:
            return 0.5
        return self.calibration.threshold_for(self.target_risk)  # type: ignore[return-value]

    @property
    def target_risk(self) -> float:
        """The risk the threshold in use is certified for: the setting, else the calibration's."""
        cal = self.calibration
        target = self.settings.target_risk
        if cal is None or target is None:
            return cal.target_risk if cal is not None else float("nan")
        if cal.threshold_for(target) is None:
            known = sorted({cal.target_risk, *map(float, cal.thresholds)})
            raise ConfigError(f"the calibration certified no threshold for target risk {target:g}; "
                              f"choose one of {', '.join(f'{t:g}' for t in known)} or run `ragqa calibrate`")
        return target

    def calibration_summary(self) -> str:
        try:
            self.scorer  # noqa: B018 - finds the calibration
        except RagqaError as e:  # e.g. the model file is missing: status still works
            return f"unknown: {e}"
        cal = self.calibration
        if cal is None:
            return f"none: confidence is uncalibrated ({self.calibration_warning})" if self.calibration_warning \
                else "none: confidence is uncalibrated (run `ragqa calibrate`)"
        m = cal.fitted.get("measured", {})
        others = ", ".join(f"{t}: {v:.3f}" if v <= 1 else f"{t}: none" for t, v in cal.thresholds.items())
        return (f"{cal.fitted.get('source', 'fitted')}: threshold {cal.threshold:.3f} for target risk {cal.target_risk} "
                f"(delta {cal.delta}), fitted on {m.get('n_fit', '?')} + {m.get('n_threshold', '?')} questions"
                + (f"; certified thresholds by target risk (RAGQA_TARGET_RISK): {others}" if others else ""))

    def models(self) -> dict[str, Any]:
        """The identities a calibration is tied to, read without loading either model."""
        gen = self.generator
        ident = getattr(gen, "identity", None) or {"name": gen.name}
        manifest = self.index_dir / MANIFEST
        if manifest.exists():
            import json

            emb = json.loads(manifest.read_text(encoding="utf-8")).get("embedder", {})
        else:
            emb = self._embedder_info()
        return {"generator": ident, "embedder": {"name": emb.get("name"), "dimension": emb.get("dimension")}}

    def _embedder_info(self) -> dict:
        e = self.embedder
        return {"name": e.name, "dimension": e.dimension, "max_tokens": e.max_tokens}

    def _store(self) -> Store:
        """The index opened for reading; reopened when another process saved new vectors."""
        stamp = file_stamp(self.index_dir / VECTORS)
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
        embed at once (see ragqa.store); the default holds it throughout."""
        paths = list(paths)
        if not paths:
            raise InputError("nothing to ingest: give at least one file or folder")
        for path in paths:  # before any model loads
            if not Path(path).expanduser().exists():
                raise InputError(f"no such file or folder: {path}")
        s = self.settings
        chunking = {"chunk_tokens": s.chunk_tokens, "chunk_overlap": s.chunk_overlap}
        with self._open_store(self._embedder_info(), chunking, write=True, hold_lock=hold_lock) as store, \
                s.file_reader() as reader:
            recorded = store.manifest.get("chunking", chunking)  # an index keeps the chunking it was built with
            report = run_ingest(store, self.embedder, paths, chunk_tokens=int(recorded["chunk_tokens"]),
                                chunk_overlap=int(recorded["chunk_overlap"]), prune=prune, on_event=on_event,
                                reader=reader)
        return report

    def reindex(self, kind: str = "auto", nlist: int = 0) -> str:
        """Rebuild the vector index as `kind`: flat (exact), ivf, or auto (what its size calls
        for, see ragqa.vectors). Returns the new index's description."""
        if kind not in ("auto", "flat", "ivf"):
            raise InputError(f"index kind {kind!r}: use auto, flat or ivf")
        self._require_index()
        with self._open_store(write=True) as store:
            return store.reindex(kind, nlist)

    def _require_index(self) -> None:
        if not (self.index_dir / MANIFEST).exists():
            raise no_index(self.index_dir)

    def documents(self) -> list[dict[str, Any]]:
        """Every document of the index: name, path, chunks, size, content hash, updated."""
        if not (self.index_dir / MANIFEST).exists():
            return []
        with self._open_store() as store:
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
                    hold_lock: bool = True) -> Store:
        """This index's store, with the settings' vector-index and lock options."""
        s = self.settings
        return Store.open(self.index_dir, s.resolved_database_url, embedder_info, chunking, write=write, hold_lock=hold_lock,
                          ivf_min_vectors=s.ivf_min_vectors, nprobe=s.nprobe, lock_timeout=s.lock_timeout)

    # --- ask ----------------------------------------------------------------------

    def retrieve(self, question: str, top_k: int | None = None, *, mode: str | None = None,
                 filters: Filters | dict | None = None) -> list[Hit]:
        s = self.settings
        retriever = Retriever(self._store(), self.embedder, mode=mode or s.retrieval, fusion=s.fusion,
                              dense_weight=s.dense_weight, lexical_weight=s.lexical_weight)
        return retriever.search(question, top_k or s.top_k, Filters.of(filters))

    def ask(self, question: str, *, top_k: int | None = None, retrieval_query: str | None = None,
            filters: Filters | dict | None = None) -> Answer:
        """Answer from the documents (those `filters` allow, e.g. {"documents": ["report"]}
        or {"path_prefix": "/home/me/docs/2024"}), or abstain, with the reason."""
        answer = None
        for part in self.stream(question, top_k=top_k, retrieval_query=retrieval_query, filters=filters):
            if isinstance(part, Answer):
                answer = part
        assert answer is not None
        return answer

    def stream(self, question: str, *, top_k: int | None = None, retrieval_query: str | None = None,
               filters: Filters | dict | None = None) -> Iterator[str | Answer]:
        """Yield the answer's text as it is generated, then the final Answer.

        The streamed text is the model's draft; the Answer says whether it stands
        (grounded and confident enough) or is withdrawn as an abstention."""
        question = _check_question(question)
        s = self.settings
        self._store()  # load the index and the embedder outside the timings
        t0 = time.perf_counter()
        filters = Filters.of(filters)
        hits = self.retrieve(retrieval_query or question, top_k, filters=filters)
        t1 = time.perf_counter()
        signals: dict[str, Any] = conf.retrieval_signals(hits)
        early = conf.before_generation(signals, s.min_relevance) if hits else conf.Decision(
            True, 0.0, "no document matches the filters" if filters else "the index is empty", False)
        if early is not None:
            yield self._abstained(question, hits, signals, early, t0, t1, t1, retrieval_query)
            return
        if load := getattr(self.generator, "load", None):  # a first call loads the model: keep that out of the timings
            before = time.perf_counter()
            load()
            shift = time.perf_counter() - before
            t0 += shift
        hits = self._context(question, hits)
        t1 = time.perf_counter()
        signals["context_tokens"] = sum(self.generator.count_tokens(h.chunk.text) for h in hits)
        params = SamplingParams(max_tokens=s.max_tokens, temperature=s.temperature, top_p=s.top_p,
                                top_k=s.top_k_sampling, seed=s.seed, grammar=self._grammar(question, hits),
                                candidates=tuple(span_candidates(question, [h.chunk.text for h in hits])) if s.extractive else ())
        pieces: list[str] = []
        for piece in self.generator.chat(answer_messages(question, hits, s.system_prompt), params):
            pieces.append(piece)
            yield piece
        t2 = time.perf_counter()
        text = "".join(pieces).strip()
        checked = check_citations(text, hits)
        signals.update({
            "n_citations": len(checked.citations), "n_invalid_citations": len(checked.invalid),
            "cited": [c.n for c in checked.citations], "grounding": checked.grounding,
            "citation_support": round(sum(c.support for c in checked.citations) / len(checked.citations), 4) if checked.citations else 0.0,
            "numbers_supported": checked.numbers_supported, "declined": conf.declined(text),
            "cites_instruction": any(c.support > 0 and is_instruction(c.quote) for c in checked.citations),
        })
        signals.update(conf.answer_signals(question, text, hits, [m for m, _, _ in _markers(text)]))
        signals.update(conf.generation_signals(getattr(self.generator, "last_logprobs", None)))
        signals["start_probability"] = getattr(self.generator, "last_start_probability", None)
        signals.update(self._self_check(question, hits, text))
        t3 = time.perf_counter()
        decision = conf.decide(signals, self.scorer, min_confidence=self.min_confidence, min_grounding=s.min_grounding,
                               certified=self._certified())
        if decision.abstain:
            yield self._abstained(question, hits, signals, decision, t0, t1, t2, retrieval_query, draft=text, t3=t3)
            return
        yield Answer(question=question, answer=text, abstained=False, confidence=decision.confidence,
                     reason=decision.reason, citations=checked.citations, sources=tuple(hits), signals=signals,
                     calibrated=decision.calibrated, timings=_timings(t0, t1, t2, t3), retrieval_query=retrieval_query)

    def _certified(self) -> str | None:
        """What the calibration's threshold promises, when it is the threshold in use."""
        cal = self.calibration
        if cal is None or self.settings.min_confidence is not None or self.min_confidence > 1:
            return None
        return (f"certified: at most {self.target_risk:.0%} of the answers given at this threshold are wrong, "
                f"with probability {1 - cal.delta:.0%}")

    def _grammar(self, question: str, hits: Sequence[Hit]) -> str | None:
        s = self.settings
        if s.extractive:
            return span_grammar([h.chunk.text for h in hits], question=question)
        return citation_grammar(len(hits)) if s.cite_grammar else None

    def _context(self, question: str, hits: Sequence[Hit]) -> list[Hit]:
        """The sources for the prompt: with a token budget, excerpts of the best sentences."""
        def score(q: str, sentences: Sequence[str]):
            vectors = self.embedder.embed([q, *sentences])
            return vectors[1:] @ vectors[0]

        return select_context(question, hits, budget=self.settings.context_tokens,
                              count_tokens=self.generator.count_tokens, score=score)

    def _self_check(self, question: str, hits: Sequence[Hit], draft: str) -> dict[str, Any]:
        """Ask the model whether the sources state its answer, corrected by the same
        question over content-free sources. Skipped for generators that cannot say."""
        ask = getattr(self.generator, "yes_probability", None)
        if not self.settings.self_check or ask is None or not draft:
            return {}
        p = ask(check_messages(question, hits, self.settings.system_prompt, draft))
        p_cf = ask(content_free_check_messages(question, len(hits), self.settings.system_prompt, draft))
        corrected = conf.contextual_yes(p, p_cf)
        return {"self_check": None if corrected is None else round(corrected, 4),
                "self_check_raw": None if p is None else round(p, 4),
                "self_check_content_free": None if p_cf is None else round(p_cf, 4)}

    def _abstained(self, question: str, hits: Sequence[Hit], signals: dict, decision: conf.Decision,
                   t0: float, t1: float, t2: float, retrieval_query: str | None, draft: str = "",
                   t3: float | None = None) -> Answer:
        if draft:
            signals = {**signals, "draft": draft}
        return Answer(question=question, answer=ABSTAIN_TEXT, abstained=True, confidence=decision.confidence,
                      reason=decision.reason, citations=(), sources=tuple(hits), signals=signals,
                      calibrated=decision.calibrated, timings=_timings(t0, t1, t2, t3), retrieval_query=retrieval_query)

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
        self._scorer = None  # found again on the next question
        self.calibration = self.calibration_warning = None
        return cal, path

    # --- conversation -------------------------------------------------------------

    def condense(self, history: Sequence[tuple[str, str]], question: str) -> str:
        """Rewrite a follow-up into a standalone question for retrieval. If the model's
        rewrite drops the question's own words, fall back to the previous question
        joined to the follow-up (which still carries the conversation's subject)."""
        question = _check_question(question)
        if not history:
            return question
        params = SamplingParams(max_tokens=48, temperature=0.0, seed=self.settings.seed, stop=("\n",))
        rewrite = "".join(self.generator.chat(condense_messages(history, question), params)).strip().strip('"')
        own = content_words(question)
        kept = len(own & content_words(rewrite)) / len(own) if own else 1.0
        if rewrite and len(rewrite.split()) <= 40 and kept >= 0.5 and rewrite.lower() != question.lower():
            return rewrite
        return f"{history[-1][0]} {question}"

    # --- status -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        store = self._open_store()
        try:
            counts = store.counts()
            vector_index = store.vectors.describe()
        finally:
            store.close()
        sizes = {p.name: p.stat().st_size for p in sorted(self.index_dir.iterdir()) if p.is_file() and not p.name.startswith(".")}
        s = self.settings
        return {
            "index": str(self.index_dir), "database": redact(s.resolved_database_url), **counts,
            "vector_index": vector_index,
            "embedder": store.manifest.get("embedder"), "chunking": store.manifest.get("chunking"),
            "model": str(s.model_path or "default (SmolLM2-135M-Instruct Q4_1)"),
            "calibration": self.calibration_summary(),
            "llama_cpp": llama_check.system_info(), "cpu": llama_check.cpu(),
            "created_at": store.manifest.get("created_at"), "ragqa_version": store.manifest.get("ragqa_version"),
            "bytes_on_disk": sizes,
        }

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        close = getattr(self._embedder, "close", None)
        if close:
            close()

    def __enter__(self) -> "RAG":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_question(question: str) -> str:
    question = (question or "").strip()
    if not question:
        raise InputError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
    return question


def _timings(t0: float, t1: float, t2: float, t3: float | None = None) -> dict[str, float]:
    out = {"retrieve_s": t1 - t0, "generate_s": t2 - t1}
    if t3 is not None:
        out["check_s"] = t3 - t2
    out["total_s"] = time.perf_counter() - t0
    return out
