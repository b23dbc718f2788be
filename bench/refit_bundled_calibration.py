"""Refit the calibration bundled for the default models, after any change to the prompt,
the retrieval or the signals (a calibration describes one pipeline):

    .venv/bin/ragqa ingest corpora/squad2/corpus --index indexes/squad2
    .venv/bin/ragqa calibrate corpora/squad2/questions_calibrate.jsonl --index indexes/squad2 \\
        --out out/cal-squad2 --save ragqa/calibrations/smollm2-135m-instruct-q4_1.all-minilm-l6-v2.json
    python bench/refit_bundled_calibration.py ragqa/calibrations/smollm2-135m-instruct-q4_1.all-minilm-l6-v2.json

This last step marks the file as the bundled default (what `ragqa status` shows) and
names its data and licence. Then measure it on the held-out split:

    .venv/bin/ragqa eval corpora/squad2/questions_heldout.jsonl --index indexes/squad2 --out bench/results/squad2-heldout
"""

import json
import sys
from pathlib import Path

SOURCE = "bundled default (fitted on corpora/squad2/questions_calibrate.jsonl, SQuAD 2.0, CC BY-SA 4.0)"

if __name__ == "__main__":
    path = Path(sys.argv[1])
    cal = json.loads(path.read_text(encoding="utf-8"))
    cal["fitted"]["source"] = SOURCE
    path.write_text(json.dumps(cal, indent=2) + "\n", encoding="utf-8")
    print(f"{path}: threshold {cal['threshold']}, features {cal['features']}")
