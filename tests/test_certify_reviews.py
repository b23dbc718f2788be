"""Certifying from reviews (ragqa.review.certify): the figures the README quotes, the fixed
split, alpha spending, and the guarantee when a person re-certifies as reviews accumulate."""

from __future__ import annotations

import numpy as np
import pytest

from ragqa.review import certify as R


def test_reviews_needed_are_the_figures_the_readme_quotes():
    # target risk 0.10, delta 0.10: no error, 5% and 7% wrong among the answered reviews
    assert [R.answers_needed(0.1, 0.1, rate) for rate in (0.0, 0.05, 0.07)] == [22, 78, 199]
    assert R.answers_needed(0.1, 0.1, 0.1) is None  # at the target itself, no number does
    assert [R.answers_needed(0.1, R.level(k, 0.1), 0.0) for k in (1, 3, 10)] == [29, 46, 67]


def test_the_levels_spent_sum_to_delta_and_the_split_is_fixed():
    assert sum(R.level(k, 0.1) for k in range(1, 100_000)) == pytest.approx(0.1, rel=1e-4)
    parts = [R.part_of(i) for i in range(1, 2001)]
    assert parts == [R.part_of(i) for i in range(1, 2001)]  # the same every time: a review never changes sides
    assert 900 <= parts.count("fit") <= 1100


def rows_for(rng: np.random.Generator, n: int, start_id: int) -> list[dict]:
    """Reviewed drafts whose chance of being right rises with their retrieval score u (uniform)."""
    u = rng.uniform(0, 1, n)
    right = rng.uniform(0, 1, n) < chance(u)
    return [{"id": start_id + i, "right": bool(r), "signals": {"retrieval_top": float(x), "grounding": 1.0, "n_citations": 1}}
            for i, (x, r) in enumerate(zip(u, right))]


def chance(u: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-8 * (u - 0.4)))  # 60% right in all; 94% of those with u >= 0.7


def true_risk(cal, grid: np.ndarray) -> float:
    """The selective risk at the calibration's threshold over the population."""
    conf = np.array([cal.probability({"retrieval_top": float(x), "grounding": 1.0, "n_citations": 1}) for x in grid])
    answered = grid[conf >= cal.threshold]
    return float(np.mean(1 - chance(answered))) if len(answered) else 0.0


def test_re_certifying_as_reviews_accumulate_keeps_the_guarantee():
    """40 people each review 50 answers at a time and re-certify after each batch, up to
    300 reviews (6 attempts, the calibrator refitted each time): the share of people ever
    given a certificate whose true risk exceeds the target stays within delta, and most of
    them do get one."""
    rng = np.random.default_rng(3)
    grid = np.linspace(0, 1, 501)
    target, delta, people = 0.2, 0.1, 40
    violated = certified = 0
    models = {"generator": {"name": "g"}, "embedder": {"name": "e"}}
    for _ in range(people):
        rows: list[dict] = []
        bad = got = False
        for attempt in range(1, 7):
            rows += rows_for(rng, 50, len(rows) + 1)
            out = R.certify(rows, target_risk=target, delta=delta, attempt=attempt, models=models, min_grounding=0.5)
            if out.certified:
                got = True
                bad = bad or true_risk(out.calibration, grid) > target
        violated += bad
        certified += got
    assert violated / people <= delta
    assert certified >= people * 0.6  # not vacuous (30 of 40 when written, none violated)


def test_with_a_prior_every_review_tests_it_and_fewer_reviews_certify():
    """The shipped calibration as prior: no review is spent on fitting, the sequence starts
    where the prior's own table says; with 80 reviews it certifies where fitting anew on
    half of them does not."""
    from ragqa.evaluation import calibrate as C

    rng = np.random.default_rng(5)
    models = {"generator": {"name": "g"}, "embedder": {"name": "e"}}
    prior = C.fit_rows(rows_for(rng, 1000, 1), target_risk=0.2, delta=0.1, models=models, min_grounding=0.5)
    assert prior.fitted["threshold_table"] and prior.threshold <= 1
    got = {True: 0, False: 0}
    for _ in range(20):
        reviews = rows_for(rng, 80, 1)
        with_prior = R.certify(reviews, target_risk=0.2, delta=0.1, attempt=1, models=models, min_grounding=0.5, prior=prior)
        assert with_prior.n_fit == 0 and with_prior.n_test == 80
        anew = R.certify(reviews, target_risk=0.2, delta=0.1, attempt=1, models=models, min_grounding=0.5)
        assert anew.n_fit + anew.n_test == 80 and anew.n_fit > 0
        got[True] += with_prior.certified
        got[False] += anew.certified
    assert got[True] > got[False]  # 13 of 20 against 4 when written
