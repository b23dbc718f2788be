"""The README and the pages under docs/ stay true: their commands are ones the CLI
accepts, their RAGQA_* names are settings, the settings table is the schema's, every
page is linked from the README, and every link and file path they give exists."""

import re
import shlex
from dataclasses import fields
from pathlib import Path

from devkit.cliparse import parse_cli
from ragqa.settings import ALIASES, Settings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
TEXTS = {path: path.read_text(encoding="utf-8") for path in [README, *PAGES]}
ALL = "\n".join(TEXTS.values())


def commands() -> list[list[str]]:
    found = []
    for block in re.findall(r"```sh\n(.*?)```", ALL, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            for i, word in enumerate(words):
                if word.endswith("ragqa") and (i == 0 or "=" in words[i - 1] or words[i - 1] == "api"):
                    found.append(words[i + 1:])
                    break
    return found


def test_every_command_in_the_docs_parses():
    cmds = commands()
    assert len(cmds) >= 20 and {c[0] for c in cmds} >= {"ingest", "ask", "chat", "status", "serve", "worker", "jobs",
                                                         "eval", "calibrate", "reindex", "migrate-vectors"}
    for cmd in cmds:
        parse_cli(cmd)


def test_every_variable_the_docs_name_is_a_setting():
    known = {f"RAGQA_{n.upper()}" for n in {f.name for f in fields(Settings)} | set(ALIASES)} | {"RAGQA_CONFIG", "RAGQA_CACHE_DIR", "RAGQA_MODELS_DIR"}
    named = set(re.findall(r"\bRAGQA_[A-Z_]+[A-Z]\b", ALL))
    assert len(named) > 20 and named <= known, named - known


def test_the_settings_table_is_the_schemas():
    from ragqa.settings import markdown_table

    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- settings:[^>]*-->\n(.*?)\n<!-- /settings -->", page, re.S).group(1)
    assert block == markdown_table(), "run `python -m ragqa.settings` and paste its table into docs/settings.md"


def test_the_readme_is_a_front_door_that_links_every_page():
    text = TEXTS[README]
    assert len(text.splitlines()) < 250
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)", text))
    assert linked == {f"docs/{p.name}" for p in PAGES}
    assert "make demo" in text and "make test" in text and "ragqa/answer/policy.py" in text


def test_every_relative_link_resolves():
    broken = []
    for path, text in TEXTS.items():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" not in target and not (path.parent / target).exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert broken == []


def test_every_file_the_docs_name_exists():
    named = set(re.findall(r"`((?:ragqa|bench|drills|tools|devkit|tests)/[\w./-]*\w)`", ALL))
    named |= {m.rstrip("/") for m in re.findall(r"`((?:ragqa|bench|drills|tools|devkit|tests)/[\w./-]*/)`", ALL)}
    missing = sorted(n for n in named if not (ROOT / n).exists() and "*" not in n and not n.startswith("bench/peer/.venv"))
    assert len(named) > 40 and missing == []


def test_the_readers_tables_are_the_shipped_calibrations():
    """The README's and docs/readers.md's readers tables are what `python -m tools.reader_table`
    prints from the shipped calibration files: a refit that is not in the docs fails here."""
    import subprocess
    import sys

    printed = subprocess.run([sys.executable, "-m", "tools.reader_table"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
    for page in (README, ROOT / "docs" / "readers.md"):
        block = re.search(r"<!-- readers -->\n(.*?)\n<!-- /readers -->", page.read_text(encoding="utf-8"), re.S).group(1)
        assert block == printed, f"run `python -m tools.reader_table` and paste its table into {page.name}"
