"""`make drills` (`python -m drills`): the four fault drills in full, about 40 minutes; each
prints one line per trial and exits 1 on a failure. `python -m drills NAME...` runs those named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DRILLS = {
    "hostile": "hostile files beside good ones: no hang, no traceback, every good file ingested",
    "inject": "instructions planted in documents are never answered",
    "abuse": "a real server against abusive HTTP clients: keys, path tricks, trickled bodies, floods",
    "kill": "SIGKILL during ingest, re-ingest and worker jobs: rows and vectors always agree",
}


def main(argv: list[str]) -> int:
    if {"-h", "--help"} & set(argv):
        print(__doc__)
        return 0
    names = argv or list(DRILLS)
    unknown = [n for n in names if n not in DRILLS]
    if unknown:
        print(f"unknown drill(s): {', '.join(unknown)}; known: {', '.join(DRILLS)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        print(f"\n=== drill {name}: {DRILLS[name]}", flush=True)
        if subprocess.run([sys.executable, "-m", f"drills.{name}"], cwd=ROOT).returncode:
            failed.append(name)
    print(f"\n=== drills: {len(names) - len(failed)}/{len(names)} passed" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
