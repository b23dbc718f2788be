"""Which signals separate right from wrong drafts? Reads an answers.jsonl written by
`ragqa calibrate` or `ragqa eval` (with drafts for every question) and prints, per signal,
its AUROC alone (oriented so that 0.5 is useless) and the cross-validated quality of the
logistic calibrator on all of them.

    python -m bench.signals_report out/cal-squad2/answers.jsonl
"""

from __future__ import annotations

import sys

import numpy as np

from ragqa.evaluation import calibrate as C
from ragqa.evaluation import metrics as M
from ragqa.evaluation.run import load_rows


def main(path: str) -> None:
    rows = load_rows(path)
    y = np.array([bool(r["right"]) for r in rows])
    kinds = {}
    for r in rows:
        kinds.setdefault(r.get("kind"), []).append(r["right"])
    print(f"{len(rows)} rows, {y.sum()} right drafts; by kind: " +
          ", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in kinds.items()))
    print(f"{'signal':26s} {'AUROC':>6s} {'present':>8s}")
    for name in C.FEATURES:
        vals = [r["signals"].get(name) for r in rows]
        idx = [i for i, v in enumerate(vals) if v is not None]
        if not idx:
            print(f"{name:26s}      -        0")
            continue
        a = M.auroc([float(vals[i]) for i in idx], y[idx])
        print(f"{name:26s} {max(a, 1 - a) if a is not None else float('nan'):6.3f} {len(idx):8d}"
              f"{'  (lower is better)' if a is not None and a < 0.5 else ''}")
    # 5-fold cross-validated probabilities of the calibrator
    rng = np.random.default_rng(0)
    order = rng.permutation(len(rows))
    probs = np.zeros(len(rows))
    for k in range(5):
        test = order[k::5]
        train = np.setdiff1d(order, test)
        cal = C.fit([rows[i]["signals"] for i in train], y[train].tolist(), [], [], target_risk=0.1, delta=0.1)
        probs[test] = [cal.probability(rows[i]["signals"]) for i in test]
    print(f"calibrator, 5-fold CV: AUROC {M.auroc(probs, y):.3f}  ECE {M.ece(probs, y):.3f}  "
          f"Brier {M.brier(probs, y):.3f}  AURC {M.aurc(probs, y):.3f}")
    cov, risk = M.risk_coverage(probs, y)
    for target in (0.1, 0.2, 0.3):
        ok = np.where(risk <= target)[0]
        print(f"  largest coverage with empirical risk <= {target}: {cov[ok[-1]] if len(ok) else 0:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
