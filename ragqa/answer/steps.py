"""Answering one question, as named steps over one `Attempt`:

    retrieve -> (nothing relevant? withheld) -> select context -> generate (streamed)
             -> check (citations, grounding, signals) -> decide (answer or withhold)

`RAG.stream` runs them; each step reads and adds to the attempt, so a new lever (a
verifier, span answers) is a step or a few signals, not a longer method. The draft is
kept on the Answer whether it stands or is withdrawn."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..models.generator import SamplingParams, citation_grammar, span_candidates, span_grammar
from ..types import Answer, Filters, Hit
from . import policy as conf
from .citations import CitationCheck, markers
from .citations import check as check_citations
from .context import select as select_context
from .injection import is_instruction
from .prompts import ABSTAIN_TEXT, answer_messages, check_messages, content_free_check_messages

if TYPE_CHECKING:
    from ..rag import RAG


@dataclass
class Attempt:
    question: str
    retrieval_query: str | None
    filters: Filters
    vector: Any = None  # the question's embedding: made once, for retrieval and for choosing sentences
    hits: list[Hit] = field(default_factory=list)
    signals: dict[str, Any] = field(default_factory=dict)
    draft: str = ""
    checked: CitationCheck | None = None
    started: float = field(default_factory=time.perf_counter)
    marks: dict[str, float] = field(default_factory=dict)  # step -> time it ended

    def mark(self, step: str) -> None:
        self.marks[step] = time.perf_counter()

    def timings(self) -> dict[str, float]:
        """retrieve_s (retrieval and the context), generate_s, check_s, total_s."""
        t0, m = self.started, self.marks
        t1 = m.get("context", m.get("retrieve", t0))
        out = {"retrieve_s": t1 - t0, "generate_s": m.get("generate", t1) - t1}
        if "check" in m:
            out["check_s"] = m["check"] - m["generate"]
        out["total_s"] = time.perf_counter() - t0
        return out


class Answering:
    def __init__(self, rag: "RAG"):
        self.rag = rag
        self.settings = rag.settings

    def stream(self, question: str, top_k: int | None, retrieval_query: str | None,
               filters: Filters | dict | None) -> Iterator[str | Answer]:
        self.rag._store()  # load the index and the embedder outside the timings
        attempt = Attempt(question, retrieval_query, Filters.of(filters))
        self.retrieve(attempt, top_k)
        early = self.nothing_to_answer_from(attempt)
        if early is not None:
            yield self.withheld(attempt, early)
            return
        self.load_model(attempt)
        self.select_context(attempt)
        yield from self.generate(attempt)
        self.check(attempt)
        yield self.decide(attempt)

    # --- the steps ------------------------------------------------------------------

    def retrieve(self, a: Attempt, top_k: int | None) -> None:
        a.vector = self.rag.embedder.embed([a.question])[0]
        query = a.retrieval_query or a.question
        a.hits = self.rag.retrieve(query, top_k, filters=a.filters, vector=a.vector if query == a.question else None)
        a.signals.update(conf.retrieval_signals(a.hits))
        a.mark("retrieve")

    def nothing_to_answer_from(self, a: Attempt) -> conf.Decision | None:
        if not a.hits:
            return conf.Decision(True, 0.0, "no document matches the filters" if a.filters else "the index is empty", False)
        return conf.before_generation(a.signals, self.settings.min_relevance)

    def load_model(self, a: Attempt) -> None:
        """A first call loads the model: keep that out of the timings."""
        if load := getattr(self.rag.generator, "load", None):
            before = time.perf_counter()
            load()
            a.started += time.perf_counter() - before

    def select_context(self, a: Attempt) -> None:
        """The sources for the prompt: with a token budget, excerpts of the best sentences."""
        embedder, generator = self.rag.embedder, self.rag.generator

        def score(q: str, sentences: Sequence[str]):
            return embedder.embed(sentences) @ a.vector  # q is a.question, embedded once in retrieve

        a.hits = select_context(a.question, a.hits, budget=self.settings.context_tokens,
                                count_tokens=generator.count_tokens, score=score)
        a.signals["context_tokens"] = sum(generator.count_tokens(h.chunk.text) for h in a.hits)
        a.mark("context")

    def generate(self, a: Attempt) -> Iterator[str]:
        s = self.settings
        texts = [h.chunk.text for h in a.hits]
        if s.extractive:
            grammar = span_grammar(texts, question=a.question)
        else:
            grammar = citation_grammar(len(a.hits)) if s.cite_grammar else None
        params = SamplingParams(max_tokens=s.max_tokens, temperature=s.temperature, top_p=s.top_p,
                                top_k=s.top_k_sampling, seed=s.seed, grammar=grammar,
                                candidates=tuple(span_candidates(a.question, texts)) if s.extractive else ())
        pieces: list[str] = []
        for piece in self.rag.generator.chat(answer_messages(a.question, a.hits, s.system_prompt), params):
            pieces.append(piece)
            yield piece
        a.draft = "".join(pieces).strip()
        a.mark("generate")

    def check(self, a: Attempt) -> None:
        """Citations parsed and grounded, and every signal read off the draft."""
        text, hits, generator = a.draft, a.hits, self.rag.generator
        checked = a.checked = check_citations(text, hits)
        a.signals.update({
            "n_citations": len(checked.citations), "n_invalid_citations": len(checked.invalid),
            "cited": [c.n for c in checked.citations], "grounding": checked.grounding,
            "citation_support": round(sum(c.support for c in checked.citations) / len(checked.citations), 4)
            if checked.citations else 0.0,
            "numbers_supported": checked.numbers_supported, "declined": conf.declined(text),
            "cites_instruction": any(c.support > 0 and is_instruction(c.quote) for c in checked.citations),
        })
        a.signals.update(conf.answer_signals(a.question, text, hits, [m for m, _, _ in markers(text)]))
        a.signals.update(conf.generation_signals(getattr(generator, "last_logprobs", None)))
        a.signals["start_probability"] = getattr(generator, "last_start_probability", None)
        a.signals.update(self.self_check(a))
        a.mark("check")

    def self_check(self, a: Attempt) -> dict[str, Any]:
        """Ask the model whether the sources state its answer, corrected by the same
        question over content-free sources. Skipped for generators that cannot say."""
        ask = getattr(self.rag.generator, "yes_probability", None)
        if not self.settings.self_check or ask is None or not a.draft:
            return {}
        prompt = self.settings.system_prompt
        p = ask(check_messages(a.question, a.hits, prompt, a.draft))
        p_cf = ask(content_free_check_messages(a.question, len(a.hits), prompt, a.draft))
        corrected = conf.contextual_yes(p, p_cf)
        return {"self_check": None if corrected is None else round(corrected, 4),
                "self_check_raw": None if p is None else round(p, 4),
                "self_check_content_free": None if p_cf is None else round(p_cf, 4)}

    def decide(self, a: Attempt) -> Answer:
        rag = self.rag
        decision = conf.decide(a.signals, rag.scorer, min_confidence=rag.min_confidence,
                               min_grounding=self.settings.min_grounding, certified=rag._certified())
        if decision.abstain:
            return self.withheld(a, decision)
        assert a.checked is not None
        return Answer(question=a.question, answer=a.draft, abstained=False, confidence=decision.confidence,
                      reason=decision.reason, citations=a.checked.citations, sources=tuple(a.hits), signals=a.signals,
                      calibrated=decision.calibrated, timings=a.timings(), retrieval_query=a.retrieval_query,
                      draft=a.draft)

    def withheld(self, a: Attempt, decision: conf.Decision) -> Answer:
        return Answer(question=a.question, answer=ABSTAIN_TEXT, abstained=True, confidence=decision.confidence,
                      reason=decision.reason, citations=(), sources=tuple(a.hits), signals=a.signals,
                      calibrated=decision.calibrated, timings=a.timings(), retrieval_query=a.retrieval_query,
                      draft=a.draft)
