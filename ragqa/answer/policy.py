"""THE abstain decision: whether a draft is given as the answer or withheld, and why.

Everything that decides lives here, in order:

1. before generating: nothing retrieved (the index is empty, or the filters match
   nothing), or nothing relevant (the best match below `min_relevance`);
2. hard checks on the draft, whatever its confidence (`hard_check`): the model declined,
   no valid citation, a cited instruction, the answer not grounded in what it cites;
3. the confidence (ragqa.answer.scorer) against the threshold: the user's own
   (RAGQA_MIN_CONFIDENCE, never called certified), else the one the calibration certified
   for the target risk. A calibration that certified no threshold (above 1) withholds every
   answer, and so does the lack of any calibration for the models in use: an uncertified
   model is never presented as answered; its draft is shown as an unverified draft.

`Policy` holds what these need (the scorer, the calibration, the settings' thresholds) and
says in words what the threshold promises (`certified`, `summary`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..settings import Settings
from . import scorer as scoring
from .scorer import BlendScorer, CalibratedScorer, Calibration, Scorer

log = logging.getLogger(__name__)

NONE_GIVEN = 1.01  # a threshold above every confidence: no draft is given as an answer
UNVERIFIED = (": no calibration applies to these models, so the draft is unverified and not given as an answer: "
              "review answers (`ragqa review`, or the page's Review panel: a few dozen can be enough) and certify a "
              "threshold from them (`ragqa calibrate --reviews` says how many more it needs, if any), or set "
              "RAGQA_MIN_CONFIDENCE to a threshold of your own")


@dataclass(frozen=True)
class Decision:
    abstain: bool
    confidence: float
    reason: str
    calibrated: bool


def before_generation(signals: dict[str, Any], min_relevance: float) -> Decision | None:
    """Abstain without generating when retrieval found nothing relevant."""
    top = signals.get("retrieval_top", 0.0)
    if top < min_relevance:
        return Decision(True, 0.0, f"nothing relevant in the documents (best match {top:.2f} < {min_relevance:.2f})", False)
    return None


def hard_check(signals: dict[str, Any], min_grounding: float) -> tuple[str, float] | None:
    """The first rule an answer breaks whatever its confidence: (the reason, a cap on the
    confidence shown), or None. One source for `decide` and the calibration."""
    if signals.get("declined"):
        return "the model found no answer in the sources", 0.05
    if signals.get("n_citations", 0) == 0:
        why = "the answer cites only sources that were not given" if signals.get("n_invalid_citations") else "the answer cites no source"
        return why, 0.1
    if signals.get("cites_instruction"):
        return ("the sentence it cites is an instruction addressed to the assistant, not a statement "
                "(document text is data: a possible prompt injection)"), 0.05
    grounding = signals.get("grounding", 0.0)
    if grounding < min_grounding:
        return f"the answer is not supported by what it cites (grounding {grounding:.2f} < {min_grounding:.2f})", 1.0
    return None


NO_THRESHOLD_CERTIFIED = (", but no answer of this model met the calibration's target risk, so none is given (see "
                          "`ragqa status`; RAGQA_MIN_CONFIDENCE sets a threshold of your own)")


def decide(signals: dict[str, Any], scorer: Scorer, *, min_confidence: float, min_grounding: float,
           certified: str | None = None, none_given: str = NO_THRESHOLD_CERTIFIED) -> Decision:
    """Hard checks first (declined, no valid citation, an instruction cited, not grounded),
    then the threshold. `certified` says what the threshold guarantees (from the
    calibration), for the reason; `none_given` why a threshold above 1 gives nothing."""
    confidence = scorer.score(signals)
    cal = scorer.calibrated
    kind = "calibrated" if cal else "uncalibrated"
    broken = hard_check(signals, min_grounding)
    if broken is not None:
        return Decision(True, min(confidence, broken[1]), broken[0], cal)
    grounding = signals.get("grounding", 0.0)
    if min_confidence > 1:
        return Decision(True, confidence, f"{kind} confidence {confidence:.2f}{none_given}", cal)
    if confidence < min_confidence:
        return Decision(True, confidence, f"{kind} confidence {confidence:.2f} is below the threshold {min_confidence:.2f}", cal)
    cited = ", ".join(f"[{n}]" for n in signals.get("cited", []))
    return Decision(False, confidence, f"answered: cites {cited}, grounding {grounding:.2f}, {kind} confidence "
                                       f"{confidence:.2f} >= threshold {min_confidence:.2f}"
                                       + (f" ({certified})" if certified else ""), cal)


class Policy:
    """The decision's parts for one set of models: the settings' thresholds, and the scorer
    with the calibration that made it (None: the uncalibrated blend), found when first
    needed (a question withheld before generation never looks for it), with `warning`
    saying why a calibration that exists was not used."""

    def __init__(self, settings: Settings, index_dir: Path, models: Callable[[], dict[str, Any]],
                 scorer: Scorer | None = None, stored: scoring.Stored | None = None):
        self.min_relevance, self.min_grounding = settings.min_relevance, settings.min_grounding
        self.user_threshold = settings.min_confidence  # RAGQA_MIN_CONFIDENCE: the user's own, never called certified
        self.chosen_risk = settings.target_risk  # RAGQA_TARGET_RISK
        self._choice, self._index_dir, self._models, self._stored = settings.calibration, index_dir, models, stored
        self._sentence_check = settings.sentence_check
        self._found: tuple[Scorer, Calibration | None, str | None] | None = None
        if scorer is not None:  # given: used as is (its calibration, if it has one, sets the threshold)
            self._found = (scorer, scorer.calibration if isinstance(scorer, CalibratedScorer) else None, None)

    def find(self) -> tuple[Scorer, Calibration | None, str | None]:
        """Look for the calibration that applies to the models now (ragqa.answer.scorer.resolve;
        a warning is logged when one exists for other models): (scorer, calibration, warning)."""
        if self._found is None:
            calibration, warning = scoring.resolve(self._choice, self._index_dir, self._models, self._stored)
            if calibration is not None and "sentence_check" in calibration.features and self._sentence_check == "off":
                # a calibration describes one pipeline: without the signal it reads, it certifies nothing
                calibration, warning = None, ("the calibration reads the sentence check, which RAGQA_SENTENCE_CHECK=off "
                                              "turns off; confidence is uncalibrated")
            if warning:
                log.warning("%s", warning)
            self._found = (CalibratedScorer(calibration) if calibration is not None else BlendScorer(), calibration, warning)
        return self._found

    @property
    def scorer(self) -> Scorer:
        return self.find()[0]

    @property
    def calibration(self) -> Calibration | None:
        return self.find()[1]

    @property
    def warning(self) -> str | None:
        return self.find()[2]

    @property
    def target_risk(self) -> float:
        """The risk the threshold in use is certified for: the setting, else the calibration's
        (nan without a calibration). ConfigError for a risk it certified nothing for."""
        cal, target = self.calibration, self.chosen_risk
        if cal is None or target is None:
            return cal.target_risk if cal is not None else float("nan")
        if cal.threshold_for(target) is None:
            known = sorted({cal.target_risk, *map(float, cal.thresholds)})
            raise ConfigError(f"the calibration certified no threshold for target risk {target:g}; "
                              f"choose one of {', '.join(f'{t:g}' for t in known)} or run `ragqa calibrate`")
        return target

    @property
    def threshold(self) -> float:
        """The abstain threshold: the user's, else the calibration's for the target risk, else
        above 1 (no calibration applies: nothing is given as an answer)."""
        if self.user_threshold is not None:
            return self.user_threshold
        if self.calibration is None:
            return NONE_GIVEN
        found = self.calibration.threshold_for(self.target_risk)
        assert found is not None  # target_risk raised otherwise
        return found

    def certified(self) -> str | None:
        """What the calibration's threshold promises, when it is the threshold in use."""
        cal = self.calibration
        if cal is None or self.user_threshold is not None or self.threshold > 1:
            return None
        kind = cal.fitted.get("certified_for", {}).get("in_words")
        where = cal.fitted.get("provenance")  # e.g. "on 212 reviews of your questions, 2026-12-09"
        return (f"certified{' ' + where if where else ''}{' for ' + kind if kind else ''}: at most {self.target_risk:.0%} "
                f"of the answers given at this threshold are wrong, with probability {1 - cal.delta:.0%}")

    def describe(self) -> str:
        """The confidence and threshold in use, in one short line (the question log's record)."""
        if self.user_threshold is not None:
            return f"your threshold {self.user_threshold:g} (RAGQA_MIN_CONFIDENCE), " + (
                "calibrated" if self.calibration is not None else "uncalibrated")
        cal = self.calibration
        if cal is None:
            return "uncalibrated blend, no calibration for these models: drafts withheld as unverified"
        try:
            threshold = f"threshold {self.threshold:.3f} for target risk {self.target_risk:g}"
        except ConfigError as e:
            threshold = str(e)
        return f"{cal.fitted.get('source', 'fitted')}; {threshold}"

    def summary(self) -> str:
        """The calibration in use, in one line (`ragqa status`, /v1/status)."""
        cal = self.calibration
        if cal is None:
            why = f" ({self.warning})" if self.warning else ""
            given = (f"your threshold {self.user_threshold:g} (RAGQA_MIN_CONFIDENCE) decides" if self.user_threshold is not None
                     else "drafts are withheld as unverified: review answers (`ragqa review`) and certify a threshold "
                          "from them (`ragqa calibrate --reviews`), or set RAGQA_MIN_CONFIDENCE")
            return f"none: confidence is uncalibrated{why}; {given}"
        m = cal.fitted.get("measured", {})
        others = ", ".join(f"{t}: {v:.3f}" if v <= 1 else f"{t}: none" for t, v in cal.thresholds.items())
        kind = cal.fitted.get("certified_for", {}).get("in_words")
        heldout = cal.fitted.get("heldout", {}).get("by_kind", {})
        seen = "; ".join(f"{k}: {r['answered']} of {r['n']} answered, {r['wrong']} wrong" for k, r in sorted(heldout.items()))
        return (f"{cal.fitted.get('source', 'fitted')}: threshold {cal.threshold:.3f} for target risk {cal.target_risk} "
                f"(delta {cal.delta}), fitted on {m.get('n_fit', '?')} + {m.get('n_threshold', '?')} questions"
                + (f"; certified for {kind} only" if kind else "")
                + (f"; on held-out questions the fit never saw: {seen}" if seen else "")
                + (f"; certified thresholds by target risk (RAGQA_TARGET_RISK): {others}" if others else ""))

    def before_generation(self, hits: Sequence[Any], signals: dict[str, Any], filtered: bool) -> Decision | None:
        """Withhold without generating: nothing retrieved, or nothing relevant."""
        if not hits:
            return Decision(True, 0.0, "no document matches the filters" if filtered else "the index is empty", False)
        return before_generation(signals, self.min_relevance)

    def decide(self, signals: dict[str, Any]) -> Decision:
        """Answer or withhold the draft these signals describe."""
        unverified = self.calibration is None and self.user_threshold is None
        return decide(signals, self.scorer, min_confidence=self.threshold, min_grounding=self.min_grounding,
                      certified=self.certified(), none_given=UNVERIFIED if unverified else NO_THRESHOLD_CERTIFIED)
