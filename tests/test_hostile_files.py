"""Files that break naive readers: links, pipes, bombs, huge and odd files. Each is one
failure (or a deliberate skip) with its reason; the good files beside it are ingested."""

import os
import zipfile
from pathlib import Path

import pytest

from devkit.docmaker import write_docx, write_pdf
from ragqa.cli.render import printable
from ragqa.errors import DocumentError
from ragqa.ingest.file_reader import FileReader
from ragqa.ingest.loaders import load

GOOD = "Paris is the capital of France and lies on the Seine.\n"


def _reasons(report) -> dict[str, str]:
    return {Path(p).name: r for p, r in report.failed}


def test_links_and_pipes_fail_alone_and_the_good_file_is_ingested(fake_rag, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text(GOOD)
    os.symlink("loop2.txt", docs / "loop1.txt")
    os.symlink("loop1.txt", docs / "loop2.txt")
    os.symlink("missing.txt", docs / "dangling.txt")
    os.mkfifo(docs / "pipe.txt")  # a naive reader blocks on it forever
    os.symlink("good.txt", docs / "alias.txt")  # inside the folder: the same document, once

    report = fake_rag.ingest([docs])

    reasons = _reasons(report)
    assert reasons == {"loop1.txt": "symbolic link loop", "loop2.txt": "symbolic link loop",
                       "dangling.txt": "dangling symbolic link (its target does not exist)",
                       "pipe.txt": "not a regular file (a FIFO)"}
    assert [Path(p).name for p in report.added] == ["good.txt"]
    assert fake_rag.status()["documents"] == 1


def test_a_link_leading_outside_the_folder_is_skipped_and_named(fake_rag, tmp_path):
    docs, outside = tmp_path / "docs", tmp_path / "elsewhere"
    docs.mkdir()
    outside.mkdir()
    (docs / "good.txt").write_text(GOOD)
    (outside / "secret.txt").write_text("The vault combination is 7781.\n")
    os.symlink(outside / "secret.txt", docs / "escape.txt")

    report = fake_rag.ingest([docs])

    assert report.ok and [Path(p).name for p in report.added] == ["good.txt"]
    assert [(Path(p).name, r) for p, r in report.skipped] == [
        ("escape.txt", f"symbolic link to {(outside / 'secret.txt').resolve()}, outside the folder being ingested")]
    assert all("7781" not in hit.chunk.text for hit in fake_rag.retrieve("vault combination", 5))
    # named explicitly, the same link is the user's choice and is followed
    assert [Path(p).name for p in fake_rag.ingest([docs / "escape.txt"]).added] == ["secret.txt"]


def test_a_fifo_named_explicitly_fails_without_blocking(fake_rag, tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")
    report = fake_rag.ingest([tmp_path / "pipe.txt"])
    assert _reasons(report) == {"pipe.txt": "not a regular file (a FIFO)"}


def test_size_and_text_limits_refuse_a_file_with_the_setting_to_change(tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("word " * 1000)
    with pytest.raises(DocumentError, match=r"the file is 0.0 MB, over the 0.0 MB limit \(setting max_file_mb\)"):
        load(big, max_bytes=1000)
    with pytest.raises(DocumentError, match=r"more than 100 characters of text \(setting max_text_chars\)"):
        load(big, max_chars=100)
    pdf = write_pdf(tmp_path / "long.pdf", [f"Page {i} says something long enough to count." for i in range(20)])
    with pytest.raises(DocumentError, match="more than 200 characters"):
        load(pdf, max_chars=200)
    assert load(big).text.startswith("word word")


def test_a_docx_zip_bomb_is_refused_before_it_inflates(tmp_path):
    bomb = tmp_path / "bomb.docx"
    real = write_docx(tmp_path / "real.docx", ["A real paragraph."])
    with zipfile.ZipFile(real) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            if item.filename == "word/document.xml":
                with out.open("word/document.xml", "w") as f:  # 64 MB of spaces, ~64 KB zipped
                    for _ in range(64):
                        f.write(b" " * (1 << 20))
            else:
                out.writestr(item, src.read(item))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(DocumentError, match=r"XML inflates to 6[45].\d MB, over the 16.0 MB limit \(a zip bomb"):
        load(bomb, max_bytes=16 << 20)


def test_the_reader_child_is_stopped_at_its_time_limit_and_replaced(tmp_path):
    pdf = write_pdf(tmp_path / "doc.pdf", [f"Page {i} of a document." for i in range(30)])
    with FileReader(timeout=30) as reader:
        assert "Page 29" in reader.read(pdf).text  # the child has started and answered
        first = reader._proc.pid
        reader.timeout = 1e-4  # no child parses a 30-page PDF and answers in 0.1 ms
        with pytest.raises(DocumentError, match=r"reading took longer than 0.0001 s \(setting read_timeout\)"):
            reader.read(pdf)
        assert reader._proc is None  # killed
        reader.timeout = 30
        assert "Page 0" in reader.read(pdf).text  # a new child took over
        assert reader._proc.pid != first
        assert reader.peak_rss_mb > 10


def test_the_reader_child_reports_a_file_over_its_memory_limit(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"word " * ((60 << 20) // 5))  # 60 MB of text; decoding it needs more than 128 MB
    with FileReader(timeout=60, memory_mb=128) as reader:
        with pytest.raises(DocumentError, match="memory limit|reader process"):
            reader.read(big)
        small = tmp_path / "small.txt"
        small.write_text(GOOD)
        assert reader.read(small).text == GOOD  # the next file is read as usual


def test_odd_file_names_are_ingested_and_shown_escaped(fake_rag, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    names = ["new\nline.txt", "[red]markup[bold] x.txt", "日本語の名前.txt", ("x" * 240) + ".txt"]
    for name in names:
        (docs / name).write_text(GOOD)
    report = fake_rag.ingest([docs])
    assert report.ok and sorted(Path(p).name for p in report.added) == sorted(names)
    assert printable(str(docs / names[0])).endswith("new\\nline.txt")


@pytest.mark.integration
def test_the_cli_names_each_bad_file_and_never_hangs_or_shows_a_traceback(tmp_path):
    """The three reported cases, as a user met them: a link loop (was a traceback), a FIFO
    (was a hang), a link to a file outside the folder (was indexed)."""
    import subprocess
    import sys

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text(GOOD)
    os.symlink("loop2.txt", docs / "loop1.txt")
    os.symlink("loop1.txt", docs / "loop2.txt")
    os.mkfifo(docs / "pipe.txt")
    (tmp_path / "secret.txt").write_text("The vault combination is 7781.\n")
    os.symlink(tmp_path / "secret.txt", docs / "escape.txt")

    r = subprocess.run([sys.executable, "-m", "ragqa.cli", "ingest", str(docs), "--index", str(tmp_path / "idx"),
                        "--json"], capture_output=True, text=True, timeout=300)

    assert r.returncode == 2, r.stderr  # some files failed
    assert "Traceback" not in r.stdout + r.stderr
    import json

    out = json.loads(r.stdout)
    assert [Path(p).name for p in out["added"]] == ["good.txt"]
    assert {Path(f["path"]).name: f["reason"] for f in out["failed"]} == {
        "loop1.txt": "symbolic link loop", "loop2.txt": "symbolic link loop", "pipe.txt": "not a regular file (a FIFO)"}
    assert [Path(s["path"]).name for s in out["skipped"]] == ["escape.txt"]


def test_an_encrypted_pdf_is_named_as_such_not_as_corrupt(tmp_path):
    from pypdf import PdfReader, PdfWriter

    plain = write_pdf(tmp_path / "plain.pdf", ["Encrypted secrets about tea."])
    writer = PdfWriter()
    for page in PdfReader(plain).pages:
        writer.add_page(page)
    writer.encrypt("a-password")
    locked = tmp_path / "locked.pdf"
    with locked.open("wb") as f:
        writer.write(f)
    with pytest.raises(DocumentError, match="^encrypted PDF: it needs a password"):
        load(locked)
