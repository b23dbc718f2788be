"""Calibration: signals -> a probability that the answer is right, and the abstain
threshold that keeps the error rate among answered questions at or below a target.

Fitting (`fit`) needs labelled answers: the signals recorded on each Answer and
whether its draft was right. It takes two disjoint parts of them:

1. the calibrator, a logistic regression on standardized signals (scikit-learn), is fitted
   on the first part;
2. the threshold is chosen on the second part by Learn-then-Test (Angelopoulos et al.,
   2021) with fixed-sequence testing: for each threshold t the null hypothesis "selective
   risk at t exceeds the target" gets the exact binomial p-value P(Binom(n_t, target) <= k_t)
   (n_t answered, k_t wrong among them). Thresholds are tested from high to low, each at
   level delta, and testing stops at the first that is not rejected; the lowest rejected
   one is kept. The sequence starts at the grid point where the first part predicts the
   likeliest rejection (`start_at`), so it is fixed before the second part is looked at,
   which is what the guarantee needs: with probability at
   least 1 - delta over the draw of the second part, the selective risk on new questions
   of the same kind is at most the target. When no threshold is rejected, the threshold
   is above every confidence: ragqa abstains rather than break the promise.

The fitted calibration is plain JSON (coefficients, not a pickle), saved in the index
directory and tied to the identity of the GGUF and of the embedder; applying it needs
numpy only. A default for the bundled models ships in ragqa/calibrations/; applying one is
ragqa.answer.scorer, deciding with it ragqa.answer.policy."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Any

from ..answer.policy import hard_check
from ..answer.scorer import FILENAME, CalibratedScorer, Calibration, features
from ..answer.signals import FEATURES
from ..errors import ConfigError
from . import metrics as M

__all__ = ["FILENAME", "FEATURES", "GRID", "RISK_LEVELS", "Calibration", "CalibratedScorer", "fit", "fit_rows", "split",
           "choose_threshold", "certify", "sequence_start", "binom_tail", "min_answers", "passes_checks"]

GRID = tuple(round(i / 40, 3) for i in range(1, 40))  # 0.025 .. 0.975
RISK_LEVELS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)  # target risks certified besides the chosen one


def binom_tail(k: int, n: int, p: float) -> float:
    """P(Binom(n, p) <= k): the p-value of "risk > p" after k errors in n answers."""
    from scipy.stats import binom

    return float(binom.cdf(k, n, p))


def min_answers(target_risk: float, delta: float) -> int:
    """The fewest answers that can reject "risk > target" at level delta (with no error)."""
    return math.ceil(math.log(delta) / math.log(1 - target_risk))


def sequence_start(fit_confidence: Sequence[float], fit_right: Sequence[bool], n_threshold: int, *,
                   target_risk: float, delta: float, grid: Sequence[float] = GRID) -> float:
    """Where fixed-sequence testing starts: the grid threshold at which the threshold part
    (n_threshold rows) is likeliest to reject "risk > target", predicted from the fitting
    part (`start_at`). Only the fitting part is read, so the sequence is fixed before the
    threshold part is seen."""
    n = max(1, len(fit_confidence))
    points = []
    for t in sorted(grid, reverse=True):
        answered = [r for c, r in zip(fit_confidence, fit_right) if c >= t]
        points.append((t, len(answered) / n, len(answered) - sum(bool(r) for r in answered), len(answered)))
    return start_at(points, n_threshold, target_risk, delta, max(grid))


def start_at(points: Sequence[tuple[float, float, int, int]], n: int, target_risk: float, delta: float, top: float) -> float:
    """The threshold, of (threshold, share answered, wrong, answered) predictions, with the
    highest chance that n new rows reject "risk > target" at level delta: the chance that
    Binom(n share, r) errors stay at or below the most a rejection allows, with the error
    rate r shrunk toward 1/2 ((wrong + 1) / (answered + 2)) so that a few lucky answers at
    a high threshold do not look like a sure thing; the highest threshold on ties.

    (It was the smallest predicted p-value, which favoured high thresholds with few answers:
    Qwen 0.5B's sequence started at 0.85 with 39 answers and failed there while 0.60 to 0.80
    would have passed; docs/readers.md.)"""
    import numpy as np
    from scipy.stats import binom

    best, best_power = top, 0.0
    for t, share, wrong, answered in sorted(points, key=lambda p: -p[0]):
        m = round(share * n)
        if not answered or m < 1:
            continue
        allowed = int(np.count_nonzero(binom.cdf(np.arange(m + 1), m, target_risk) <= delta)) - 1  # cdf rises with k
        if allowed < 0:
            continue
        power = float(binom.cdf(allowed, m, (wrong + 1) / (answered + 2)))
        if power > best_power + 1e-12:
            best, best_power = t, power
    return best


def choose_threshold(confidence: Sequence[float], right: Sequence[bool], answerable: Sequence[bool] | None = None, *,
                     target_risk: float, delta: float, grid: Sequence[float] = GRID,
                     start: float | None = None) -> tuple[float, list[dict]]:
    """Learn-then-Test by fixed-sequence testing over the grid points at or below `start`
    (default: the top of the grid), from high to low. `answerable` marks the questions that
    pass the hard checks (others are never answered, whatever their confidence). Returns
    (threshold, one row per grid point); the threshold is 1.01 (abstain on everything)
    when the first hypothesis of the sequence is not rejected."""
    import numpy as np

    c = np.asarray(confidence, dtype=float)
    y = np.asarray(right, dtype=bool)
    ok = np.ones_like(y) if answerable is None else np.asarray(answerable, dtype=bool)
    top = max(grid) if start is None else start
    rows, chosen, testing = [], 1.01, True
    for t in sorted(grid, reverse=True):
        answered = ok & (c >= t)
        n, k = int(answered.sum()), int((answered & ~y).sum())
        p = binom_tail(k, n, target_risk) if n else 1.0
        tested = testing and t <= top
        rejected = tested and p <= delta
        if tested and not rejected:
            testing = False
        if rejected:
            chosen = t
        rows.append({"threshold": t, "answered": n, "wrong": k, "risk": (k / n if n else None), "p_value": p,
                     "tested": tested, "valid": rejected})
    return chosen, rows[::-1]


MIN_SEPARATION = 0.05  # a signal is used when its AUROC alone is at least 0.55 (or at most 0.45)


def select_features(raw: list[list[float | None]], y: Any, names: Sequence[str], present: Sequence[str]) -> list[str]:
    """The signals that separate right from wrong on the fitting part on their own
    (|AUROC - 0.5| >= MIN_SEPARATION); all present ones if none does. Fewer, useful inputs
    keep a calibrator fitted on a few hundred questions from fitting noise."""
    keep = []
    for name in present:
        j = list(names).index(name)
        pairs = [(r[j], label) for r, label in zip(raw, y) if r[j] is not None]
        a = M.auroc([v for v, _ in pairs], [label for _, label in pairs]) if pairs else None
        if a is not None and abs(a - 0.5) >= MIN_SEPARATION:
            keep.append(name)
    return keep or list(present)


def out_of_fold(Z: Any, y: Any, C: float, seed: int = 0, rank: tuple[Any, Any] | None = None) -> list[float]:
    """Confidences for the fitting part from calibrators that did not see each row (two
    folds): what the threshold part will look like. In-sample confidences are optimistic,
    and a sequence started from them began too high (the first, noisy test failed and
    stopped it: docs/readers.md). `rank`: (Z, y) of rows that join every fold's ranking
    fit (see `fit`)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), dtype=int)
    for label in (0, 1):
        where = np.flatnonzero(y == label)
        fold[rng.permutation(where)[: len(where) // 2]] = 1
    out = np.zeros(len(y))
    for k in (0, 1):
        train, test = fold != k, fold == k
        if len(set(y[train].tolist())) < 2:
            coef, intercept = _logistic(Z, y, C, rank)
            return (1 / (1 + np.exp(-(Z @ coef + intercept)))).tolist()
        coef, intercept = _logistic(Z[train], y[train], C, rank)
        out[test] = 1 / (1 + np.exp(-(Z[test] @ coef + intercept)))
    return out.tolist()


def _logistic(Z: Any, y: Any, C: float, rank: tuple[Any, Any] | None = None) -> tuple[Any, float]:
    """(coefficients, intercept) of a logistic regression of y on Z. With `rank` rows, the
    coefficients are fitted on Z and the rank rows together (how to order answers), then
    their scale and the intercept again on Z alone (Platt scaling), so that the probability
    is calibrated for the fitting rows' kind of question, not for the mix."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    if rank is None:
        m = LogisticRegression(C=C, max_iter=1000).fit(Z, y)
        return m.coef_[0], float(m.intercept_[0])
    m = LogisticRegression(C=C, max_iter=1000).fit(np.vstack([Z, rank[0]]), np.concatenate([y, rank[1]]))
    score = Z @ m.coef_[0] + m.intercept_[0]
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(score[:, None], y)
    a, b = float(platt.coef_[0][0]), float(platt.intercept_[0])
    return m.coef_[0] * a, float(m.intercept_[0]) * a + b


def fit(fit_signals: Sequence[dict], fit_right: Sequence[bool], thr_signals: Sequence[dict],
        thr_right: Sequence[bool], thr_answerable: Sequence[bool] | None = None, *,
        target_risk: float = 0.1, delta: float = 0.1, models: dict[str, Any] | None = None,
        names: Sequence[str] = FEATURES, C: float = 1.0, rank_signals: Sequence[dict] = (),
        rank_right: Sequence[bool] = ()) -> Calibration:
    """Fit the calibrator on one part and the threshold on the other (see the module doc).
    `rank_signals`/`rank_right`: labelled rows of another kind of question (never of the
    threshold part) that help order the answers but not set the probability: the weights
    are fitted on both, the probability's scale on the fitting part alone (`_logistic`)."""
    import numpy as np

    if not 0 < target_risk < 1 or not 0 < delta < 1:
        raise ConfigError("target risk and delta must lie strictly between 0 and 1")
    y = np.asarray(fit_right, dtype=int)
    if len(set(y.tolist())) < 2:
        raise ConfigError("cannot calibrate: the fitting questions need both right and wrong answers")
    y_rank = np.asarray(rank_right, dtype=int)
    raw = [features(s, names) for s in fit_signals]
    raw_rank = [features(s, names) for s in rank_signals]
    present = [n for j, n in enumerate(names) if any(r[j] is not None for r in raw)]
    present = select_features(raw + raw_rank, np.concatenate([y, y_rank]), names, present)
    idx = [list(names).index(n) for n in present]

    def matrix(rows: list[list[float | None]]) -> Any:
        return np.array([[np.nan if r[j] is None else r[j] for j in idx] for r in rows], dtype=float).reshape(len(rows), len(idx))

    X, X_rank = matrix(raw), matrix(raw_rank)
    mean = np.nanmean(X, axis=0)
    X, X_rank = np.where(np.isnan(X), mean, X), np.where(np.isnan(X_rank), mean, X_rank)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    rank = ((X_rank - mean) / scale, y_rank) if len(y_rank) else None
    coef, intercept = _logistic((X - mean) / scale, y, C, rank)
    cal = Calibration(features=present, mean=mean.tolist(), scale=scale.tolist(), coef=np.asarray(coef).tolist(),
                      intercept=float(intercept), threshold=1.01, target_risk=target_risk, delta=delta,
                      models=models or {})
    # the sequence's start is read off the fitting part, with confidences out of fold
    fit_conf = out_of_fold((X - mean) / scale, y, C, rank=rank) if len(y) >= 20 else [cal.probability(s) for s in fit_signals]
    out = certify(cal, fit_conf, fit_right, thr_signals, thr_right, thr_answerable, target_risk=target_risk, delta=delta)
    if len(y_rank):
        out.fitted["ranked_also_on"] = len(y_rank)
    return out


def certify(cal: Calibration, fit_conf: Sequence[float], fit_right: Sequence[bool], thr_signals: Sequence[dict],
            thr_right: Sequence[bool], thr_answerable: Sequence[bool] | None = None, *, target_risk: float,
            delta: float, start: Callable[[float], float] | None = None) -> Calibration:
    """Set `cal`'s thresholds by Learn-then-Test on the threshold part, at `target_risk` and
    at each of RISK_LEVELS, each sequence started where the fitting part's confidences
    (`fit_conf`, from a calibrator that did not see them) predict the smallest p-value, or
    where `start(target)` says (fixed without the threshold part). Returns `cal` with its
    thresholds and `fitted` record set."""
    conf = [cal.probability(s) for s in thr_signals]

    def one(target: float) -> tuple[float, list[dict], float]:
        # each target has its own sequence, fixed from the fitting part: the guarantee holds
        # for a target chosen in advance, whichever of them it is
        begin = (start(target) if start is not None else
                 sequence_start(fit_conf, fit_right, len(thr_signals), target_risk=target, delta=delta) if fit_conf
                 else max(GRID))
        chosen, rows = choose_threshold(conf, thr_right, thr_answerable, target_risk=target, delta=delta, start=begin)
        return chosen, rows, begin

    cal.target_risk, cal.delta = target_risk, delta
    cal.threshold, table, began = one(target_risk)
    cal.thresholds = {f"{t:g}": one(t)[0] for t in RISK_LEVELS if thr_signals}
    cal.fitted = {"n_fit": len(fit_conf), "n_threshold": len(thr_signals), "sequence_start": began, "threshold_table": table,
                  "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    return cal


def table_start(table: Sequence[dict], n_table: int, n: int, target_risk: float, delta: float,
                grid: Sequence[float] = GRID) -> float:
    """Where a sequence on n new rows starts, predicted from an earlier certification's
    threshold table (rows of `choose_threshold` on n_table rows), as `sequence_start` does
    from a fitting part."""
    points = [(r["threshold"], r["answered"] / max(1, n_table), int(r["wrong"]), int(r["answered"]))
              for r in table if r.get("answered") and r["threshold"] in grid]
    return start_at(points, n, target_risk, delta, max(grid))


def split(rows: Sequence[dict], seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Two halves, each with the same mix of kinds (answerable, unanswerable kinds) and of
    right and wrong drafts, drawn with a fixed seed."""
    import random

    rng = random.Random(seed)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r.get("kind"), bool(r["right"])), []).append(r)
    first: list[dict] = []
    second: list[dict] = []
    for key in sorted(groups, key=str):
        group = sorted(groups[key], key=lambda r: str(r.get("id")))
        rng.shuffle(group)
        half = (len(group) + 1) // 2 if len(first) <= len(second) else len(group) // 2
        first += group[:half]
        second += group[half:]
    return first, second


def passes_checks(signals: dict[str, Any], min_grounding: float) -> bool:
    """Whether an answer could be given at all: the hard checks of ragqa.answer.policy."""
    return hard_check(signals, min_grounding) is None


def fit_rows(rows: Sequence[dict], *, target_risk: float, delta: float, models: dict[str, Any],
             min_grounding: float, seed: int = 0, rank_rows: Sequence[dict] = ()) -> Calibration:
    """Split labelled rows in two, fit on one half, choose the threshold on the other, and
    record the figures measured on that second half. `rank_rows` join the fit's ordering
    only (see `fit`)."""
    fit_part, thr_part = split(rows, seed)
    cal = fit([r["signals"] for r in fit_part], [r["right"] for r in fit_part],
              [r["signals"] for r in thr_part], [r["right"] for r in thr_part],
              [passes_checks(r["signals"], min_grounding) for r in thr_part],
              target_risk=target_risk, delta=delta, models=models,
              rank_signals=[r["signals"] for r in rank_rows], rank_right=[r["right"] for r in rank_rows])
    conf = [cal.probability(r["signals"]) for r in thr_part]
    right = [bool(r["right"]) for r in thr_part]
    answered = [passes_checks(r["signals"], min_grounding) and c >= cal.threshold for r, c in zip(thr_part, conf)]
    coverage, risk = M.selective(answered, right)
    cal.fitted["measured"] = {
        "n_fit": len(fit_part), "n_threshold": len(thr_part), "right_in_fit": sum(r["right"] for r in fit_part),
        "right_in_threshold": sum(right), "threshold": cal.threshold, "coverage": coverage, "selective_risk": risk,
        "auroc": M.auroc(conf, right), "ece": M.ece(conf, right), "brier": M.brier(conf, right),
    }
    return cal
