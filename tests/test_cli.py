"""The CLI as a person meets it: a real process, its exit status and what it prints."""

import subprocess
import sys

import pytest

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


@pytest.mark.integration
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


@pytest.mark.integration
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


def test_every_option_that_stands_for_a_setting_says_so_in_the_settings_own_words():
    """An option whose help names a RAGQA_* variable is that setting: its help is the
    schema's (ragqa.settings.help_for) and it defaults to None, so that it overrides the
    setting only when given. A hand-written copy of a setting's help or default fails here."""
    import re

    import typer

    from ragqa.cli.app import app
    from ragqa.settings import ALIASES, help_for

    group = typer.main.get_command(app)
    checked = 0
    for name, command in group.commands.items():
        for param in command.params:
            found = re.search(r"env RAGQA_([A-Z_]+)", getattr(param, "help", None) or "")
            if not found:
                continue
            setting = ALIASES.get(found.group(1).lower(), found.group(1).lower())
            assert param.help == help_for(setting), f"ragqa {name} {param.opts}: not the schema's help of {setting}"
            assert param.default is None, f"ragqa {name} {param.opts}: a default of its own ({param.default!r})"
            checked += 1
    assert checked >= 20
