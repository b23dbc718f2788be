"""Metric functions on cases computed by hand (the arithmetic is in the comments)."""

import pytest

from ragqa.evaluation import metrics as M


def test_token_f1_and_exact_match():
    # "the cat sat" -> [cat, sat]; "cat sat down" -> [cat, sat, down]: P 2/2, R 2/3, F1 0.8
    assert M.token_f1("the cat sat", "cat sat down") == pytest.approx(0.8)
    assert M.token_f1("dog", "cat") == 0.0
    assert M.exact_match("The Normans.", "normans") == 1.0


def test_right_answers_by_token_f1_alone():
    assert M.is_right("It was Thomas Savery [2]", ["Thomas Savery"])  # F1 2*0.5*1/1.5 = 0.67, marker stripped
    assert M.is_right("Savery", ["Thomas Savery"])  # F1 2*1*0.5/1.5 = 0.67 >= 0.5
    assert not M.is_right("Newcomen", ["Thomas Savery"])
    assert not M.is_right("Thomas Savery [1]", ["Thomas Savery"], answerable=False)  # any answer is wrong
    assert not M.is_right("", ["x"])
    assert not M.is_right("1698s", ["169"])
    # a long answer that merely contains the gold is not right: F1 2*(1/5)*1/1.2 = 0.33
    assert not M.is_right("Paris, London, Rome or Madrid", ["Paris"])
    assert M.is_right("Paris or Rome", ["Paris"])  # F1 2*(1/3)*1/(4/3) = 0.5, the bound itself


def test_squad_scores_treat_abstention_as_the_empty_answer():
    assert M.squad_scores("", []) == (1.0, 1.0)  # abstained on an unanswerable question
    assert M.squad_scores("Paris [1]", []) == (0.0, 0.0)
    assert M.squad_scores("", ["Paris"]) == (0.0, 0.0)
    assert M.squad_scores("Paris [1]", ["Paris", "in Paris"]) == (1.0, 1.0)


def test_retrieval_metrics():
    ranked, gold = ["a", "b", "c"], ["b", "d"]
    assert M.recall_at(ranked, gold, 1) == 0.0 and M.recall_at(ranked, gold, 2) == 0.5
    assert M.reciprocal_rank(ranked, gold) == 0.5
    # DCG = 1/log2(3) = 0.6309; ideal = 1 + 1/log2(3) = 1.6309; nDCG = 0.3869
    assert M.ndcg_at(ranked, gold, 10) == pytest.approx(0.63093 / 1.63093, abs=1e-4)
    assert M.ndcg_at(["b"], ["b"], 10) == 1.0


def test_auroc_counts_ordered_pairs_with_ties_as_half():
    # right {0.9, 0.7}, wrong {0.8, 0.1}: 0.9>0.8, 0.9>0.1, 0.7<0.8, 0.7>0.1 -> 3/4
    assert M.auroc([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0]) == 0.75
    assert M.auroc([0.5, 0.5], [1, 0]) == 0.5
    assert M.auroc([0.5, 0.4], [1, 1]) is None


def test_ece_and_brier_on_two_equal_mass_bins():
    conf, right = [0.2, 0.2, 0.8, 0.8], [0, 1, 1, 1]
    # bin 1: conf 0.2, accuracy 0.5 -> 0.3; bin 2: conf 0.8, accuracy 1 -> 0.2; ECE = (0.3 + 0.2) / 2
    assert M.ece(conf, right, n_bins=2) == pytest.approx(0.25)
    assert M.brier(conf, right) == pytest.approx((0.04 + 0.64 + 0.04 + 0.04) / 4)
    assert M.reliability(conf, right, n_bins=2) == [(0.2, 0.5, 2), (0.8, 1.0, 2)]


def test_ece_bins_have_equal_mass():
    bins = M.equal_mass_bins([i / 100 for i in range(95)], 10)
    assert len(bins) == 10 and {len(b) for b in bins} == {9, 10}


def test_risk_coverage_and_aurc():
    # most confident first: right, wrong, right, wrong -> risk 0, 1/2, 1/3, 2/4
    cov, risk = M.risk_coverage([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0])
    assert list(cov) == [0.25, 0.5, 0.75, 1.0]
    assert list(risk) == pytest.approx([0, 0.5, 1 / 3, 0.5])
    assert M.aurc([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0]) == pytest.approx((0 + 0.5 + 1 / 3 + 0.5) / 4)


def test_selective_coverage_and_risk():
    assert M.selective([True, True, False, False], [True, False, True, False]) == (0.5, 0.5)
    assert M.selective([False, False], [True, True]) == (0.0, None)
