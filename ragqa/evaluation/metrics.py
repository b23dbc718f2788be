"""Metric functions for `ragqa eval` and `ragqa calibrate`: pure, numpy only, each
checked in tests/test_metrics.py on cases computed by hand.

Answer correctness (SQuAD conventions): an answer is right when its normalized text
reaches token F1 >= 0.5 against a normalized gold answer. A long answer that merely
contains the gold is not right (it says other things too); any answer to an unanswerable
question is wrong.

Selective classification: each question has a confidence c (the predicted probability
that the answer is right) and a label y (1 right, 0 wrong); the system answers when
it does not abstain. `coverage` = answered / all, `selective_risk` = wrong / answered."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..answer.citations import strip_markers
from ..textutil import normalize_answer

# --- answers ------------------------------------------------------------------------


def token_f1(prediction: str, gold: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not p or not g:
        return float(p == g)
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def is_right(answer: str, golds: Sequence[str], answerable: bool = True) -> bool:
    """Token F1 >= 0.5 against some gold answer; never right when unanswerable."""
    if not answerable or not answer:
        return False
    text = normalize_answer(strip_markers(answer))
    if not text:
        return False
    for gold in golds:
        g = normalize_answer(gold)
        if g and token_f1(text, g) >= 0.5:
            return True
    return False


def contains_any(text: str, golds: Sequence[str]) -> bool:
    """Whether the normalized text holds a normalized gold answer as whole words."""
    t = f" {normalize_answer(text)} "
    return any(f" {g} " in t for g in map(normalize_answer, golds) if g)


def squad_scores(prediction: str, golds: Sequence[str]) -> tuple[float, float]:
    """(EM, F1) as in the official SQuAD 2.0 script: an abstention is the empty string,
    and an unanswerable question's only gold answer is the empty string."""
    golds = [g for g in golds if normalize_answer(g)] or [""]
    prediction = strip_markers(prediction)
    return max(exact_match(prediction, g) for g in golds), max(token_f1(prediction, g) for g in golds)


# --- retrieval ----------------------------------------------------------------------


def recall_at(ranked: Sequence[str], gold: Sequence[str], k: int) -> float:
    relevant = set(gold)
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def reciprocal_rank(ranked: Sequence[str], gold: Sequence[str], depth: int = 10) -> float:
    relevant = set(gold)
    for i, doc in enumerate(ranked[:depth], start=1):
        if doc in relevant:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: Sequence[str], gold: Sequence[str], k: int = 10) -> float:
    """Binary relevance: DCG = sum over relevant ranks i of 1/log2(i+1), over the ideal DCG."""
    relevant = set(gold)
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 1) for i, doc in enumerate(ranked[:k], start=1) if doc in relevant)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


# --- confidence ---------------------------------------------------------------------


def _arrays(confidence, right) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(confidence, dtype=float)
    y = np.asarray(right, dtype=float)
    if c.shape != y.shape:
        raise ValueError("confidence and labels differ in length")
    return c, y


def auroc(confidence, right) -> float | None:
    """Probability that a right answer has a higher confidence than a wrong one (ties 1/2);
    None when only one class is present."""
    c, y = _arrays(confidence, right)
    pos, neg = c[y == 1], c[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return None
    # rank-sum (Mann-Whitney U) with average ranks for ties
    order = np.argsort(c, kind="mergesort")
    ranks = np.empty(len(c))
    sorted_c = c[order]
    i = 0
    while i < len(c):
        j = i
        while j + 1 < len(c) and sorted_c[j + 1] == sorted_c[i]:
            j += 1
        ranks[order[i: j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[y == 1].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def equal_mass_bins(confidence, n_bins: int = 10) -> list[np.ndarray]:
    """Indices of the questions in each bin, sorted by confidence, bins of (nearly) equal size."""
    c = np.asarray(confidence, dtype=float)
    order = np.argsort(c, kind="mergesort")
    return [b for b in np.array_split(order, min(n_bins, len(c))) if len(b)]


def ece(confidence, right, n_bins: int = 10) -> float | None:
    """Expected calibration error over equal-mass bins: sum_b (n_b/n) |mean conf_b - accuracy_b|."""
    c, y = _arrays(confidence, right)
    if len(c) == 0:
        return None
    return float(sum(len(b) / len(c) * abs(c[b].mean() - y[b].mean()) for b in equal_mass_bins(c, n_bins)))


def reliability(confidence, right, n_bins: int = 10) -> list[tuple[float, float, int]]:
    """(mean confidence, accuracy, count) per equal-mass bin: the reliability diagram."""
    c, y = _arrays(confidence, right)
    return [(float(c[b].mean()), float(y[b].mean()), len(b)) for b in equal_mass_bins(c, n_bins)]


def brier(confidence, right) -> float | None:
    c, y = _arrays(confidence, right)
    return float(np.mean((c - y) ** 2)) if len(c) else None


def risk_coverage(confidence, right) -> tuple[np.ndarray, np.ndarray]:
    """Coverage k/n and risk (wrong among the k most confident) for k = 1..n."""
    c, y = _arrays(confidence, right)
    order = np.argsort(-c, kind="mergesort")
    wrong = np.cumsum(1 - y[order])
    k = np.arange(1, len(c) + 1)
    return k / len(c), wrong / k


def aurc(confidence, right) -> float | None:
    """Area under the risk-coverage curve (mean selective risk over k = 1..n; lower is better)."""
    c, _ = _arrays(confidence, right)
    if len(c) == 0:
        return None
    _, risk = risk_coverage(confidence, right)
    return float(risk.mean())


def selective(answered, right) -> tuple[float, float | None]:
    """(coverage, selective risk) of an answer/abstain decision; risk is None when nothing is answered."""
    a = np.asarray(answered, dtype=bool)
    y = np.asarray(right, dtype=bool)
    if len(a) == 0:
        return 0.0, None
    n_answered = int(a.sum())
    risk = float((~y[a]).sum() / n_answered) if n_answered else None
    return n_answered / len(a), risk


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else None
