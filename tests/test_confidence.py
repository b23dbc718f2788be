from ragqa.answer.policy import before_generation, decide
from ragqa.answer.scorer import BlendScorer
from ragqa.answer.signals import declined

GOOD = {"retrieval_top": 0.7, "n_citations": 1, "cited": [1], "grounding": 0.9, "citation_support": 0.8,
        "numbers_supported": True, "declined": False}


def d(**changes):
    return decide({**GOOD, **changes}, BlendScorer(), min_confidence=0.5, min_grounding=0.5)


def test_grounded_confident_answer_is_given():
    decision = d()
    assert not decision.abstain and decision.confidence > 0.7 and "cites [1]" in decision.reason
    assert not decision.calibrated


def test_each_hard_check_abstains_with_its_reason():
    assert "no answer" in d(declined=True).reason
    assert "cites no source" in d(n_citations=0, cited=[]).reason
    assert "not given" in d(n_citations=0, cited=[], n_invalid_citations=1).reason
    assert "not supported" in d(grounding=0.2).reason
    low = d(retrieval_top=0.1, citation_support=0.0, numbers_supported=False, grounding=0.55)
    assert low.abstain and "below the threshold" in low.reason


def test_confidence_orders_with_the_evidence():
    s = BlendScorer()
    assert s.score(GOOD) > s.score({**GOOD, "grounding": 0.5}) > s.score({**GOOD, "grounding": 0.5, "retrieval_top": 0.2})


def test_nothing_relevant_abstains_before_generation():
    assert before_generation({"retrieval_top": 0.1}, 0.25).abstain
    assert before_generation({"retrieval_top": 0.3}, 0.25) is None


def test_declines_are_recognised():
    assert declined("I cannot answer from these documents.")
    assert declined("The sources do not contain that information.")
    assert not declined("Etna erupted in 1669 [1].")


def test_a_calibration_that_certified_nothing_withholds_every_answer_and_says_why():
    decision = decide(GOOD, BlendScorer(), min_confidence=1.01, min_grounding=0.5)
    assert decision.abstain and "target risk" in decision.reason


def test_without_a_calibration_a_draft_is_unverified_unless_the_user_set_a_threshold(tmp_path):
    from ragqa.answer.policy import Policy
    from ragqa.settings import Settings

    def policy(**settings):
        return Policy(Settings(index_dir=tmp_path, calibration="off", **settings), tmp_path, lambda: {})

    withheld = policy().decide(GOOD)
    assert withheld.abstain and "no calibration applies" in withheld.reason and "RAGQA_MIN_CONFIDENCE" in withheld.reason
    assert policy().threshold > 1 and policy().certified() is None
    broken = policy().decide({**GOOD, "n_citations": 0})
    assert broken.abstain and broken.reason == "the answer cites no source"  # a hard check still says its own reason
    own = policy(min_confidence=0.3).decide(GOOD)
    assert not own.abstain and "certified" not in own.reason and "0.30" in own.reason
