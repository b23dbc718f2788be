"""The README's commands are ones the CLI accepts, and its RAGQA_* names are settings."""

import re
import shlex
from dataclasses import fields
from pathlib import Path

from cliparse import parse_cli

from ragqa.settings import ALIASES, Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def commands() -> list[list[str]]:
    found = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            for i, word in enumerate(words):
                if word.endswith("ragqa") and (i == 0 or "=" in words[i - 1] or words[i - 1] == "api"):
                    found.append(words[i + 1:])
                    break
    return found


def test_every_command_in_the_readme_parses():
    cmds = commands()
    assert len(cmds) >= 20 and {c[0] for c in cmds} >= {"ingest", "ask", "chat", "status", "serve", "worker", "jobs",
                                                         "eval", "calibrate", "reindex", "migrate-vectors"}
    for cmd in cmds:
        parse_cli(cmd)


def test_every_variable_the_readme_names_is_a_setting():
    known = {f"RAGQA_{n.upper()}" for n in {f.name for f in fields(Settings)} | set(ALIASES)} | {"RAGQA_CONFIG"}
    named = set(re.findall(r"\bRAGQA_[A-Z_]+[A-Z]\b", README))
    assert len(named) > 20 and named <= known, named - known


def test_the_settings_table_is_the_schemas():
    from ragqa.settings import markdown_table

    block = re.search(r"<!-- settings:[^>]*-->\n(.*?)\n<!-- /settings -->", README, re.S).group(1)
    assert block == markdown_table(), "run `python -m ragqa.settings` and paste its table into the README"
