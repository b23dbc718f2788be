"""Certifying from reviews, measured on real labelled drafts: how many reviews a person needs
before a threshold certifies, with and without the shipped calibration as prior, and how
often a certificate breaks its promise, over many draws (ragqa.review.certify).

    python -m bench.bench_reviews ANSWERS.jsonl [ANSWERS.jsonl ...] --prior CALIBRATION.json \\
        [--kinds answerable,not_in_corpus] [--targets 0.2,0.3] [--draws 200]

ANSWERS are `ragqa calibrate` rows (signals and whether the draft was right) on questions
the prior never saw (e.g. out/MODEL-heldout/answers.jsonl): they stand for a person's own
questions. Each draw takes N of them at random as the person's reviews (fresh question ids,
so the fixed fit/test split differs per draw), certifies once (attempt 1), and measures the
risk of the certified threshold on the whole pool: the population the reviews are drawn
from, so that this is its true risk. A draw *violates* when it exceeds the target. A second table re-certifies after every 50 reviews up to 400
(8 attempts, alpha spending) and counts people ever given a violating certificate."""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

from ragqa.answer.scorer import Calibration
from ragqa.evaluation.calibrate import passes_checks
from ragqa.evaluation.run import load_rows
from ragqa.review.certify import certify

MIN_GROUNDING = 0.5
DELTA = 0.1


def pool_figures(cal: Calibration, rows: list[dict[str, Any]]) -> tuple[float, float]:
    """(risk among the answered, share of answerable questions answered) on these rows."""
    answered = [r for r in rows if passes_checks(r["signals"], MIN_GROUNDING) and cal.probability(r["signals"]) >= cal.threshold]
    risk = sum(not r["right"] for r in answered) / len(answered) if answered else 0.0
    n_ans = sum(r["answerable"] for r in rows) or 1
    return risk, sum(r["answerable"] for r in answered) / n_ans


def once(pool: list[dict], n: int, target: float, prior: Calibration | None, rng: random.Random) -> dict[str, Any]:
    idx = set(rng.sample(range(len(pool)), n))
    ids = rng.sample(range(1, 10**9), n)
    reviews = [{**pool[i], "id": qid} for i, qid in zip(sorted(idx), ids)]
    out = certify(reviews, target_risk=target, delta=DELTA, attempt=1, models={}, min_grounding=MIN_GROUNDING, prior=prior)
    if not out.certified or out.calibration is None:
        return {"certified": False}
    risk, coverage = pool_figures(out.calibration, pool)
    return {"certified": True, "risk": risk, "coverage": coverage, "violated": risk > target}


def accumulate(pool: list[dict], target: float, prior: Calibration | None, rng: random.Random,
               batch: int = 50, batches: int = 8) -> dict[str, Any]:
    order = rng.sample(range(len(pool)), batch * batches)
    ids = rng.sample(range(1, 10**9), len(order))
    got = None
    violated = False
    for k in range(1, batches + 1):
        chosen = order[: k * batch]
        reviews = [{**pool[i], "id": qid} for i, qid in zip(chosen, ids)]
        out = certify(reviews, target_risk=target, delta=DELTA, attempt=k, models={}, min_grounding=MIN_GROUNDING, prior=prior)
        if out.certified and out.calibration is not None:
            risk, _ = pool_figures(out.calibration, pool)
            violated = violated or risk > target
            got = got or k * batch
    return {"first_certified_at": got, "violated": violated}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("answers", nargs="+", type=Path)
    ap.add_argument("--prior", type=Path, required=True, help="the calibration shipped for the model the rows come from")
    ap.add_argument("--kinds", default="answerable,not_in_corpus")
    ap.add_argument("--targets", default="0.2,0.3")
    ap.add_argument("--sizes", default="100,200,400")
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--out", type=Path, default=None, help="also write the figures here (JSON)")
    a = ap.parse_args()
    kinds = set(a.kinds.split(","))
    pool = [r for path in a.answers for r in load_rows(path) if r["kind"] in kinds]
    prior = Calibration.load(a.prior)
    print(f"{len(pool)} labelled drafts ({', '.join(sorted(kinds))}), {sum(r['right'] for r in pool)} right; "
          f"delta {DELTA}; {a.draws} draws per cell")
    results: dict[str, Any] = {"pool": len(pool), "right": sum(r["right"] for r in pool), "draws": a.draws, "delta": DELTA,
                               "once": [], "accumulating": []}
    started = time.perf_counter()
    for target in map(float, a.targets.split(",")):
        for n in map(int, a.sizes.split(",")):
            if n >= len(pool):
                continue
            for label, p in (("prior", prior), ("no prior", None)):
                rng = random.Random(f"{target}-{n}-{label}")
                runs = [once(pool, n, target, p, rng) for _ in range(a.draws)]
                got = [r for r in runs if r["certified"]]
                row = {"target": target, "reviews": n, "calibrator": label, "certified": len(got) / len(runs),
                       "violated": sum(r["violated"] for r in got) / len(runs),
                       "coverage_answerable": sum(r["coverage"] for r in got) / len(got) if got else None,
                       "mean_risk": sum(r["risk"] for r in got) / len(got) if got else None}
                results["once"].append(row)
                print(f"target {target:.2f}  {n:4d} reviews  {label:8s}  certified {row['certified']:6.1%}  "
                      f"violated {row['violated']:5.1%}  answers {row['coverage_answerable'] or 0:6.1%} of answerable  "
                      f"true risk {row['mean_risk'] or 0:.3f}")
        for label, p in (("prior", prior), ("no prior", None)):
            if 400 >= len(pool):
                continue
            rng = random.Random(f"acc-{target}-{label}")
            runs = [accumulate(pool, target, p, rng) for _ in range(max(50, a.draws // 4))]
            firsts = sorted(r["first_certified_at"] for r in runs if r["first_certified_at"])
            row = {"target": target, "calibrator": label, "people": len(runs), "certified_by_400": len(firsts) / len(runs),
                   "median_reviews_to_certify": firsts[len(firsts) // 2] if firsts else None,
                   "ever_violated": sum(r["violated"] for r in runs) / len(runs)}
            results["accumulating"].append(row)
            print(f"target {target:.2f}  re-certified every 50 reviews up to 400, {label:8s}: certified by 400 for "
                  f"{row['certified_by_400']:.0%} of {len(runs)} people (median {row['median_reviews_to_certify']} "
                  f"reviews); ever given a violating certificate: {row['ever_violated']:.1%}")
    print(f"({time.perf_counter() - started:.0f} s)")
    if a.out:
        a.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
