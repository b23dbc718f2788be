"""Print the readers' table of the README and docs/readers.md from what is shipped: for each
catalogued reader with a calibration (ragqa/calibrations/), what its certificate is and what it
gave, per kind of question and at the target risks 0.10 and 0.20, on the held-out questions its fit never saw (recorded in the file
by tools/fit_calibration.py), with the warm ask p50 the catalogue records.

    python -m tools.reader_table"""

import json

from ragqa.answer.scorer import BUNDLED_DIR
from ragqa.models.catalogue import catalogue, default_name


def row(entry, cal: dict) -> str:
    k = cal["fitted"]["heldout"]["by_kind"]
    every, ans = k["certified kinds together"], k["answerable"]
    absent, adv = k.get("not_in_corpus"), k.get("squad_adversarial")
    th = cal.get("thresholds", {})
    by_target = cal["fitted"]["heldout"].get("by_target", {})

    def at(target: str) -> str:
        t = by_target.get(target, {})
        if not t.get("threshold"):
            return "none"
        return f"{100 * t['coverage_of_answerable']:.0f}%, risk {t['risk']:.3f}"

    cert = " / ".join(at(t) for t in ("0.1", "0.2"))
    given = (f"{every['answered']}: {100 * every['coverage_of_answerable']:.0f}% of answerable, risk {every['risk']:.3f}"
             if every["answered"] else "none")
    name = entry.name + (" (default)" if entry.name == default_name() else "")
    where = (f"target {cal['target_risk']:g}, threshold {cal['threshold']:.3f}" if cal["threshold"] <= 1
             else f"none up to {max(float(t) for t in th):.2f}")
    return (f"| {name} | {ans['right_drafts']} of {ans['n']} ({100 * ans['right_drafts'] / ans['n']:.0f}%) "
            f"| {every['auroc']:.3f} / {every['ece']:.3f} | {cert} | {given} ({where}) "
            f"| {absent['answered']} of {absent['n']} | {adv['answered']} of {adv['n']} "
            f"| {entry.measured.get('ask p50', '-')} |")


def main() -> None:
    print("| reader | right drafts, answerable | AUROC / ECE, everyday | certified at 0.10 / 0.20: answerable "
          "answered, risk | everyday answered at its certificate | absent answered (all wrong) | adversarial answered (all wrong) | warm ask p50 |")
    print("|---|---|---|---|---|---|---|---|")
    by_file = {e.file: e for e in catalogue()}
    for path in sorted(BUNDLED_DIR.glob("*.json")):
        cal = json.loads(path.read_text())
        entry = by_file.get(cal["models"]["generator"]["name"])
        if entry is not None and cal.get("fitted", {}).get("heldout"):
            print(row(entry, cal))


if __name__ == "__main__":
    main()
