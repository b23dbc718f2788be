"""The CLI as a person meets it: a real process, its exit status and what it prints."""

import subprocess
import sys

HEAVY = ("torch", "faiss", "llama_cpp", "sentence_transformers", "transformers", "onnxruntime", "onnx")


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "ragqa.cli", *args], capture_output=True, text=True, timeout=300, **kw)


def test_import_and_help_load_no_heavy_library():
    code = ("import sys, ragqa\n"
            "from typer.testing import CliRunner\n"
            "from ragqa.cli.app import app\n"
            "r = CliRunner().invoke(app, ['--help'])\n"
            "assert r.exit_code == 0, r.output\n"
            "assert 'ingest' in r.output and 'ask' in r.output and 'chat' in r.output and 'status' in r.output\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_help_runs():
    r = run("--help")
    assert r.returncode == 0 and "ingest" in r.stdout


def test_missing_path_is_one_red_line(tmp_path):
    r = run("ingest", str(tmp_path / "missing"), "--index", str(tmp_path / "i"))
    assert r.returncode == 1
    assert "no such file or folder" in r.stderr and "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1


def test_ask_without_an_index_is_one_red_line(tmp_path):
    r = run("ask", "Who?", "--index", str(tmp_path / "none"))
    assert r.returncode == 1 and "no index at" in r.stderr and "Traceback" not in r.stderr


def test_bad_setting_is_one_red_line(tmp_path):
    import os
    r = run("status", "--index", str(tmp_path), env={**os.environ, "RAGQA_TOP_K": "lots"})
    assert r.returncode == 1 and "top_k" in r.stderr and "Traceback" not in r.stderr


def test_reindex_with_an_unknown_kind_is_one_red_line(tmp_path):
    r = run("reindex", "--index", str(tmp_path / "none"), "--kind", "annoy")
    assert r.returncode == 1 and "index kind 'annoy'" in r.stderr and "Traceback" not in r.stderr


def test_an_embedder_export_that_cannot_be_written_is_one_line_before_anything_is_made(tmp_path):
    import os

    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("A sentence to ingest.")
    env = {**os.environ, "RAGQA_CACHE_DIR": str(blocker)}
    r = run("ingest", str(docs), "--index", str(tmp_path / "ix"), env=env)
    assert r.returncode == 1
    assert "cannot write the ONNX export" in r.stderr and "RAGQA_EMBED_BACKEND=torch" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert not (tmp_path / "ix").exists()
