"""More questions about something absent from the documents, made the way SQuAD's were:
leave whole articles out of an index and ask their answerable questions.

    python -m tools.make_absent_questions QUESTIONS.jsonl ARTICLE [ARTICLE ...] --out DIR

writes DIR/corpus/ (corpora/squad2/corpus without the articles' paragraphs) and
DIR/questions.jsonl (the answerable questions of QUESTIONS.jsonl about those articles, as
`not_in_corpus`: no answers, their gold answers kept as `reference_answers`). Ingest the
corpus into its own index and run the questions there. Keep the articles used for fitting
apart from those used for reporting (docs/readers.md names both)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpora" / "squad2" / "corpus"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("questions", type=Path)
    ap.add_argument("articles", nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    left_out = set(a.articles)
    corpus = a.out / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir(parents=True)
    kept = 0
    for path in sorted(CORPUS.glob("*.txt")):
        if path.stem.split("-")[1] not in left_out:
            shutil.copy2(path, corpus / path.name)
            kept += 1
    asked = []
    for line in a.questions.read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        if q["answerable"] and q.get("article") in left_out:
            asked.append({**q, "id": q["id"] + "-absent", "answers": [], "answerable": False, "gold_doc_ids": [],
                          "unanswerable_type": "not_in_corpus", "reference_answers": q["answers"]})
    (a.out / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in asked), encoding="utf-8")
    print(f"{a.out}: corpus of {kept} paragraphs without {', '.join(sorted(left_out))}; {len(asked)} questions about them")


if __name__ == "__main__":
    main()
