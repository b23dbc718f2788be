"""Extend the shipped SQuAD 2.0 question files with ../shared/data/squad2/questions_extra.jsonl
(2,001 questions from the same pools, disjoint from the 500), split by kind at random with
a fixed seed: two thirds to questions_calibrate.jsonl (the calibrator is fitted on one half
of that file and its threshold certified on the other), one third to questions_heldout.jsonl
(figures are reported on it only). Run once; running again changes nothing.

    python -m tools.split_squad_extra ../shared/data/squad2/questions_extra.jsonl
"""

import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261203
KEEP = ("id", "question", "answers", "answerable", "gold_doc_ids", "unanswerable_type", "reference_answers",
        "plausible_answers", "article")


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(extra_path: str) -> None:
    cal_path, held_path = ROOT / "corpora/squad2/questions_calibrate.jsonl", ROOT / "corpora/squad2/questions_heldout.jsonl"
    cal, held = read(cal_path), read(held_path)
    have = {q["id"] for q in cal + held}
    extra = [q for q in read(Path(extra_path)) if q["id"] not in have]
    by_kind: dict[str, list[dict]] = {}
    for q in sorted(extra, key=lambda q: q["id"]):
        by_kind.setdefault(str(q.get("unanswerable_type")), []).append(q)
    rng = random.Random(SEED)
    for kind in sorted(by_kind):
        group = by_kind[kind]
        rng.shuffle(group)
        cut = round(len(group) * 2 / 3)
        cal += [{k: q[k] for k in KEEP if k in q} for q in group[:cut]]
        held += [{k: q[k] for k in KEEP if k in q} for q in group[cut:]]
    for path, rows in ((cal_path, cal), (held_path, held)):
        path.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in rows), encoding="utf-8")
        print(f"{path.name}: {len(rows)} questions")


if __name__ == "__main__":
    main(sys.argv[1])
