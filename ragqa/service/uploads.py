"""Files sent to the service: checked, stored in the upload folder under their own name,
then ingested like any other file.

A name is refused, not repaired, when it could leave the folder or hide in it: path
separators, `..`, a leading dot, control characters, more than 255 bytes. The file is
written beside its final place under a hidden temporary name and renamed when complete,
so an ingest never reads half an upload; a second upload of the same name replaces the
first (and its document is re-ingested as updated). A symbolic link found under that
name in the folder is replaced too, not followed."""

from __future__ import annotations

import os
import tempfile
import unicodedata
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError, TooLargeError
from ..ingest.loaders import SUPPORTED_SUFFIXES, is_supported

MAX_NAME_BYTES = 255
BLOCK = 1 << 20


def safe_name(filename: str | None) -> str:
    """The file name to store an upload under, or InputError saying why it cannot be used."""
    name = unicodedata.normalize("NFC", filename or "")
    if not name.strip():
        raise InputError("the upload has no file name")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise InputError(f"file name {filename!r}: give a plain file name, without folders")
    if name.startswith("."):
        raise InputError(f"file name {filename!r}: hidden names (leading dot) are not accepted")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InputError(f"file name {filename!r}: control characters are not accepted")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise InputError(f"file name is longer than {MAX_NAME_BYTES} bytes")
    if not is_supported(Path(name)):
        raise InputError(f"file name {filename!r}: unsupported type; use one of {' '.join(sorted(SUPPORTED_SUFFIXES))}")
    return name


def store(folder: Path, filename: str | None, data: BinaryIO, max_bytes: int) -> Path:
    """Copy `data` to folder/<safe name>, at most max_bytes (TooLargeError beyond)."""
    name = safe_name(filename)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # Not resolved: a link planted under this name is replaced by the upload (os.replace
    # renames over the link itself), never written through to where it points.
    target = folder.resolve() / name
    if target.parent != folder.resolve():  # belt and braces: safe_name already refused separators
        raise InputError(f"file name {filename!r} leaves the upload folder")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            while block := data.read(BLOCK):
                size += len(block)
                if size > max_bytes:
                    raise TooLargeError(f"the file is larger than the {_mib(max_bytes)} upload limit")
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB"
