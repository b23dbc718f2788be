import pytest

from devkit.docmaker import write_docx, write_pdf
from ragqa.errors import DocumentError, EmptyDocumentError, UnsupportedFormatError
from ragqa.ingest.loaders import load


def test_utf8_text(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("Café au lait.\r\nSecond line.", encoding="utf-8")
    loaded = load(p)
    assert loaded.text == "Café au lait.\nSecond line.\n"
    assert loaded.encoding == "utf-8"


def test_legacy_encoding_is_detected_not_assumed(tmp_path):
    p = tmp_path / "old.txt"
    text = "Le château de Versailles était la résidence des rois de France. Élégant et célèbre, très fréquenté."
    p.write_bytes(text.encode("cp1252"))
    assert load(p).text.strip() == text


def test_utf16_with_bom(tmp_path):
    p = tmp_path / "wide.txt"
    p.write_bytes("Hello wide world. Ünïcödé.".encode("utf-16"))
    assert load(p).text.strip() == "Hello wide world. Ünïcödé."


def test_html_keeps_paragraphs_drops_scripts(tmp_path):
    p = tmp_path / "page.html"
    p.write_text("<html><head><title>T</title><style>p{}</style></head><body><script>var x=1;</script>"
                 "<h1>Title</h1><p>First <b>bold</b> paragraph.</p><ul><li>item one</li></ul></body></html>")
    text = load(p).text
    assert text == "Title\n\nFirst bold paragraph.\n\nitem one\n"


def test_pdf_pages_are_numbered(tmp_path):
    p = write_pdf(tmp_path / "two.pdf", ["The first page speaks of apples.", "The second page speaks of pears."])
    loaded = load(p)
    assert "apples" in loaded.text and "pears" in loaded.text
    assert loaded.page_at(loaded.text.index("pears")) == 2
    assert loaded.page_at(loaded.text.index("apples")) == 1


def test_docx(tmp_path):
    p = write_docx(tmp_path / "w.docx", ["Paragraph one of the report.", "Paragraph two."])
    assert load(p).text == "Paragraph one of the report.\n\nParagraph two.\n"


@pytest.mark.parametrize("name,data,error,words", [
    ("empty.txt", b"", EmptyDocumentError, "empty"),
    ("blank.md", b"  \n\n ", EmptyDocumentError, "empty"),
    ("binary.txt", b"\x00\x01\x02\xff" * 100, DocumentError, "binary"),
    ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", DocumentError, "PDF"),
    ("broken.docx", b"PK\x03\x04 not a zip", DocumentError, "DOCX"),
    ("image.png", b"\x89PNG\r\n", UnsupportedFormatError, "unsupported"),
])
def test_bad_files_raise_document_errors_with_a_reason(tmp_path, name, data, error, words):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(error) as info:
        load(p)
    assert words.lower() in str(info.value).lower()
