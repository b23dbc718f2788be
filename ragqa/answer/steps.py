"""Answering one question, as named steps over one `Attempt`:

    retrieve -> (nothing relevant? withheld) -> select context -> generate (streamed)
             -> check (citations, grounding, signals) -> decide (answer or withhold)

`RAG.stream` builds the steps from its parts (a retriever, the embedder, the generator, the
policy that decides, the settings), never from itself; each step reads and adds to the
attempt, so a new lever (a verifier, span answers) is a step or a few signals, not a
longer method. The draft is kept on the Answer whether it stands or is withdrawn."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..models.embed import Embedder
from ..models.generator import Generator, SamplingParams
from ..settings import Settings
from ..types import Answer, Filters, Hit
from . import signals as sig
from .citations import CitationCheck, markers
from .citations import check as check_citations
from .context import select as select_context
from .grammar import citation_grammar, span_candidates, span_grammar
from .injection import is_instruction
from .policy import Decision, Policy, hard_check
from .prompts import (
    ABSTAIN_TEXT,
    answer_messages,
    check_messages,
    content_free_check_messages,
    copies_example,
    copyable_answers,
    may_become_example_answer,
    sentence_check_messages,
)
from .retrieval import Retriever

if TYPE_CHECKING:
    import numpy as np


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
    """The steps of one question, over the parts they need (never the RAG facade)."""

    def __init__(self, retriever: Retriever, embedder: Embedder, generator: Generator, policy: Policy,
                 settings: Settings):
        self.retriever, self.embedder, self.generator = retriever, embedder, generator
        self.policy, self.settings = policy, settings

    def stream(self, question: str, top_k: int | None, retrieval_query: str | None,
               filters: Filters | dict | None) -> Iterator[str | Answer]:
        attempt = Attempt(question, retrieval_query, Filters.of(filters))
        self.retrieve(attempt, top_k)
        early = self.policy.before_generation(attempt.hits, attempt.signals, bool(attempt.filters))
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
        a.vector = self.embedder.embed([a.question])[0]
        query = a.retrieval_query or a.question
        a.hits = self.retriever.search(query, top_k or self.settings.top_k, a.filters,
                                       vector=a.vector if query == a.question else None)
        a.signals.update(sig.retrieval_signals(a.hits))
        a.mark("retrieve")

    def load_model(self, a: Attempt) -> None:
        """A first call loads the model: keep that out of the timings."""
        before = time.perf_counter()
        self.generator.load()
        a.started += time.perf_counter() - before

    def select_context(self, a: Attempt) -> None:
        """The sources for the prompt: with a token budget, excerpts of the best sentences."""
        embedder, generator = self.embedder, self.generator

        def score(q: str, sentences: Sequence[str]) -> "np.ndarray":
            return embedder.embed(sentences) @ a.vector  # q is a.question, embedded once in retrieve

        a.hits = select_context(a.question, a.hits, budget=self.settings.context_tokens,
                                count_tokens=generator.count_tokens, score=score)
        a.signals["context_tokens"] = sum(generator.count_tokens(h.chunk.text) for h in a.hits)
        a.mark("context")

    def sampling(self, a: Attempt, extractive: bool) -> SamplingParams:
        """How the draft is decoded: free text ending in a citation (the citation grammar,
        when set), or a verbatim span of one source (the span grammar)."""
        s = self.settings
        texts = [h.chunk.text for h in a.hits]
        grammar: str | None
        if extractive:
            grammar = span_grammar(texts, question=a.question)
        else:
            grammar = citation_grammar(len(a.hits)) if s.cite_grammar else None
        return SamplingParams(max_tokens=s.max_tokens, temperature=s.temperature, top_p=s.top_p,
                              top_k=s.top_k_sampling, seed=s.seed, grammar=grammar,
                              candidates=tuple(span_candidates(a.question, texts)) if extractive else ())

    def generate(self, a: Attempt, extractive: bool | None = None) -> Iterator[str]:
        """Stream the draft. A draft that is a worked example's answer its sources do not
        hold is not shown: the first pieces wait while they could still become one, and
        such a draft is made again from the same (cached) prompt as a verbatim span of
        the sources, which cannot be a copy (prompts.copies_example)."""
        s = self.settings
        extractive = bool(s.extractive) if extractive is None else extractive
        params = self.sampling(a, extractive)
        pieces: list[str] = []
        copyable = () if extractive else copyable_answers([h.chunk.text for h in a.hits])
        held = bool(copyable)  # pieces not yet shown
        for piece in self.generator.chat(answer_messages(a.question, a.hits, s.system_prompt), params):
            pieces.append(piece)
            if held and not may_become_example_answer("".join(pieces), copyable):
                held = False
                yield "".join(pieces)
            elif not held:
                yield piece
        draft = "".join(pieces).strip()
        if copyable and copies_example(draft, copyable):
            a.signals["example_copied"] = draft
            yield from self.generate(a, extractive=True)
            return
        if held and pieces:
            yield "".join(pieces)
        a.draft = draft
        a.mark("generate")

    def check(self, a: Attempt) -> None:
        """Citations parsed and grounded, and every signal read off the draft."""
        text, hits, generator = a.draft, a.hits, self.generator
        checked = a.checked = check_citations(text, hits)
        a.signals.update({
            "n_citations": len(checked.citations), "n_invalid_citations": len(checked.invalid),
            "cited": [c.n for c in checked.citations], "grounding": checked.grounding,
            "citation_support": round(sum(c.support for c in checked.citations) / len(checked.citations), 4)
            if checked.citations else 0.0,
            "numbers_supported": checked.numbers_supported, "declined": sig.declined(text),
            "cites_instruction": any(c.support > 0 and is_instruction(c.quote) for c in checked.citations),
        })
        a.signals.update(sig.answer_signals(a.question, text, hits, [m for m, _, _ in markers(text)]))
        a.signals.update(sig.generation_signals(generator.last_logprobs))
        a.signals["start_probability"] = generator.last_start_probability
        a.signals.update(self.self_check(a))
        a.signals.update(self.sentence_check(a))
        a.mark("check")

    def self_check(self, a: Attempt) -> dict[str, Any]:
        """Ask the model whether the sources state its answer, corrected by the same
        question over content-free sources. Skipped for generators that cannot say."""
        if not self.settings.self_check or not self.generator.can_self_check or not a.draft:
            return {}
        ask, prompt = self.generator.yes_probability, self.settings.system_prompt
        p = ask(check_messages(a.question, a.hits, prompt, a.draft))
        p_cf = ask(content_free_check_messages(a.question, len(a.hits), prompt, a.draft))
        corrected = sig.contextual_yes(p, p_cf)
        return {"self_check": None if corrected is None else round(corrected, 4),
                "self_check_raw": None if p is None else round(p, 4),
                "self_check_content_free": None if p_cf is None else round(p_cf, 4)}

    def sentence_check(self, a: Attempt) -> dict[str, Any]:
        """Ask the model whether the sentence the answer cites, alone, states that answer to
        the question: on when set, or (auto) when the calibration in use reads it. Skipped
        when a hard check already withholds the draft."""
        want = self.settings.sentence_check
        if want == "off" or not self.generator.can_self_check or a.checked is None or not a.checked.citations:
            return {}
        if want == "auto":
            cal = self.policy.calibration
            if cal is None or "sentence_check" not in cal.features:
                return {}
        if hard_check(a.signals, self.policy.min_grounding) is not None:
            return {}
        p = self.generator.yes_probability(sentence_check_messages(a.question, a.checked.citations[0].quote, a.draft),
                                           apart=True)
        return {} if p is None else {"sentence_check": round(p, 4)}

    def decide(self, a: Attempt) -> Answer:
        decision = self.policy.decide(a.signals)
        if decision.abstain:
            return self.withheld(a, decision)
        assert a.checked is not None
        return Answer(question=a.question, answer=a.draft, abstained=False, confidence=decision.confidence,
                      reason=decision.reason, citations=a.checked.citations, sources=tuple(a.hits), signals=a.signals,
                      calibrated=decision.calibrated, timings=a.timings(), retrieval_query=a.retrieval_query,
                      draft=a.draft)

    def withheld(self, a: Attempt, decision: Decision) -> Answer:
        return Answer(question=a.question, answer=ABSTAIN_TEXT, abstained=True, confidence=decision.confidence,
                      reason=decision.reason, citations=(), sources=tuple(a.hits), signals=a.signals,
                      calibrated=decision.calibrated, timings=a.timings(), retrieval_query=a.retrieval_query,
                      draft=a.draft)
