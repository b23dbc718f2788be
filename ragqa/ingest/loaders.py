"""File -> text, with the offset where each page starts (PDF) so citations can name a page.

Formats: .txt .md .markdown .rst (encoding detected), .html .htm (real HTML parser),
.pdf (pypdf, one page at a time), .docx (python-docx). Each failure raises a
DocumentError with a reason a person can act on; ingest records it and goes on."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import DocumentError, EmptyDocumentError, UnsupportedFormatError
from ..types import LoadedText, Page

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".text"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".docx"}

_PREFERRED_ENCODINGS = ("cp1252", "latin_1", "iso8859_15", "cp1251", "shift_jis", "gb18030", "euc_kr")
_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_SPACE_RUNS = re.compile(r"[ \t\u00a0]+")


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def load(path: Path, *, max_bytes: int | None = None, max_chars: int | None = None) -> LoadedText:
    """Read one file. Raises DocumentError (or a subclass) with the reason it cannot.

    max_bytes: a larger file is refused before it is read (and a DOCX whose document
    inflates past it, a zip bomb); max_chars: a file yielding more text is refused."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedFormatError(f"unsupported file type {suffix or '(none)'}")
    data = read_regular(path, max_bytes)
    if not data.strip():
        raise EmptyDocumentError("empty file")
    if suffix in TEXT_SUFFIXES:
        text, encoding = decode(data)
        loaded = LoadedText(text=text, encoding=encoding)
    elif suffix in HTML_SUFFIXES:
        loaded = _load_html(data)
    elif suffix == ".pdf":
        loaded = _load_pdf(path, max_chars)
    else:
        loaded = _load_docx(path, max_bytes)
    if not loaded.text.strip():
        raise EmptyDocumentError("no text could be extracted")
    if max_chars and len(loaded.text) > max_chars:
        raise DocumentError(_too_much_text(max_chars))
    return loaded


@contextmanager
def open_regular(path: Path) -> Iterator[tuple[BinaryIO, os.stat_result]]:
    """A regular file opened for reading, with its stat. A FIFO, socket or device is
    refused without blocking on it (opened non-blocking, checked with fstat); any OSError
    becomes a DocumentError with the reason."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise DocumentError(f"cannot read file: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DocumentError(f"not a regular file ({file_kind(st.st_mode)})")
        try:
            yield f, st
        except OSError as e:
            raise DocumentError(f"cannot read file: {e.strerror or e}") from None


def read_regular(path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file (see open_regular), refused over max_bytes."""
    with open_regular(path) as (f, st):
        if max_bytes and st.st_size > max_bytes:
            raise DocumentError(f"the file is {_mb(st.st_size)}, over the {_mb(max_bytes)} limit (setting max_file_mb)")
        return f.read()


def file_kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a plain file"


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB"


def _too_much_text(max_chars: int) -> str:
    return f"more than {max_chars:,} characters of text (setting max_text_chars)"


def decode(data: bytes) -> tuple[str, str]:
    """Bytes -> (text, encoding). UTF-8 (with or without BOM) first, then detection."""
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DocumentError("binary file (contains NUL bytes), not text")
    try:
        return _normalize(data.decode("utf-8-sig")), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise DocumentError("cannot detect the text encoding (binary file?)")
    # Short texts often fit several code pages equally well; break ties toward the
    # most widespread legacy encodings rather than the detector's first guess.
    tied = [m for m in matches if m.chaos <= best.chaos and m.coherence >= best.coherence]
    for name in _PREFERRED_ENCODINGS:
        for m in tied:
            if m.encoding == name:
                return _normalize(str(m)), m.encoding
    return _normalize(str(best)), best.encoding


def _normalize(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _BLANK_RUNS.sub("\n\n", text).strip() + "\n"


def _load_html(data: bytes) -> LoadedText:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "lxml")
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    blocks = []
    for block in soup.find_all(["p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "pre", "td", "th", "blockquote", "dd", "dt"]):
        if block.find(["p", "li", "pre", "blockquote", "td"]):
            continue  # a container; its children are taken one by one
        text = _SPACE_RUNS.sub(" ", block.get_text(" ", strip=True)).strip()
        if text:
            blocks.append(text)
    if not blocks:  # no block markup at all: take the visible text
        blocks = [_SPACE_RUNS.sub(" ", soup.get_text("\n", strip=True))]
    return LoadedText(text=_normalize("\n\n".join(blocks)), encoding=soup.original_encoding)


def _load_pdf(path: Path, max_chars: int | None = None) -> LoadedText:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:  # an empty user password opens many; decrypt says, it does not raise
            from pypdf import PasswordType

            try:
                opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
            except Exception:
                opened = False
            if not opened:
                raise DocumentError("encrypted PDF: it needs a password (save a decrypted copy to ingest it)")
        parts: list[str] = []
        pages: list[Page] = []
        offset = 0
        for number, page in enumerate(reader.pages, start=1):
            text = _normalize(page.extract_text() or "").strip()
            if not text:
                continue
            pages.append(Page(number=number, start=offset))
            parts.append(text)
            offset += len(text) + 2  # the "\n\n" that joins pages
            if max_chars and offset > max_chars:  # stop reading a huge PDF early
                raise DocumentError(_too_much_text(max_chars))
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as e:
        raise DocumentError(f"corrupt or unreadable PDF: {e}") from None
    except Exception as e:  # pypdf raises a wide range of errors on damaged files
        raise DocumentError(f"corrupt or unreadable PDF: {type(e).__name__}: {e}") from None
    if not parts:
        raise EmptyDocumentError("PDF has no extractable text (scanned images need OCR)")
    return LoadedText(text="\n\n".join(parts) + "\n", pages=tuple(pages))


def _load_docx(path: Path, max_bytes: int | None = None) -> LoadedText:
    import zipfile

    from docx import Document as DocxDocument

    try:
        with zipfile.ZipFile(path) as z:  # a zip bomb is refused before anything is inflated
            inflated = sum(i.file_size for i in z.infolist() if i.filename.endswith(".xml"))
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise DocumentError(f"corrupt or unreadable DOCX: {e}") from None
    if max_bytes and inflated > max_bytes:
        raise DocumentError(f"the DOCX's XML inflates to {_mb(inflated)}, over the {_mb(max_bytes)} limit "
                            "(a zip bomb?; setting max_file_mb)")
    try:
        doc = DocxDocument(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise DocumentError(f"corrupt or unreadable DOCX: {e}") from None
    except Exception as e:
        raise DocumentError(f"corrupt or unreadable DOCX: {type(e).__name__}: {e}") from None
    blocks = [p.text.strip() for p in doc.paragraphs if p.text.strip()]
    for table in doc.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                blocks.append(" | ".join(cells))
    return LoadedText(text=_normalize("\n\n".join(blocks)))
