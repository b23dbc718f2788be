"""Drill: hostile files, each in its own `ragqa ingest` run beside good files, then all
together. For every run: wall time, exit status, peak memory of the run's processes
(ragqa and its file reader), whether a traceback was shown, what became of the bad file,
and whether every good file was ingested.

    python -m drills.hostile [--only NAME]

Real CLI processes, the real MiniLM, default settings (max_file_mb 100, max_text_chars
5,000,000, read_timeout 60 s, read_memory_mb 2048). Exits 1 if any run hangs (10 min),
crashes, shows a traceback, loses a good file or leaves a bad file unnamed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from devkit.docmaker import write_docx, write_pdf

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "squad2" / "corpus"
GOOD_FILES = 20
HANG = 600  # seconds: a run still going after this has hung

# What each hostile file should become: "failed" (named with a reason), "skipped" (named,
# left out on purpose) or "added" (odd but fine: read and ingested).
EXPECT = {
    "corrupt.pdf": "failed", "encrypted.pdf": "failed", "thousands_of_pages.pdf": "added",
    "zip_bomb.docx": "failed", "truncated.docx": "failed", "binary.txt": "failed",
    "invalid_utf8.txt": "added", "utf16_bom.txt": "added", "fifty_mb.txt": "failed", "empty.txt": "failed",
    "nested_100k.html": "added", "new\nline name.txt": "added", "ユニコード名前.txt": "added",
    ("long" * 60) + ".txt": "added", "pipe.txt": "failed", "loop1.txt": "failed", "loop2.txt": "failed",
    "escape.txt": "skipped",
}


def make_hostile(folder: Path, outside: Path) -> dict[str, list[str]]:
    """Write every hostile file; returns case name -> the file names it consists of."""
    rng = random.Random(7)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.4\n" + rng.randbytes(20_000))
    _encrypted_pdf(folder / "encrypted.pdf")
    write_pdf(folder / "thousands_of_pages.pdf",
              [f"Page {i}: the harbour ledger records cargo number {i * 7} arriving." for i in range(3000)])
    _zip_bomb(folder / "zip_bomb.docx", folder / ".real.docx", gib=2)
    real = write_docx(folder / ".tmp.docx", ["A real paragraph about lighthouses."] * 50).read_bytes()
    (folder / "truncated.docx").write_bytes(real[: len(real) // 2])
    (folder / ".tmp.docx").unlink()
    (folder / "binary.txt").write_bytes(rng.randbytes(65_536))
    (folder / "invalid_utf8.txt").write_bytes("Caf\u00e9 menus list espresso prices.\n".encode() + b"\xff\xfe\xfa broken "
                                              + "and the rest is fine text about coffee.\n".encode())
    (folder / "utf16_bom.txt").write_bytes("Mountain huts in the Alps open in June.\n".encode("utf-16"))
    with (folder / "fifty_mb.txt").open("w") as f:
        line = "a long log line that repeats to make a file of fifty megabytes\n"
        for _ in range((50 << 20) // len(line)):
            f.write(line)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "nested_100k.html").write_text("<html><body>" + "<div>" * 100_000 + "Deep text about owls."
                                             + "</div>" * 100_000 + "</body></html>")
    for name in ("new\nline name.txt", "ユニコード名前.txt", ("long" * 60) + ".txt"):
        (folder / name).write_text("Odd names still hold ordinary text about rivers.\n")
    os.mkfifo(folder / "pipe.txt")
    os.symlink("loop2.txt", folder / "loop1.txt")
    os.symlink("loop1.txt", folder / "loop2.txt")
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "secret.txt").write_text("The vault combination is 7781.\n")
    os.symlink(outside / "secret.txt", folder / "escape.txt")
    cases = {name: [name] for name in EXPECT}
    cases["symlink loop"] = ["loop1.txt", "loop2.txt"]
    del cases["loop1.txt"], cases["loop2.txt"]
    return cases


def _encrypted_pdf(path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    plain = write_pdf(path.with_suffix(".plain"), ["Encrypted secrets about tea."])
    writer = PdfWriter()
    for page in PdfReader(plain).pages:
        writer.add_page(page)
    writer.encrypt("owner-and-user-password")
    with path.open("wb") as f:
        writer.write(f)
    plain.unlink()


def _zip_bomb(path: Path, scratch: Path, gib: int) -> None:
    """A valid-looking DOCX whose word/document.xml inflates to `gib` GiB (a few MB zipped)."""
    real = write_docx(scratch, ["A paragraph."])
    with zipfile.ZipFile(real) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for item in src.infolist():
            if item.filename == "word/document.xml":
                with out.open("word/document.xml", "w", force_zip64=True) as f:
                    block = b" " * (1 << 24)
                    for _ in range(gib << 6):
                        f.write(block)
            else:
                out.writestr(item, src.read(item))
    real.unlink()


def good_files(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for src in sorted(CORPUS.glob("*.txt"))[:GOOD_FILES]:
        shutil.copy(src, folder / src.name)
        names.append(src.name)
    return names


MEASURED = """
import resource, subprocess, sys, time
t = time.perf_counter()
try:
    p = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=%d)
    code, out, err = p.returncode, p.stdout, p.stderr
except subprocess.TimeoutExpired:
    code, out, err = "hung", "", ""
import json
print(json.dumps({"code": code, "out": out, "err": err, "seconds": time.perf_counter() - t,
                  "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
""" % HANG


def ingest(folder: Path, index: Path) -> dict:
    """One `ragqa ingest --json` run in a fresh wrapper, so its peak memory is its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}
    cmd = [sys.executable, "-m", "ragqa.cli", "ingest", str(folder), "--index", str(index), "--json"]
    wrapped = subprocess.run([sys.executable, "-c", MEASURED, *cmd], capture_output=True, text=True, env=env)
    return json.loads(wrapped.stdout)


def judge(run: dict, bad: list[str], good: list[str]) -> dict:
    row = {"seconds": round(run["seconds"], 1), "peak_mb": round(run["peak_mb"]), "exit": run["code"],
           "traceback": "Traceback" in run["out"] + run["err"]}
    try:
        report = json.loads(run["out"])
    except ValueError:
        row.update(ok=False, problem=f"no report (exit {run['code']}): {run['err'][-300:]}")
        return row
    fates = {}
    for kind in ("added", "updated", "unchanged"):
        for p in report[kind]:
            fates[Path(p).name] = "added"
    for kind in ("failed", "skipped"):
        for f in report[kind]:
            fates[Path(f["path"]).name] = f"{kind}: {f['reason']}"
    problems = [f"good file {g} not ingested" for g in good if fates.get(g) != "added"]
    for name in bad:
        fate = fates.get(name, "not named")
        if fate.split(":")[0] != EXPECT[name]:
            problems.append(f"{name!r}: {fate} (expected {EXPECT[name]})")
    row.update(ok=not problems and not row["traceback"] and run["code"] in (0, 2), problems=problems,
               fates={n: fates.get(n, "not named") for n in bad})
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="run only this case")
    ap.add_argument("--out", type=Path, default=ROOT / "drills" / "results" / "hostile.json")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="ragqa-hostile-") as tmp:
        base = Path(tmp)
        t0 = time.perf_counter()
        cases = make_hostile(base / "all", base / "outside")
        print(f"made {len(EXPECT)} hostile files in {time.perf_counter() - t0:.0f} s "
              f"(zip bomb {os.path.getsize(base / 'all' / 'zip_bomb.docx') / 1e6:.1f} MB zipped, 2 GiB inflated)")
        good = good_files(base / "all")
        for n, (case, names) in enumerate(cases.items()):
            if args.only and case != args.only:
                continue
            folder = base / f"case{n}"
            good_files(folder)
            for name in names:
                os.rename(base / "all" / name, folder / name)  # moved (links stay links, the FIFO a FIFO)
            row = judge(ingest(folder, base / f"idx{n}"), names, good)
            results[case] = row
            print(f"{'ok ' if row['ok'] else 'BAD'} {case!r:32} {row['seconds']:6.1f} s {row['peak_mb']:5d} MB  "
                  + "; ".join(f"{v}" for v in row.get("fates", {}).values()) + " ".join(row.get("problems", [])),
                  flush=True)
            for name in names:
                os.rename(folder / name, base / "all" / name)
        if not args.only:
            row = judge(ingest(base / "all", base / "idx-all"), [n for ns in cases.values() for n in ns], good)
            results["all together"] = row
            print(f"{'ok ' if row['ok'] else 'BAD'} {'all together':32} {row['seconds']:6.1f} s {row['peak_mb']:5d} MB "
                  + " ".join(row.get("problems", [])))
    bad = [c for c, r in results.items() if not r["ok"]]
    print(f"\n{len(results) - len(bad)}/{len(results)} runs as expected; peak memory of any run "
          f"{max(r['peak_mb'] for r in results.values())} MB; slowest run {max(r['seconds'] for r in results.values())} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
