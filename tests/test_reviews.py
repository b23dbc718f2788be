"""A person in the loop, on the fakes (ragqa.review): reviews drawn at random, labels from a
file, a threshold certified from the reviews and used from the next question on (on SQLite
and on PostgreSQL), too few reviews saying how many more, alpha spending across attempts,
withheld questions handed to a person whose answer is returned and reused, and
`ragqa review` driven by its keys."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from ragqa import RAG
from ragqa.testing import ExtractiveGenerator, HashEmbedder

N_KNOWN, N_ABSENT = 80, 20


@pytest.fixture
def capitals(tmp_path):
    """80 made-up countries, one document each; 20 more that no document mentions."""
    docs = tmp_path / "capitals"
    docs.mkdir()
    for i in range(N_KNOWN):
        (docs / f"land{i:03d}.txt").write_text(f"Land{i:03d}\n\nThe capital of Land{i:03d} is City{i:03d}. "
                                               f"Land{i:03d} exports grain and copper.\n", encoding="utf-8")
    return docs


def question(i: int) -> str:
    return f"What is the capital of Land{i:03d}?"


def gold(i: int) -> str:
    # the fake reader drafts the whole sentence, and a draft is right by token F1 >= 0.5
    # (ragqa.evaluation.metrics.is_right), so the gold answer is the sentence too
    return f"The capital of Land{i:03d} is City{i:03d}"


def labels(n: int = N_KNOWN + N_ABSENT) -> list[dict]:
    """In `ragqa eval`'s format: the known ones answerable, the absent ones not."""
    return [{"question": question(i), "answers": [gold(i)] if i < N_KNOWN else [], "answerable": i < N_KNOWN}
            for i in range(n)]


def rag_on(tmp_path, db_url=None, **settings) -> RAG:
    # no min_confidence: no calibration applies to the fakes, so only reviews can certify
    return RAG(tmp_path / "index", embedder=HashEmbedder(), generator=ExtractiveGenerator(), min_relevance=0.0,
               **({"database_url": db_url} if db_url else {}), **settings)


def ask_all(rag: RAG, n: int = N_KNOWN + N_ABSENT) -> list:
    return [rag.ask(question(i)) for i in range(n)]


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_reviews_certify_a_threshold_used_from_the_next_question_on(tmp_path, capitals, db, request):
    url = request.getfixturevalue("postgres_url") if db == "postgresql" else None
    with rag_on(tmp_path, url) as rag:
        rag.ingest([capitals])
        before = ask_all(rag)
        assert all(a.abstained and "no calibration applies" in a.reason for a in before)  # uncertified: never answered
        assert sum(bool(a.draft) for a in before) == 100
        assert rag.reviews.apply_labels(labels()) == {"labels": 100, "matched": 100, "unmatched": 0}
        outcome = rag.reviews.certify(target_risk=0.1, delta=0.1, min_grounding=0.5)
        assert outcome.certified, outcome.message
        assert outcome.attempt == 1 and outcome.level == pytest.approx(0.05) and outcome.n_fit + outcome.n_test == 100
        assert 30 <= outcome.n_fit <= 70  # the hash split: about half
    assert not (tmp_path / "index" / "calibration.json").exists()  # kept in the database, for every server of it
    with rag_on(tmp_path, url) as other:  # a new process on the same index
        summary = other.policy.summary()
        assert summary.startswith("certified on 100 reviews of your questions, ")
        fresh = other.ask("Which goods does Land007 export?")  # never asked, never reviewed
        assert not fresh.abstained and "grain and copper" in fresh.answer
        assert "certified on 100 reviews of your questions, " in fresh.reason
        assert "for questions like those asked of this index and reviewed" in fresh.reason
        assert "at most 10% of the answers given at this threshold are wrong, with probability 90%" in fresh.reason
        absent = other.ask("Which goods does Land093 export?")  # a country no document mentions
        assert absent.abstained


def test_too_few_reviews_say_how_many_more(tmp_path, capitals):
    with rag_on(tmp_path) as rag:
        rag.ingest([capitals])
        ask_all(rag, 14)
        for i in range(N_KNOWN, N_KNOWN + 10):
            rag.ask(question(i))
        rag.reviews.apply_labels(labels())
        outcome = rag.reviews.certify(target_risk=0.1, delta=0.1, min_grounding=0.5)
    assert not outcome.certified and outcome.calibration is not None
    assert outcome.more is not None and outcome.more > 0
    assert f"about {outcome.more} more reviews at the error rate seen so far would certify" in outcome.message


def test_every_attempt_spends_its_share_of_delta(tmp_path, capitals):
    with rag_on(tmp_path) as rag:
        rag.ingest([capitals])
        ask_all(rag)
        rag.reviews.apply_labels(labels())
        levels = [rag.reviews.certify(target_risk=0.1, delta=0.1, min_grounding=0.5).level for _ in range(3)]
        history = rag.reviews.progress()["attempts"]
    assert levels == pytest.approx([0.1 / 2, 0.1 / 6, 0.1 / 12])
    assert [h["attempt"] for h in history] == [1, 2, 3]


def test_the_review_sample_is_uniform_over_unreviewed_answers(tmp_path, capitals):
    with rag_on(tmp_path) as rag:
        rag.ingest([capitals])
        asked = ask_all(rag, 6)
        desk = rag.reviews
        desk.record(asked[0].id, "right", how="random")
        rng = random.Random(7)
        drawn = Counter(desk.next(rng)["id"] for _ in range(2000))
    assert set(drawn) == {a.id for a in asked[1:]}  # never a reviewed one
    assert all(330 <= n <= 470 for n in drawn.values()), drawn  # 400 each expected (binomial sd 18)


def test_withheld_questions_go_to_a_person_whose_answer_is_returned_and_reused(tmp_path, capitals):
    with rag_on(tmp_path) as rag:
        rag.ingest([capitals])
        withheld = rag.ask(question(3), asker="alice")
        assert withheld.abstained and withheld.answered_by == "model"
        desk = rag.reviews
        assert [q["id"] for q in desk.handoff()] == [withheld.id]
        assert rag.status()["people"]["withheld_waiting_for_a_person"] == 1
        assert desk.question(withheld.id)["person_answer"] is None
        desk.record(withheld.id, "answer", answer=gold(3), reviewer="bob")
        assert desk.handoff() == []
        followed = desk.question(withheld.id)["person_answer"]
        assert followed["answer"] == gold(3) and followed["reviewer"] == "bob"
        again = rag.ask("what is the capital of land003")  # same words, other case and punctuation
        assert not again.abstained and again.answered_by == "person" and again.answer == gold(3)
        assert "answered by a person (bob)" in again.reason and again.id is not None
        assert rag.question_log.get(again.id)["answer"] == gold(3)
        assert rag.reviews.reviews.labelled() == []  # chosen by a person from the hand-off: not a random sample
        assert desk.reviews.of(withheld.id)["right"] is True  # the draft matched the person's answer

        gone = rag.ask(question(N_KNOWN + 1))
        desk.record(gone.id, "unanswerable", reviewer="bob")
        said = rag.ask(question(N_KNOWN + 1))
    assert said.abstained and said.answered_by == "person" and "do not answer it" in said.reason


def test_ragqa_review_takes_one_key_per_verdict(tmp_path, capitals, monkeypatch):
    from typer.testing import CliRunner

    from ragqa.cli import review as review_cli
    from ragqa.cli.app import app

    with rag_on(tmp_path) as rag:
        rag.ingest([capitals])
        asked = ask_all(rag, 4)
    monkeypatch.setattr(review_cli, "open_rag", lambda index, **kw: rag_on(tmp_path))
    result = CliRunner().invoke(app, ["review", "--as", "carol"], input="x\nr\nw\ns\na\nCity999\n")
    assert result.exit_code == 0, result.output
    assert "press one of" in result.output and result.output.count("recorded:") == 3
    assert "only skipped questions are left" in result.output
    with rag_on(tmp_path) as rag:
        reviews = [rag.reviews.reviews.of(a.id) for a in asked]
    done = [r for r in reviews if r is not None]
    assert sorted(r["verdict"] for r in done) == ["answer", "right", "wrong"]
    assert all(r["how"] == "random" and r["reviewer"] == "carol" for r in done)
    assert next(r for r in done if r["verdict"] == "answer")["answer"] == "City999"


def test_the_http_api_reviews_certifies_and_hands_off(tmp_path, capitals):
    """Through the HTTP API in-process: answers reviewed as /v1/reviews/next draws them,
    a claim of a random draw that was not one refused, a certificate from the reviews used
    by the next /v1/ask, and a withheld question followed to a person's answer."""
    import asyncio

    import httpx

    from ragqa.service import create_app

    rag = rag_on(tmp_path)
    rag.ingest([capitals])
    app = create_app(rag=rag)
    gold = {question(i): (f"City{i:03d}" if i < N_KNOWN else None) for i in range(N_KNOWN + N_ABSENT)}

    async def scenario(c):
        for q in gold:
            assert (await c.post("/v1/ask", json={"question": q})).json()["abstained"]  # uncertified: withheld
        refused = await c.post("/v1/reviews", json={"question_id": 1, "verdict": "right", "drawn": True})
        assert refused.status_code == 422 and "not drawn at random" in refused.json()["error"]["message"]
        while (drawn := (await c.get("/v1/reviews/next")).json()["question"]) is not None:
            answer = gold[drawn["question"]]
            verdict = "right" if answer and answer in drawn["draft"] else "wrong" if answer else "unanswerable"
            r = await c.post("/v1/reviews", json={"question_id": drawn["id"], "verdict": verdict, "drawn": True})
            assert r.status_code == 200 and r.json()["how"] == "random"
        progress = (await c.get("/v1/reviews/progress")).json()
        assert progress["by_how"]["random"] == 100 and progress["unreviewed"] == 0
        certified = (await c.post("/v1/calibrate", json={"target_risk": 0.1})).json()
        assert certified["certified"] and certified["in_use"].startswith("certified on 100 reviews"), certified
        fresh = (await c.post("/v1/ask", json={"question": "Which goods does Land011 export?"})).json()
        assert not fresh["abstained"] and "certified on 100 reviews of your questions" in fresh["reason"]
        withheld = (await c.post("/v1/ask", json={"question": "Which goods does Land095 export?"})).json()
        assert withheld["abstained"]
        assert [q["id"] for q in (await c.get("/v1/handoff")).json()["questions"]] == [withheld["id"]]
        assert (await c.get(f"/v1/questions/{withheld['id']}")).json()["person_answer"] is None
        await c.post("/v1/reviews", json={"question_id": withheld["id"], "verdict": "answer", "answer": "tin"})
        assert (await c.get(f"/v1/questions/{withheld['id']}")).json()["person_answer"]["answer"] == "tin"
        again = (await c.post("/v1/ask", json={"question": "Which goods does Land095 export?"})).json()
        assert again["answered_by"] == "person" and again["answer"] == "tin"

    async def main():
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ragqa") as c:
                await scenario(c)

    asyncio.run(main())


def test_ragqa_review_handoff_answers_withheld_questions(tmp_path, capitals, monkeypatch):
    from typer.testing import CliRunner

    from ragqa.cli import review as review_cli
    from ragqa.cli.app import app

    with rag_on(tmp_path) as rag:
        rag.ingest([capitals])
        first, second = rag.ask(question(1)), rag.ask(question(2))
    monkeypatch.setattr(review_cli, "open_rag", lambda index, **kw: rag_on(tmp_path))
    result = CliRunner().invoke(app, ["review", "--handoff", "--as", "dan"], input=f"s\na\n{gold(2)}\n")
    assert result.exit_code == 0, result.output
    assert "withheld" in result.output and f"recorded: answer ({gold(2)})" in result.output
    with rag_on(tmp_path) as rag:
        assert rag.reviews.reviews.of(first.id) is None  # skipped: still waiting
        done = rag.reviews.reviews.of(second.id)
        assert done["how"] == "chosen" and done["answer"] == gold(2) and done["right"] is True
        assert [q["id"] for q in rag.reviews.handoff()] == [first.id]


def test_when_every_fitting_draft_is_right_the_base_rate_is_tested(tmp_path, capitals):
    """A strong model: no wrong draft among the fitting reviews to fit a calibrator on.
    Certifying then tests answering every draft that passes the checks."""
    with rag_on(tmp_path) as rag:
        rag.ingest([capitals])
        ask_all(rag, 70)  # known countries only: every draft right
        rag.reviews.apply_labels(labels(70))
        outcome = rag.reviews.certify(target_risk=0.1, delta=0.1, min_grounding=0.5)
    assert outcome.certified, outcome.message
    assert outcome.calibration.features == [] and outcome.calibration.threshold <= outcome.calibration.probability({})


def test_bad_review_input_gets_a_clear_message_and_loses_nothing(tmp_path, capitals, monkeypatch, capsys):
    """A review of a question that does not exist, a bad verdict, an unauthenticated call,
    a label file with bad JSON or with questions nobody asked: each said plainly (no
    traceback), and the reviews already recorded are kept."""
    import asyncio

    import httpx
    from typer.testing import CliRunner

    from ragqa.cli import review as review_cli
    from ragqa.cli.app import app as cli_app
    from ragqa.cli.app import main as cli_main
    from ragqa.errors import NotFoundError
    from ragqa.service import create_app

    with rag_on(tmp_path) as rag:
        rag.ingest([capitals])
        asked = ask_all(rag, 3)
        rag.reviews.record(asked[0].id, "right", reviewer="ann")
        with pytest.raises(NotFoundError, match="no logged question 9999: it may have been deleted; nothing was recorded"):
            rag.reviews.record(9999, "right")

    rag = rag_on(tmp_path, api_key="s3cret")
    app = create_app(rag=rag)
    auth = {"Authorization": "Bearer s3cret"}

    async def scenario(c):
        gone = await c.post("/v1/reviews", headers=auth, json={"question_id": 9999, "verdict": "right"})
        assert gone.status_code == 404 and "no logged question 9999" in gone.json()["error"]["message"]
        odd = await c.post("/v1/reviews", headers=auth, json={"question_id": asked[1].id, "verdict": "maybe"})
        assert odd.status_code == 422 and "verdict" in odd.text and "Traceback" not in odd.text
        anon = await c.post("/v1/reviews", json={"question_id": asked[1].id, "verdict": "right"})
        assert anon.status_code == 401 and "Traceback" not in anon.text
        assert (await c.get("/v1/reviews/next")).status_code == 401

    async def main():
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ragqa") as c:
                await scenario(c)

    asyncio.run(main())

    monkeypatch.setattr(review_cli, "open_rag", lambda index, **kw: rag_on(tmp_path))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(f'{{"question": "{question(1)}", "answers": ["{gold(1)}"]}}\n{{"question": oops\n')
    monkeypatch.setattr("sys.argv", ["ragqa", "review", "--labels", str(bad)])
    with pytest.raises(SystemExit) as exited:
        cli_main()  # the console script: errors as one line
    said = capsys.readouterr().err
    assert exited.value.code == 1 and "bad.jsonl:2: not JSON" in " ".join(said.split()) and "Traceback" not in said
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text("".join(f'{{"question": "{q}", "answers": ["x"]}}\n'
                               for q in (question(2), "Who painted the Kellan lighthouse?", "What is Land999's capital?")))
    result = CliRunner().invoke(cli_app, ["review", "--labels", str(unknown)])
    assert result.exit_code == 0, result.output
    assert "1 logged questions labelled from 3 labels (2 labels match no logged question)" in " ".join(result.output.split())
    with rag_on(tmp_path) as rag:
        kept = rag.reviews.reviews.of(asked[0].id)
        assert kept["verdict"] == "right" and kept["reviewer"] == "ann"  # nothing lost
        assert rag.reviews.reviews.of(asked[1].id) is None  # the refused calls recorded nothing
        assert rag.reviews.reviews.of(asked[2].id)["how"] == "file"


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_two_people_reviewing_one_question_at_once_the_later_wins(tmp_path, capitals, db, request):
    """One review a question: people recording at the same moment all succeed, and the
    question keeps exactly one review, one of theirs (the last to commit)."""
    import threading

    url = request.getfixturevalue("postgres_url") if db == "postgresql" else None
    with rag_on(tmp_path, url) as rag:
        rag.ingest([capitals])
        qid = rag.ask(question(5)).id
        desk = rag.reviews
        desk.record(qid, "right", reviewer="first")
        start, done, failed = threading.Barrier(6), [], []

        def review(i: int) -> None:
            start.wait()
            try:
                done.append(desk.record(qid, "wrong" if i % 2 else "right", reviewer=f"person{i}"))
            except Exception as e:  # noqa: BLE001 - the test reports any failure
                failed.append(repr(e))

        threads = [threading.Thread(target=review, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert failed == [] and len(done) == 6
        kept = desk.reviews.of(qid)
        assert kept["reviewer"] in {f"person{i}" for i in range(6)}
        assert kept["verdict"] == ("wrong" if int(kept["reviewer"][-1]) % 2 else "right")
        assert desk.progress()["by_how"].get("chosen", 0) == 1  # one review, not six
