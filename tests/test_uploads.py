"""Uploaded files: names that could leave the upload folder are refused; the size limit holds
while the file streams in; a file appears only when complete."""

import io

import pytest

from ragqa.errors import InputError, TooLargeError
from ragqa.service.uploads import safe_name, store


@pytest.mark.parametrize("name", [
    "../escape.txt", "../../etc/cron.d/x.txt", "/etc/passwd.txt", "a/b.txt", "..\\win.txt", "..", ".",
    ".hidden.txt", "", "   ", "nul\x00.txt", "line\nbreak.txt", "x" * 300 + ".txt",
])
def test_names_that_escape_or_hide_are_refused(name):
    with pytest.raises(InputError):
        safe_name(name)


def test_unsupported_types_are_refused_with_the_list():
    with pytest.raises(InputError, match=r"unsupported type; use one of .*\.pdf"):
        safe_name("program.exe")


def test_plain_names_are_kept():
    assert safe_name("Report 2024 (final).pdf") == "Report 2024 (final).pdf"
    assert safe_name("café.md") == "café.md"


def test_store_writes_inside_the_folder_and_replaces(tmp_path):
    folder = tmp_path / "uploads"
    path = store(folder, "notes.txt", io.BytesIO(b"first"), max_bytes=100)
    assert path == (folder / "notes.txt").resolve() and path.read_bytes() == b"first"
    store(folder, "notes.txt", io.BytesIO(b"second"), max_bytes=100)
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]  # no temporary file left


def test_a_file_over_the_limit_leaves_nothing_behind(tmp_path):
    folder = tmp_path / "uploads"
    with pytest.raises(TooLargeError, match="upload limit"):
        store(folder, "big.txt", io.BytesIO(b"x" * (3 << 20)), max_bytes=2 << 20)
    assert list(folder.iterdir()) == []


def test_escaping_name_writes_nothing_anywhere(tmp_path):
    folder = tmp_path / "uploads"
    with pytest.raises(InputError):
        store(folder, "../outside.txt", io.BytesIO(b"x"), max_bytes=10)
    assert not (tmp_path / "outside.txt").exists()


def test_an_upload_replaces_a_link_in_the_upload_folder_and_never_writes_through_it(tmp_path):
    import os

    folder, outside = tmp_path / "uploads", tmp_path / "outside.txt"
    folder.mkdir()
    outside.write_text("untouched\n")
    os.symlink(outside, folder / "notes.txt")  # planted by someone with access to the folder
    path = store(folder, "notes.txt", io.BytesIO(b"uploaded text\n"), 1 << 20)
    assert outside.read_text() == "untouched\n"
    assert not path.is_symlink() and path.read_text() == "uploaded text\n"
