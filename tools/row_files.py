"""What the tools that rework `ragqa calibrate` rows share: their arguments (the rows, where
the reworked rows go, the reader, the index each row was drafted on); the rows themselves
are read by ragqa.evaluation.run.load_rows."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def arguments(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("rows")
    ap.add_argument("out")
    ap.add_argument("--model", required=True)
    ap.add_argument("--index", required=True, help="the index the rows were drafted on")
    ap.add_argument("--index-for", action="append", default=[],
                    help="ANSWERS=INDEX: the rows whose ids are in ANSWERS were drafted on INDEX")
    return ap


def drafted_on(index_for: list[str]) -> dict[str, str]:
    """Row id -> the index it was drafted on, from the --index-for ANSWERS=INDEX pairs."""
    where: dict[str, str] = {}
    for spec in index_for:
        answers, index = spec.split("=", 1)
        for line in Path(answers).read_text(encoding="utf-8").splitlines():
            where[json.loads(line)["id"]] = index
    return where
