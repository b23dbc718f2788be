"""The calibrator and the Learn-then-Test threshold, on synthetic data whose answers are known."""

import json

import numpy as np
import pytest

from ragqa.answer import scorer
from ragqa.answer.signals import contextual_yes
from ragqa.errors import ConfigError
from ragqa.evaluation import calibrate as C


def calibrated_sample(rng, n):
    """Confidence ~ U(0, 1) and right ~ Bernoulli(confidence): among answers with
    confidence >= t, the share wrong is (1 - t) / 2 exactly."""
    c = rng.uniform(size=n)
    return c, rng.uniform(size=n) < c


def test_binomial_tail_by_hand():
    assert C.binom_tail(0, 22, 0.1) == pytest.approx(0.9 ** 22)  # 0.0985
    assert C.binom_tail(1, 2, 0.5) == pytest.approx(0.75)


def test_threshold_lands_just_above_the_true_one():
    c, y = calibrated_sample(np.random.default_rng(0), 4000)
    t, table = C.choose_threshold(c, y, target_risk=0.1, delta=0.1)
    # the true risk (1 - t) / 2 reaches 0.1 at t = 0.8; with 4000 points LTT stops a little above
    assert 0.8 <= t <= 0.85
    row = next(r for r in table if r["threshold"] == t)
    assert row["valid"] and row["risk"] <= 0.1


def test_risk_guarantee_holds_across_draws():
    """Over 300 independent calibration sets of 1,000, the true risk at the chosen threshold
    exceeds the target in at most delta of them."""
    rng = np.random.default_rng(1)
    failures = chosen = 0
    for _ in range(300):
        fit_c, fit_y = calibrated_sample(rng, 1000)  # the fitting part fixes where the sequence starts
        start = C.sequence_start(fit_c, fit_y, 1000, target_risk=0.1, delta=0.1)
        c, y = calibrated_sample(rng, 1000)
        t, _ = C.choose_threshold(c, y, target_risk=0.1, delta=0.1, start=start)
        chosen += t <= 1
        true_risk = (1 - t) / 2 if t <= 1 else 0.0
        failures += true_risk > 0.1
    assert failures / 300 <= 0.1
    assert chosen > 150  # and it is not vacuous: most draws do answer something (199 of 300 when written, 8 failures)


def test_sequence_starts_where_the_fitting_part_predicts_the_surest_rejection():
    assert C.min_answers(0.1, 0.1) == 22  # 0.9**22 = 0.098 <= 0.1 < 0.9**21
    # 10 right at 0.99 (10 of 100 expected: p 0.9**10 = 0.35), 40 right at 0.6 (50 expected,
    # no error: p 0.005), 50 wrong at 0.3 (risk 0.5)
    fit_c = [0.99] * 10 + [0.6] * 40 + [0.3] * 50
    fit_y = [True] * 50 + [False] * 50
    assert C.sequence_start(fit_c, fit_y, 100, target_risk=0.1, delta=0.1) == 0.6


def test_testing_stops_at_the_first_hypothesis_not_rejected():
    # 40 right at 0.9, then 10 wrong at 0.8, then 100 right at 0.7: the risk at 0.7 is 10/150
    # but the sequence stops at 0.8 (risk 10/50), so 0.7 is never reached.
    c = [0.9] * 40 + [0.8] * 10 + [0.7] * 100
    y = [True] * 40 + [False] * 10 + [True] * 100
    t, table = C.choose_threshold(c, y, target_risk=0.1, delta=0.1, start=0.9)
    assert t == 0.825  # the lowest grid point above 0.8 (same 40 answers as at 0.9)
    assert not next(r for r in table if r["threshold"] == 0.7)["tested"]


def test_no_valid_threshold_means_abstain_on_everything():
    t, table = C.choose_threshold([0.9] * 50, [False] * 50, target_risk=0.1, delta=0.1)
    assert t > 1 and not any(r["valid"] for r in table)


def test_answers_that_fail_the_hard_checks_are_never_counted_as_answered():
    c = [0.95] * 60
    right = [True] * 30 + [False] * 30
    passes = [True] * 30 + [False] * 30  # the wrong ones all fail a hard check
    t, table = C.choose_threshold(c, right, passes, target_risk=0.1, delta=0.1, start=0.95)
    assert t <= 0.95  # 30 answered, none wrong: p = 0.9**30 = 0.04
    assert next(r for r in table if r["threshold"] == 0.95)["answered"] == 30


def _signals(rng, n):
    x = rng.normal(size=n)
    right = rng.uniform(size=n) < 1 / (1 + np.exp(-(2 * x - 1)))
    return [{"grounding": float(v), "retrieval_top": 0.5} for v in x], right.tolist()


def test_fit_recovers_a_calibrated_probability():
    rng = np.random.default_rng(2)
    s_fit, y_fit = _signals(rng, 3000)
    s_thr, y_thr = _signals(rng, 3000)
    cal = C.fit(s_fit, y_fit, s_thr, y_thr, target_risk=0.2, delta=0.1)
    assert cal.features == list(C.FEATURES[:1]) + ["grounding"] or "grounding" in cal.features
    s_test, y_test = _signals(rng, 4000)
    p = np.array([cal.probability(s) for s in s_test])
    from ragqa.evaluation.metrics import ece

    assert ece(p, y_test) < 0.03
    assert cal.probability({"grounding": 2.0}) > cal.probability({"grounding": 0.0}) > cal.probability({"grounding": -2.0})
    assert cal.probability({}) == pytest.approx(cal.probability({"grounding": cal.mean[cal.features.index("grounding")], "retrieval_top": 0.5}))


def test_fit_needs_both_classes():
    with pytest.raises(ConfigError, match="both right and wrong"):
        C.fit([{"grounding": 1.0}] * 5, [True] * 5, [], [], target_risk=0.1, delta=0.1)


def test_saved_calibration_is_json_and_tied_to_its_models(tmp_path):
    rng = np.random.default_rng(3)
    s, y = _signals(rng, 400)
    models = {"generator": {"name": "a.gguf", "bytes": 10}, "embedder": {"name": "e", "dimension": 8}}
    cal = C.fit(s[:200], y[:200], s[200:], y[200:], target_risk=0.3, delta=0.1, models=models)
    cal.save(tmp_path / C.FILENAME)
    json.loads((tmp_path / C.FILENAME).read_text())  # plain JSON, no pickle
    found, warning = scorer.find(tmp_path, models)
    assert found is not None and warning is None and found.probability(s[0]) == cal.probability(s[0])
    other = {**models, "generator": {"name": "b.gguf", "bytes": 11}}
    found, warning = scorer.find(tmp_path, other)
    assert found is None and "a.gguf" in warning and "b.gguf" in warning


def test_split_keeps_the_mix_of_kinds_and_labels():
    rows = [{"id": i, "kind": k, "right": r} for i, (k, r) in enumerate([("a", True)] * 10 + [("a", False)] * 30 + [("b", False)] * 20)]
    first, second = C.split(rows)
    assert len(first) == len(second) == 30
    assert sum(r["right"] for r in first) == sum(r["right"] for r in second) == 5
    assert {r["id"] for r in first}.isdisjoint({r["id"] for r in second})


def test_contextual_calibration_of_the_self_check():
    assert contextual_yes(0.7, 0.7) == pytest.approx(0.5)  # says yes as much as without evidence
    assert contextual_yes(0.9, 0.5) == pytest.approx(0.9)  # an unbiased model is left alone
    assert contextual_yes(0.6, 0.8) < 0.5 < contextual_yes(0.6, 0.3)
    assert contextual_yes(None, 0.5) is None


def test_signals_that_do_not_separate_are_left_out():
    rng = np.random.default_rng(4)
    x = rng.normal(size=600)
    y = (rng.uniform(size=600) < 1 / (1 + np.exp(-2 * x))).tolist()
    sig = [{"grounding": float(v), "answer_words": float(n)} for v, n in zip(x, rng.normal(size=600))]
    cal = C.fit(sig[:300], y[:300], sig[300:], y[300:], target_risk=0.3, delta=0.1)
    assert cal.features == ["grounding"]  # answer_words is noise here


def test_a_threshold_is_certified_for_every_risk_level_and_can_be_chosen(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.uniform(size=2000)
    right = rng.uniform(size=2000) < x
    sig = [{"retrieval_top": float(v)} for v in x]
    cal = C.fit(sig[:1000], right[:1000], sig[1000:], right[1000:], target_risk=0.2, delta=0.1, names=("retrieval_top",))
    assert set(cal.thresholds) == {f"{t:g}" for t in C.RISK_LEVELS}
    assert cal.threshold_for(0.2) == cal.threshold == cal.thresholds["0.2"]
    levels = [cal.thresholds[f"{t:g}"] for t in C.RISK_LEVELS]
    assert levels == sorted(levels, reverse=True)  # a lower risk asks for more confidence
    assert cal.threshold_for(0.33) is None
    path = tmp_path / "calibration.json"
    cal.save(path)
    assert C.Calibration.load(path).thresholds == cal.thresholds

    from ragqa import RAG
    from ragqa.testing import ExtractiveGenerator, HashEmbedder

    scorer = C.CalibratedScorer(cal)
    rag = RAG(tmp_path / "i", embedder=HashEmbedder(), generator=ExtractiveGenerator(), scorer=scorer, target_risk=0.3)
    assert rag.policy.threshold == cal.thresholds["0.3"] and rag.policy.target_risk == 0.3
    assert "at most 30% of the answers" in rag.policy.certified()
    other = RAG(tmp_path / "i", embedder=HashEmbedder(), generator=ExtractiveGenerator(), scorer=scorer, target_risk=0.33)
    with pytest.raises(ConfigError, match="no threshold for target risk 0.33; choose one of 0.05, 0.1"):
        other.policy.threshold  # noqa: B018


def test_a_certificate_says_which_questions_it_is_for_and_what_happened_on_the_others(tmp_path):
    """A calibration fitted for some kinds of question says so wherever its certificate is
    shown, with what held-out questions of every kind met (tools/fit_calibration.py)."""
    from ragqa import RAG
    from ragqa.testing import ExtractiveGenerator, HashEmbedder

    rng = np.random.default_rng(5)
    x = rng.uniform(size=2000)
    right = rng.uniform(size=2000) < x
    sig = [{"retrieval_top": float(v)} for v in x]
    cal = C.fit(sig[:1000], right[:1000], sig[1000:], right[1000:], target_risk=0.2, delta=0.1, names=("retrieval_top",))
    assert cal.threshold <= 1
    cal.fitted["certified_for"] = {"kinds": ["answerable", "not_in_corpus"],
                                   "in_words": "questions answerable from the documents or about something absent from the documents"}
    cal.fitted["heldout"] = {"by_kind": {"squad_adversarial": {"n": 383, "answered": 40, "wrong": 31},
                                         "answerable": {"n": 429, "answered": 150, "wrong": 12}}}
    rag = RAG(tmp_path / "i", embedder=HashEmbedder(), generator=ExtractiveGenerator(), scorer=C.CalibratedScorer(cal))
    assert rag.policy.certified().startswith("certified for questions answerable from the documents or about something absent")
    summary = rag.policy.summary()
    assert "certified for questions answerable" in summary and "squad_adversarial: 40 of 383 answered, 31 wrong" in summary


def test_the_per_kind_report_counts_what_ragqa_would_give_on_each_kind():
    """tools/fit_calibration.py: on held-out rows, each kind apart and the certified kinds
    together: answers given (relevance gate, hard checks, threshold), wrong among them,
    drafts copying a worked example."""
    from tools.fit_calibration import per_kind

    rng = np.random.default_rng(9)
    x = rng.uniform(size=1200)
    right = rng.uniform(size=1200) < x
    sig = [{"retrieval_top": float(v), "n_citations": 1, "grounding": 1.0} for v in x]
    cal = C.fit(sig[:600], right[:600], sig[600:], right[600:], target_risk=0.2, delta=0.1, names=("retrieval_top",))
    good = {"retrieval_top": 0.99, "n_citations": 1, "grounding": 1.0}
    rows = ([{"kind": "answerable", "answerable": True, "right": True, "draft": "Nicolosi [1]", "signals": good}] * 3
            + [{"kind": "squad_adversarial", "answerable": False, "right": False, "draft": "x [1]", "signals": good}] * 2
            + [{"kind": "squad_adversarial", "answerable": False, "right": False, "draft": "x [1]",
                "signals": {**good, "grounding": 0.0}}]  # fails a hard check: never given
            + [{"kind": "not_in_corpus", "answerable": False, "right": False, "draft": "y [1]",
                "signals": {**good, "retrieval_top": 0.1}}])  # nothing relevant: withheld before generating
    report = per_kind(cal, rows, min_relevance=0.25, certified=("answerable", "not_in_corpus"))
    assert report["answerable"]["answered"] == 3 and report["answerable"]["example_copies"] == 3
    assert report["squad_adversarial"] == {**report["squad_adversarial"], "n": 3, "answered": 2, "wrong": 2, "risk": 1.0}
    assert report["not_in_corpus"]["answered"] == 0
    together = report["certified kinds together"]
    assert together["n"] == 4 and together["answered"] == 3 and together["risk"] == 0.0 and together["coverage_of_answerable"] == 1.0


def test_the_per_target_report_gives_each_certified_threshold_its_held_out_answers_and_risk():
    """tools/fit_calibration.py: at each target's certified threshold (the README's "certified
    at 0.10 / 0.20"), the answers ragqa would give on held-out rows of the certified kinds."""
    from tools.fit_calibration import per_target

    cal = C.fit([{"retrieval_top": v} for v in (0.1, 0.9)], [False, True], [], [], target_risk=0.2, delta=0.1,
                names=("retrieval_top",))
    cal.thresholds = {"0.1": 1.01, "0.2": 0.0}
    ok = {"n_citations": 1, "grounding": 1.0, "retrieval_top": 0.9}
    rows = ([{"kind": "answerable", "answerable": True, "right": True, "signals": ok}] * 3
            + [{"kind": "answerable", "answerable": True, "right": False, "signals": ok}]
            + [{"kind": "answerable", "answerable": True, "right": True, "signals": {**ok, "grounding": 0.0}}]
            + [{"kind": "squad_adversarial", "answerable": False, "right": False, "signals": ok}] * 5)
    report = per_target(cal, rows, min_relevance=0.25, certified=("answerable",))
    assert report["0.1"] == {"threshold": None}
    assert report["0.2"] == {"threshold": 0.0, "answered": 4, "coverage_of_answerable": 0.8, "risk": 0.25}
