import re
from pathlib import Path

import pytest

from ragqa.errors import ConfigError
from ragqa.settings import Settings


def test_precedence_kwargs_env_toml_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ragqa.toml").write_text('[ragqa]\ntop_k = 7\nmax_tokens = 99\nindex = "from-toml"\n')
    s = Settings.load()
    assert (s.top_k, s.max_tokens, s.index_dir) == (7, 99, Path("from-toml"))
    monkeypatch.setenv("RAGQA_TOP_K", "5")
    monkeypatch.setenv("RAGQA_INDEX", "from-env")
    s = Settings.load()
    assert (s.top_k, s.max_tokens, s.index_dir) == (5, 99, Path("from-env"))
    s = Settings.load(top_k=3, index="from-kwargs")
    assert (s.top_k, s.index_dir) == (3, Path("from-kwargs"))
    assert Settings.load().n_ctx == 2048


def test_default_database_lives_in_the_index(tmp_path):
    s = Settings.load(index_dir=tmp_path / "x")
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'x' / 'ragqa.db'}"
    assert Settings.load(database_url="postgresql+psycopg://u@h/db").resolved_database_url.startswith("postgresql")


def test_bad_values_are_config_errors(monkeypatch):
    monkeypatch.setenv("RAGQA_TOP_K", "many")
    with pytest.raises(ConfigError, match="top_k"):
        Settings.load()
    with pytest.raises(ConfigError, match="unknown"):
        Settings.load(colour="blue")


@pytest.mark.parametrize("changes, message", [
    ({"retrieval": "fuzzy"}, "'retrieval': 'fuzzy' is not one of hybrid, dense, lexical"),
    ({"top_p": 2.0}, "'top_p': 2.0 is out of range (from 0 to 1)"),
    ({"top_k": 0}, "'top_k': 0 is out of range (from 1 to 100)"),
    ({"extractive": 2}, "'extractive': 2 is not one of 0, 1"),
    ({"n_gpu_layers": -2}, "'n_gpu_layers': -2 is out of range (at least -1)"),
])
def test_values_outside_the_schema_are_refused_at_load(monkeypatch, changes, message):
    from ragqa.errors import ConfigError
    from ragqa.settings import Settings

    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings().replace(**changes)
    name, value = next(iter(changes.items()))
    monkeypatch.setenv(f"RAGQA_{name.upper()}", str(value))
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.load()


def test_every_setting_has_help_and_the_defaults_live_in_one_place():
    from dataclasses import fields

    from ragqa.answer.retrieval import Retriever
    from ragqa.settings import Settings

    assert all(f.metadata.get("help") for f in fields(Settings))
    import inspect

    defaults = {k: v.default for k, v in inspect.signature(Retriever.__init__).parameters.items()}
    assert (defaults["mode"], defaults["fusion"]) == (Settings().retrieval, Settings().fusion) == ("hybrid", "convex")
