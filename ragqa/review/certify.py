"""A threshold certified from a person's reviews of their own questions (`ragqa calibrate
--reviews`), for whatever model and documents they have.

The reviews that may certify (drawn at random, or labels from a file: ragqa.review.reviews)
test a calibrator that never saw them, by Learn-then-Test (ragqa.evaluation.calibrate):

- with a prior (the calibration shipped for these models, fitted on SQuAD questions), the
  prior is the calibrator and *every* review tests it; the test sequence starts where the
  prior's own certification table predicts the smallest p-value, fixed before any review
  is read;
- without one, the reviews are split in two by a hash of the question's id, fixed once and
  for all (a review is a fitting or a testing review forever, whenever it was made): a
  calibrator is fitted on the fitting reviews, which also fix where the sequence starts,
  and tested on the testing reviews.

Measured on 544 held-out drafts of Qwen2.5-Coder-0.5B (bench/bench_reviews.py), the prior
certifies with far fewer reviews (docs/review.md).

Re-certifying as reviews accumulate: attempt k (counted per pair of models, every run of
`ragqa calibrate --reviews` that tests) tests at level delta / (k (k + 1)). These levels
sum to delta, so by the union bound the chance that *any* certificate ever issued for
these models is wrong stays at most delta, however often the person re-runs it and however
the testing reviews overlap between runs (alpha spending). The cost is mild: the answers
needed grow with log(1 / level), e.g. at target 0.10 with no error seen, 22 answers at
level 0.10, 29 at 0.05 (attempt 1), 46 at 0.0083 (attempt 3), 67 at 0.0009 (attempt 10).

When nothing certifies, `more` says how many more reviews would, at the error rate seen so
far among the testing reviews the sequence's first threshold answers."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..answer.scorer import Calibration
from ..errors import ConfigError
from ..evaluation import calibrate as C

FIT_SHARE = 0.5  # of the reviews, fixed per question id
MIN_FIT = 10  # fitting reviews needed to fit a calibrator of their own (with a right and a wrong draft)


def part_of(question_id: int) -> str:
    """'fit' or 'test', from a hash of the question's id: never changes, never looks at the review."""
    h = int.from_bytes(hashlib.sha256(f"ragqa-review-{question_id}".encode()).digest()[:8], "big") / 2**64
    return "fit" if h < FIT_SHARE else "test"


def level(attempt: int, delta: float) -> float:
    """The level attempt k (from 1) tests at: delta / (k (k + 1)), summing to delta."""
    return delta / (attempt * (attempt + 1))


def answers_needed(target_risk: float, alpha: float, error_rate: float, cap: int = 20_000) -> int | None:
    """The fewest answered testing reviews that certify `target_risk` at level `alpha` if
    `error_rate` of them are wrong; None when no number does (error_rate >= target), or
    none short of `cap` (so close to the target that reviewing cannot be the way)."""
    if error_rate >= target_risk:
        return None
    n = C.min_answers(target_risk, alpha)
    while n <= cap:
        if C.binom_tail(math.ceil(error_rate * n - 1e-9), n, target_risk) <= alpha:
            return n
        n = n + 1 if n < 2000 else int(n * 1.01)
    return None


def parts(rows: Sequence[dict[str, Any]], prior: Calibration | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(fitting, testing) reviews: with a prior that has its certification table, every
    review tests it; else the fixed hash split."""
    if prior is not None and prior.fitted.get("threshold_table"):
        return [], list(rows)
    return [r for r in rows if part_of(int(r["id"])) == "fit"], [r for r in rows if part_of(int(r["id"])) == "test"]


@dataclass
class Outcome:
    calibration: Calibration | None  # None: too few reviews to fit one
    certified: bool
    attempt: int
    level: float
    n_reviews: int
    n_fit: int
    n_test: int
    prior: str | None
    more: int | None  # more reviews that would certify, at the error rate seen so far (None: certified, or none would)
    message: str


def certify(rows: Sequence[dict[str, Any]], *, target_risk: float, delta: float, attempt: int, models: dict[str, Any],
            min_grounding: float, prior: Calibration | None = None, today: dt.date | None = None) -> Outcome:
    """Fit and certify from reviewed rows ({"id", "signals", "right"}) for these models."""
    if not 0 < target_risk < 1 or not 0 < delta < 1:
        raise ConfigError("target risk and delta must lie strictly between 0 and 1")
    table = prior.fitted.get("threshold_table") if prior is not None else None
    fit_rows, test_rows = parts(rows, prior)
    alpha = level(attempt, delta)
    common: dict[str, Any] = {"attempt": attempt, "level": alpha, "n_reviews": len(rows), "n_fit": len(fit_rows), "n_test": len(test_rows),
              "prior": (prior.fitted.get("source") or "the calibration shipped for these models") if prior else None}
    fit_right = [bool(r["right"]) for r in fit_rows]
    ok = [C.passes_checks(r["signals"], min_grounding) for r in test_rows]
    if prior is not None:
        cal = replace(prior, models=models, thresholds={}, fitted={})
        fit_conf = [cal.probability(r["signals"]) for r in fit_rows]
        n_table, n_test = int(prior.fitted.get("n_threshold") or 0), len(test_rows)

        def start(target: float) -> float:
            return C.table_start(table or [], n_table, n_test, target, alpha)

        cal = C.certify(cal, fit_conf, fit_right, [r["signals"] for r in test_rows], [r["right"] for r in test_rows], ok,
                        target_risk=target_risk, delta=alpha, start=start if table else None)
    else:
        if len(fit_rows) < MIN_FIT:
            need = MIN_FIT - len(fit_rows)
            return Outcome(None, False, more=None, message=(
                f"{len(rows)} reviews are too few to fit a calibration for these models: it needs at least {MIN_FIT} "
                f"fitting reviews (about half of all); about {2 * need} more reviews"), **common)
        if len(set(fit_right)) < 2:  # every fitting draft right (or wrong): nothing to rank by; the base rate
            cal = base_rate(fit_right, models)
            cal = C.certify(cal, [cal.probability({})] * len(fit_rows), fit_right, [r["signals"] for r in test_rows],
                            [r["right"] for r in test_rows], ok, target_risk=target_risk, delta=alpha)
        else:
            cal = C.fit([r["signals"] for r in fit_rows], fit_right, [r["signals"] for r in test_rows],
                        [r["right"] for r in test_rows], ok, target_risk=target_risk, delta=alpha, models=models)
    cal.delta = delta  # every certificate ever issued for these models holds together with probability 1 - delta
    certified = cal.threshold <= 1
    when = (today or dt.date.today()).isoformat()
    cal.fitted.update({
        "source": (f"{'certified' if certified else 'fitted, not certified,'} on {len(rows)} reviews of your questions, {when}"),
        "provenance": f"on {len(rows)} reviews of your questions, {when}",
        "certified_for": {"kinds": ["reviewed"], "in_words": "questions like those asked of this index and reviewed"},
        "reviews": {k: v for k, v in common.items()},
        "measured": {"n_fit": len(fit_rows), "n_threshold": len(test_rows)},
    })
    more = None if certified else more_reviews(cal, test_rows, ok, len(rows), target_risk, level(attempt + 1, delta))
    if certified:
        message = (f"certified on {len(rows)} reviews ({len(fit_rows)} fitting, {len(test_rows)} testing; attempt {attempt}, "
                   f"tested at level {alpha:.4g}): threshold {cal.threshold:.3f} for target risk {target_risk:g}")
    elif more is None:
        message = (f"not certified: among the testing reviews the first threshold tested answers, the error rate is at "
                   f"or above the target {target_risk:g}; more reviews will not change that: choose a higher target risk "
                   f"(--target-risk) or a stronger model")
    else:
        message = (f"not certified yet ({len(rows)} reviews: {len(fit_rows)} fitting, {len(test_rows)} testing; attempt "
                   f"{attempt}): about {more} more reviews at the error rate seen so far would certify target risk "
                   f"{target_risk:g}")
    return Outcome(cal, certified, more=more, message=message, **common)


def base_rate(fit_right: Sequence[bool], models: dict[str, Any]) -> Calibration:
    """A calibration that gives every draft the same confidence, the smoothed share of right
    fitting drafts ((right + 1) / (n + 2)): with it, certifying tests whether answering every
    draft that passes the hard checks keeps the risk. For fitting reviews that are all
    right (or all wrong), where a calibrator has nothing to rank by."""
    p = (sum(fit_right) + 1) / (len(fit_right) + 2)
    return Calibration(features=[], mean=[], scale=[], coef=[], intercept=math.log(p / (1 - p)), threshold=1.01,
                       target_risk=0.5, delta=0.5, models=models)


def more_reviews(cal: Calibration, test_rows: Sequence[dict[str, Any]], ok: Sequence[bool], n_reviews: int,
                 target_risk: float, next_level: float) -> int | None:
    """Reviews to add so that the next attempt certifies, if the testing reviews keep the
    share answered and the error rate they show at the sequence's first threshold."""
    start = cal.fitted.get("sequence_start", max(C.GRID))
    answered = [r for r, o in zip(test_rows, ok) if o and cal.probability(r["signals"]) >= start]
    if not answered:  # nothing answered at the start yet: assume the threshold part's share of passing drafts
        answered = [r for r, o in zip(test_rows, ok) if o]
    if not answered or not test_rows:
        return None
    rate = sum(not r["right"] for r in answered) / len(answered)
    n = answers_needed(target_risk, next_level, rate)
    if n is None:
        return None
    total = math.ceil(n / (len(answered) / len(test_rows)) * (n_reviews / len(test_rows)))
    return max(1, total - n_reviews)
