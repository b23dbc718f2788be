from pathlib import Path

import pytest

from devkit.docmaker import write_docx, write_pdf
from ragqa.errors import InputError


def test_ingest_is_idempotent_and_follows_changes(fake_rag, docs):
    emb = fake_rag.embedder
    r1 = fake_rag.ingest([docs])
    assert len(r1.added) == 3 and r1.ok
    embedded = emb.texts_embedded
    assert embedded == r1.chunks_embedded > 0

    r2 = fake_rag.ingest([docs])
    assert len(r2.unchanged) == 3 and r2.chunks_embedded == 0
    assert emb.texts_embedded == embedded, "an unchanged folder embeds nothing"

    (docs / "bees.md").write_text("# Bees\n\nBumblebees can fly in cooler weather than honey bees.\n", encoding="utf-8")
    r3 = fake_rag.ingest([docs])
    assert [Path(p).name for p in r3.updated] == ["bees.md"]
    assert len(r3.unchanged) == 2
    assert emb.texts_embedded == embedded + r3.chunks_embedded
    st = fake_rag.status()
    assert st["documents"] == 3 and st["chunks"] == st["vectors"]
    hits = fake_rag.retrieve("Which bees fly in cooler weather?", 1)
    assert "Bumblebees" in hits[0].chunk.text


def test_prune_removes_documents_whose_files_are_gone(fake_rag, docs):
    fake_rag.ingest([docs])
    (docs / "volcanoes.txt").unlink()
    kept = fake_rag.ingest([docs])
    assert fake_rag.status()["documents"] == 3 and not kept.removed  # without --prune nothing is removed
    pruned = fake_rag.ingest([docs], prune=True)
    assert [Path(p).name for p in pruned.removed] == ["volcanoes.txt"]
    st = fake_rag.status()
    assert st["documents"] == 2 and st["chunks"] == st["vectors"]


def test_bad_files_are_reported_and_the_rest_ingested(fake_rag, docs):
    (docs / "empty.txt").write_text("")
    (docs / "binary.txt").write_bytes(b"\x00\xff" * 50)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    (docs / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    write_pdf(docs / "good.pdf", ["Penguins live in the southern hemisphere.", "Emperor penguins breed in winter."])
    write_docx(docs / "good.docx", ["Saturn has a ring system made of ice."])
    report = fake_rag.ingest([docs])
    failed = {Path(p).name: reason for p, reason in report.failed}
    assert set(failed) == {"empty.txt", "binary.txt", "broken.pdf"}
    assert "empty" in failed["empty.txt"] and "binary" in failed["binary.txt"] and "PDF" in failed["broken.pdf"]
    assert [Path(p).name for p in report.ignored] == ["photo.jpg"]
    assert len(report.added) == 5 and not report.ok
    hit = fake_rag.retrieve("When do emperor penguins breed?", 1)[0]
    assert hit.chunk.document == "good" and hit.chunk.page == 2


def test_missing_path_is_an_input_error(fake_rag, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        fake_rag.ingest([tmp_path / "nope"])


def test_many_files_are_embedded_in_few_batches(fake_rag, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(60):
        (folder / f"note{i:02d}.txt").write_text(f"Note {i} mentions the number {i} and the colour blue.\n")
    report = fake_rag.ingest([folder])
    assert len(report.added) == 60
    assert len(fake_rag.embedder.calls) == 1  # gathered across files into one call
