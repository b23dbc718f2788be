"""Fit the calibration shipped for a reader (ragqa/calibrations/), after any change to the
prompt, the retrieval or the signals (a calibration describes one pipeline), for the kinds
of question its certificate is for, and report per kind on held-out questions:

    .venv/bin/ragqa ingest corpora/squad2/corpus --index indexes/squad2
    for part in calibrate heldout; do .venv/bin/ragqa calibrate corpora/squad2/questions_$part.jsonl \\
        --index indexes/squad2 --model MODEL --out out/MODEL-$part --save out/MODEL-$part/calibration.json; done
    python -m tools.fit_calibration out/MODEL-calibrate/answers.jsonl ragqa/calibrations/FILE.json \\
        --heldout out/MODEL-heldout/answers.jsonl --model MODEL [--kinds answerable,not_in_corpus]

The rows of questions_calibrate.jsonl are split in two halves by kind (ragqa.evaluation.calibrate.split):
the calibrator is fitted on the first, the threshold certified by Learn-then-Test on the
second; questions_heldout.jsonl is never seen by either and is where figures are reported.

The target risk is chosen on the first half alone, before the second is looked at, so the
certificate on the second half keeps its guarantee: two-fold cross-fitting within the first
half gives each of its questions a confidence from a calibrator that did not see it, and the
target is the smallest of TARGETS at which Learn-then-Test on those confidences would pass a
threshold that answers at least MIN_COVERAGE of the answerable questions (or, if none does,
the target that answers the most). The bundled 135M model cannot reach 0.10 (docs/confidence.md)."""

from pathlib import Path

from ragqa.evaluation import calibrate as C

ROOT = Path(__file__).resolve().parent.parent
TARGETS = (0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40)
MIN_COVERAGE = 0.25  # of the answerable questions
DELTA = 0.1
MIN_GROUNDING = 0.5


def cross_fitted(rows: list[dict], rank: list[dict]) -> list[float]:
    """Out-of-fold confidences: each half of `rows` scored by a calibrator fitted on the other
    (and on the `rank` rows, for the ordering only)."""
    a, b = C.split(rows, seed=1)
    out: dict[int, float] = {}
    for train, test in ((a, b), (b, a)):
        cal = C.fit([r["signals"] for r in train], [r["right"] for r in train], [], [], target_risk=0.5, delta=DELTA,
                    rank_signals=[r["signals"] for r in rank], rank_right=[r["right"] for r in rank])
        for r in test:
            out[id(r)] = cal.probability(r["signals"])
    return [out[id(r)] for r in rows]


def choose_target(rows: list[dict], rank: list[dict]) -> tuple[float, list[dict]]:
    conf = cross_fitted(rows, rank)
    right = [bool(r["right"]) for r in rows]
    ok = [C.passes_checks(r["signals"], MIN_GROUNDING) for r in rows]
    n_ans = sum(r["answerable"] for r in rows) or 1
    table = []
    for target in TARGETS:
        # the lowest grid threshold whose binomial p-value passes (the most a certificate could give)
        _, grid = C.choose_threshold(conf, right, ok, target_risk=target, delta=DELTA)
        passing = [g["threshold"] for g in grid if g["answered"] and g["p_value"] <= DELTA]
        t = min(passing) if passing else 1.01
        answered = [o and c >= t for o, c in zip(ok, conf)]
        cov = sum(a and r["answerable"] for a, r in zip(answered, rows)) / n_ans
        table.append({"target_risk": target, "threshold": t, "coverage_answerable": round(cov, 4)})
    good = [row for row in table if row["coverage_answerable"] >= MIN_COVERAGE]
    best = good[0] if good else max(table, key=lambda row: (row["coverage_answerable"], -row["target_risk"]))
    return best["target_risk"], table


KIND_WORDS = {
    "answerable": "answerable from the documents",
    "not_in_corpus": "about something absent from the documents",
    "squad_adversarial": "written to look answerable from a passage that does not answer them (SQuAD 2.0's adversarial kind)",
}
EVERYDAY = ("answerable", "not_in_corpus")


def decided(cal: C.Calibration, rows: list[dict], min_relevance: float, threshold: float | None = None) -> list[bool]:
    """Whether ragqa gives each row's draft: retrieval found something relevant, the hard
    checks pass, and the calibrated confidence reaches the certified threshold (or `threshold`)."""
    from ragqa.answer.policy import before_generation

    at = cal.threshold if threshold is None else threshold
    return [before_generation(r["signals"], min_relevance) is None and C.passes_checks(r["signals"], MIN_GROUNDING)
            and cal.probability(r["signals"]) >= at for r in rows]


def per_target(cal: C.Calibration, rows: list[dict], min_relevance: float, certified: tuple[str, ...]) -> dict[str, dict]:
    """On rows the fit never saw, of the certified kinds: at each target risk's certified
    threshold (the file's `thresholds`), the answers given, the share of answerable
    questions answered and the realized risk; None where that target certified nothing."""
    rows = [r for r in rows if r["kind"] in certified]
    n_answerable = sum(r["answerable"] for r in rows)
    out: dict[str, dict] = {}
    for target, threshold in sorted(cal.thresholds.items(), key=lambda kv: float(kv[0])):
        if threshold > 1:
            out[target] = {"threshold": None}
            continue
        given = [r for r, yes in zip(rows, decided(cal, rows, min_relevance, threshold)) if yes]
        wrong = sum(not r["right"] for r in given)
        out[target] = {"threshold": threshold, "answered": len(given),
                       "coverage_of_answerable": round(sum(r["answerable"] for r in given) / n_answerable, 4),
                       "risk": round(wrong / len(given), 4) if given else None}
    return out


def copies_an_example(draft: str) -> bool:
    """The draft is the answer of one of the prompt's worked examples (ragqa.answer.prompts)."""
    from ragqa.answer.citations import strip_markers
    from ragqa.answer.prompts import EXAMPLES
    from ragqa.textutil import normalize_answer

    return bool(draft) and normalize_answer(strip_markers(draft)) in {normalize_answer(strip_markers(a)) for *_, a in EXAMPLES}


def per_kind(cal: C.Calibration, rows: list[dict], min_relevance: float, certified: tuple[str, ...]) -> dict[str, dict]:
    """On rows the fit never saw: for each kind, and for the certified kinds together, the
    questions, right drafts, drafts copying a worked example (and first drafts that did, drafted
    again as a span of the sources: `example_copied`), answers given, wrong among
    them (the realized risk), and how well the confidence ranks (AUROC) and is calibrated
    (ECE) there."""
    from ragqa.evaluation import metrics as M

    answered = decided(cal, rows, min_relevance)
    groups = {kind: [kind] for kind in sorted({r["kind"] for r in rows})}
    groups["certified kinds together"] = list(certified)
    out = {}
    for label, kinds in groups.items():
        idx = [i for i, r in enumerate(rows) if r["kind"] in kinds]
        given = [i for i in idx if answered[i]]
        wrong = sum(not rows[i]["right"] for i in given)
        conf = [cal.probability(rows[i]["signals"]) for i in idx]
        right = [bool(rows[i]["right"]) for i in idx]
        n_answerable = sum(rows[i]["answerable"] for i in idx)
        out[label] = {"n": len(idx), "right_drafts": sum(right),
                      "example_copies": sum(copies_an_example(rows[i]["draft"]) for i in idx),
                      "first_drafts_copied": sum("example_copied" in rows[i]["signals"] for i in idx),
                      "answered": len(given), "wrong": wrong,
                      "coverage_of_answerable": round(sum(rows[i]["answerable"] for i in given) / n_answerable, 4) if n_answerable else None,
                      "risk": round(wrong / len(given), 4) if given else None,
                      "auroc": M.auroc(conf, right), "ece": M.ece(conf, right)}
    return out


def main() -> None:
    import argparse

    from ragqa.evaluation.run import load_rows
    from ragqa.rag import RAG
    from ragqa.settings import Settings

    ap = argparse.ArgumentParser(description="Fit and certify a calibration from `ragqa calibrate` rows; report per kind.")
    ap.add_argument("answers", help="answers.jsonl of `ragqa calibrate` on the fitting questions")
    ap.add_argument("out", help="where the calibration goes (ragqa/calibrations/<model>.<embedder>.json to ship it)")
    ap.add_argument("--heldout", help="answers.jsonl of `ragqa calibrate` on questions the fit never sees: the report")
    ap.add_argument("--heldout-says", default="corpora/squad2/questions_heldout.jsonl",
                    help="what the held-out questions are, in words (recorded with the report)")
    ap.add_argument("--kinds", default=",".join(EVERYDAY), help="the kinds of question the certificate is for")
    ap.add_argument("--rank-also", default="",
                    help="kinds of question in ANSWERS that help order the answers (the calibrator's weights) but are "
                         "never certified nor set the probability's scale, e.g. squad_adversarial")
    ap.add_argument("--model", default=None, help="the GGUF (catalogue name or path) the rows were drafted with")
    ap.add_argument("--index", default=str(ROOT / "indexes" / "squad2"))
    a = ap.parse_args()
    kinds = tuple(a.kinds.split(","))
    every = load_rows(a.answers)
    rows = [r for r in every if r["kind"] in kinds]
    rank = [r for r in every if r["kind"] in a.rank_also.split(",")] if a.rank_also else []
    fit_part, _ = C.split(rows, seed=0)  # the same halves as fit_rows
    target, table = choose_target(fit_part, rank)
    for row in table:
        print(f"fit half, cross-fitted: target {row['target_risk']:.2f} -> threshold {row['threshold']:.3f}, "
              f"answers {row['coverage_answerable']:.1%} of answerable")
    with RAG(a.index, model_path=a.model) as rag:
        models = rag.models()
    cal = C.fit_rows(rows, target_risk=target, delta=DELTA, models=models, min_grounding=MIN_GROUNDING, rank_rows=rank)
    words = "; ".join(KIND_WORDS.get(k, k) for k in kinds)
    cal.fitted["source"] = (f"shipped for {models['generator']['name']}: fitted and certified on "
                            f"{len(rows)} SQuAD 2.0 questions ({words}; CC BY-SA 4.0), target risk chosen on the fitting half")
    if rank:
        cal.fitted["source"] += (f"; the answers ordered with {len(rank)} more of another kind too "
                                 f"({'; '.join(KIND_WORDS.get(k, k) for k in a.rank_also.split(','))}), never certified on")
    cal.fitted["certified_for"] = {"kinds": list(kinds), "in_words": "questions " + " or ".join(KIND_WORDS.get(k, k) for k in kinds)}
    cal.fitted["target_choice"] = {"targets": table, "min_coverage_answerable": MIN_COVERAGE, "chosen": target}
    if a.heldout:
        report = per_kind(cal, load_rows(a.heldout), Settings.min_relevance, kinds)
        cal.fitted["heldout"] = {"questions": a.heldout_says, "by_kind": report,
                                 "by_target": per_target(cal, load_rows(a.heldout), Settings.min_relevance, kinds)}
        for kind, r in report.items():
            print(f"held-out {kind}: {r['n']} questions, right drafts {r['right_drafts']}, example copies {r['example_copies']} "
                  f"(first drafts {r['first_drafts_copied']}), "
                  f"answered {r['answered']} ({r['coverage_of_answerable']} of the answerable), wrong {r['wrong']} "
                  f"(risk {r['risk']}), AUROC {r['auroc']}, ECE {r['ece']}")
    cal.save(Path(a.out))
    m = cal.fitted["measured"]
    print(f"{a.out}: target risk {target}, threshold {cal.threshold:.3f}, features {cal.features}")
    print(f"certifying half: coverage {m['coverage']:.3f}, selective risk {m['selective_risk']}, AUROC {m['auroc']:.3f}, "
          f"ECE {m['ece']:.3f}")


if __name__ == "__main__":
    main()
