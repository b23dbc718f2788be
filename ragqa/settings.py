"""One Settings object. Precedence: keyword arguments > RAGQA_* environment variables >
ragqa.toml (in the working directory, or the file named by RAGQA_CONFIG) > defaults.

Every field is one environment variable: `model_path` is RAGQA_MODEL_PATH, and so on
(with the short aliases RAGQA_INDEX and RAGQA_MODEL)."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

# Measured on 20 SQuAD questions with the bundled 135M model (see the issue note): this
# short instruction plus the citation grammar below gave the most correctly cited answers.
DEFAULT_SYSTEM_PROMPT = (
    "Answer the question with a short phrase taken from the sources, then the number of "
    "the source in brackets, like: Thomas Savery [2]"
)

ALIASES = {"index": "index_dir", "model": "model_path"}


def setting(default: Any, help: str, *, choices: tuple | None = None, low: float | None = None,
            high: float | None = None, secret: bool = False) -> Any:
    """A field of Settings with its schema: what it does (the CLI's help and docs/settings.md),
    its allowed choices or range (checked at load)."""
    meta = {"help": help, "choices": choices, "low": low, "high": high}
    return field(default=default, metadata=meta, repr=not secret)


ONOFF = (0, 1)


@dataclass(frozen=True)
class Settings:
    # where things live
    index_dir: Path = setting(Path("indexes/default"), "index directory")
    database_url: str | None = setting(None, "SQLAlchemy URL of the database (default sqlite:///<index>/ragqa.db; "
                                             "PostgreSQL: postgresql+psycopg://user@host/db)")
    vector_store: str | None = setting(None, "where the vectors live: faiss (a file in the index folder) or pgvector (the "
                                             "PostgreSQL database, with the rows; default: the index's own, faiss for a new one)",
                                       choices=("faiss", "pgvector"))
    # models (None = the defaults: the bundled embedder, the catalogue's default reader)
    embedder: str | None = setting(None, "a sentence-transformers model directory or name (default: the bundled all-MiniLM-L6-v2)")
    model_path: str | None = setting(None, "a GGUF file, or the name of a model of the catalogue (`ragqa models`; default: "
                                             "its default reader, Qwen2.5-Coder-1.5B-Instruct Q4_K_M)")
    # ingest
    chunk_tokens: int = setting(200, "chunk size in embedder tokens (never more than its window; fixed per index)", low=16)
    chunk_overlap: int = setting(40, "tokens shared by neighbouring chunks (fixed per index)", low=0)
    embed_backend: str | None = setting(None, "the embedding runtime (default: the backend the index was built with; "
                                              "onnx-int8 for a new index)", choices=("torch", "onnx", "onnx-int8"))
    embed_batch_size: int = setting(32, "texts per embedding batch (torch; onnx runs 4 at a time, onnx-int8 one)", low=1)
    embed_processes: int = setting(0, "embedding threads, or processes for large ingests (0: every core)", low=0)
    lock_timeout: float = setting(60.0, "seconds a writer waits for another to finish, then 'another process is writing'", low=0)
    # limits on one file (about 1,500 book pages per million characters)
    max_file_mb: float = setting(100.0, "larger files, and a DOCX whose XML inflates past it, are refused unread (0: no limit)", low=0)
    max_text_chars: int = setting(5_000_000, "a file yielding more text is refused (0: no limit)", low=0)
    read_timeout: float = setting(60.0, "seconds to read one file in its child process, then it is stopped "
                                        "(0: read in-process, no time or memory limit)", low=0)
    read_memory_mb: int = setting(2048, "address space of the process reading files, in MB", low=64)
    # retrieval
    # (bench/bench_prompt.py: 2 beat 1 and 3 with the bundled model)
    top_k: int = setting(2, "chunks retrieved for the prompt", low=1, high=100)
    retrieval: str = setting("hybrid", "hybrid (dense and lexical, fused), dense or lexical", choices=("hybrid", "dense", "lexical"))
    # convex beat RRF and both searches alone on SQuAD 2.0 and SciFact (bench/fusion_report.py)
    fusion: str = setting("convex", "convex (weighted sum of scaled cosine and BM25) or rrf (reciprocal rank fusion)",
                          choices=("convex", "rrf"))
    dense_weight: float = setting(1.0, "weight of dense search in the fusion", low=0)
    lexical_weight: float = setting(1.0, "weight of lexical search in the fusion", low=0)
    ivf_min_vectors: int = setting(200_000, "exact search below this many vectors, an inverted file (IVF) from there on", low=0)
    nprobe: int = setting(0, "inverted lists searched per question, IVF only (0: an eighth of them)", low=0)
    hnsw_min_vectors: int = setting(50_000, "pgvector: exact search below this many vectors, an HNSW index from there on", low=0)
    ef_search: int = setting(400, "pgvector: HNSW candidates searched per question (more: better recall, slower)", low=1, high=1000)
    min_relevance: float = setting(0.25, "best retrieval score below this: nothing relevant, abstain before generating",
                                   low=-1, high=1)
    # The bundled 135M model loses the answer in long sources: on 100 SQuAD questions, 44
    # right drafts with 32 tokens, 25 with two whole chunks (304 tokens) (bench/bench_prompt.py)
    context_tokens: int = setting(32, "model tokens of the best sentences of the top-k chunks shown to the model "
                                      "(0: whole chunks; raise it for a larger model)", low=0)
    # generation
    n_ctx: int = setting(2048, "llama.cpp context size in tokens", low=256)
    n_gpu_layers: int = setting(0, "layers offloaded to the GPU (-1: all; needs a CUDA build of llama-cpp-python)", low=-1)
    n_threads: int = setting(0, "CPU threads for llama.cpp (0: every core)", low=0)
    temperature: float = setting(0.0, "sampling temperature (0: greedy)", low=0)
    top_p: float = setting(0.95, "nucleus sampling", low=0, high=1)
    top_k_sampling: int = setting(40, "top-k sampling", low=0)
    max_tokens: int = setting(96, "longest answer, in tokens", low=1)
    cite_grammar: int = setting(1, "1: the answer must end with a [n] marker (a llama.cpp grammar)", choices=ONOFF)
    # Measured on 300 SQuAD questions with the bundled 135M model: spans gave 60 right drafts
    # of 150 (EM 0.26, 2 words), free text 68 (EM 0.23, 4 words) and a better-separating
    # confidence, so 0
    extractive: int = setting(0, "1: the answer is a verbatim span of one source, chosen under a grammar; 0: free text",
                              choices=ONOFF)
    seed: int = setting(42, "sampling seed")
    llama_check: int = setting(1, "1: a child process runs the GGUF once per build, model and CPU before it is loaded, "
                                  "so a build the CPU cannot run is one clear error, not a crash", choices=ONOFF)
    system_prompt: str = setting(DEFAULT_SYSTEM_PROMPT, "the system prompt of the answer")
    prefix_cache: int = setting(1, "1: the answer prompt's constant prefix (system prompt, examples) is evaluated once and "
                                   "kept under ~/.cache/ragqa/prefix-state, so a new process does not evaluate it again",
                                choices=ONOFF)
    # answering
    calibration: str = setting("auto", "auto (the index's calibration.json, else the bundled one if it fits the models), "
                                       "off, or a calibration file")
    min_confidence: float | None = setting(None, "abstain below this confidence, a threshold of your own (default: the "
                                                 "calibration's certified threshold; with no calibration for the models, "
                                                 "no draft is given as an answer)", low=0)
    target_risk: float | None = setting(None, "answer at this certified risk: one the calibration certified a threshold for "
                                              "(`ragqa status` lists them)", low=0, high=1)
    min_grounding: float = setting(0.5, "share of the answer's content words that must be found in what it cites", low=0, high=1)
    # with the bundled 135M model its AUROC was 0.53, so it is off by default
    self_check: int = setting(0, "1: one extra pass (~0.4 s) asks the model whether the sources state its answer", choices=ONOFF)
    sentence_check: str = setting("auto", "one extra short pass (~1.7 s with the 1.5B on 2 cores) asks the model whether the sentence "
                                          "its answer cites, alone, states that answer to the question: auto (when the "
                                          "calibration in use reads it), on, or off (a calibration that reads it then "
                                          "certifies nothing)", choices=("auto", "on", "off"))
    question_log: int = setting(1, "1: every question, its sources, draft, verdict and signals are recorded in the index's "
                                   "database (`ragqa log`)", choices=ONOFF)
    # the service (ragqa serve) and its ingestion workers (ragqa worker)
    api_key: str | None = setting(None, "when set, every endpoint but /healthz needs it as a bearer token", secret=True)
    upload_dir: Path | None = setting(None, "where uploads are stored (default <index>/uploads)")
    max_upload_mb: float = setting(50.0, "largest upload, in MB", low=0)
    ask_queue: int = setting(8, "questions that may wait while one is answered; more are refused (503)", low=0)
    ask_timeout: float = setting(120.0, "seconds a question may wait for its turn, then 503", low=0)
    job_lease: float = setting(60.0, "seconds a worker holds a job without renewing before another may take it", low=1)
    job_attempts: int = setting(3, "claims of one job before it is failed as abandoned", low=1)

    def __post_init__(self) -> None:
        for f in fields(self):
            check(f.name, getattr(self, f.name), f.metadata)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.index_dir).resolve() / 'ragqa.db'}"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * (1 << 20))

    @property
    def resolved_upload_dir(self) -> Path:
        return Path(self.upload_dir) if self.upload_dir else Path(self.index_dir) / "uploads"

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **_coerce_all({k: v for k, v in changes.items() if v is not None}))

    @classmethod
    def load(cls, **overrides: Any) -> "Settings":
        values: dict[str, Any] = {}
        values.update(_from_toml())
        values.update(_from_env())
        values.update({ALIASES.get(k, k): v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return cls(**_coerce_all(values))


def check(name: str, value: Any, meta: Any) -> None:
    """ConfigError unless value fits the setting's choices and range (None: unset)."""
    if value is None or not meta:
        return
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"setting {name!r}: {value!r} is not one of {', '.join(map(str, meta['choices']))}")
    low, high = meta.get("low"), meta.get("high")
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"at least {low:g}" if high is None else f"at most {high:g}" if low is None else f"from {low:g} to {high:g}"
        raise ConfigError(f"setting {name!r}: {value!r} is out of range ({span})")


def choices(name: str) -> tuple:
    """A setting's allowed values, as its schema declares them (read by the modules that
    implement them, so that each list is written once)."""
    found = {f.name: f for f in fields(Settings)}[name].metadata["choices"]
    assert found, f"setting {name!r} declares no choices"
    return tuple(found)


def help_for(name: str) -> str:
    """A setting's help for a CLI option: what it does, its variable and default."""
    f = {f.name: f for f in fields(Settings)}[name]
    default = ("the bundled one" if name == "embedder" else "the catalogue's default reader") \
        if f.default is None and name in ("embedder", "model_path") else f.default
    return f"{f.metadata['help'][:1].upper()}{f.metadata['help'][1:]} (env RAGQA_{name.upper()}, default {default})."


def markdown_table() -> str:
    """The settings table of docs/settings.md, made from the schema (tests/test_docs.py keeps it so)."""
    rows = ["| setting | environment | default | what it does |", "|---|---|---|---|"]
    aliases = {v: k for k, v in ALIASES.items()}
    for f in fields(Settings):
        env = f"`RAGQA_{f.name.upper()}`" + (f" / `RAGQA_{aliases[f.name].upper()}`" if f.name in aliases else "")
        default = f.default
        shown = "none" if default is None else ("see settings.py" if f.name == "system_prompt" else f"`{default}`")
        text = f.metadata["help"]
        if f.metadata.get("choices") and f.metadata["choices"] != ONOFF:
            text += f" ({' / '.join(f.metadata['choices'])})"
        rows.append(f"| `{f.name}` | {env} | {shown} | {text} |")
    return "\n".join(rows)


def _types() -> dict[str, Any]:
    return {f.name: f.type for f in fields(Settings)}


def _coerce_all(values: dict[str, Any]) -> dict[str, Any]:
    types = _types()
    return {k: _coerce(k, v, types.get(k, "str")) for k, v in values.items()}


def _coerce(name: str, value: Any, type_name: str) -> Any:
    try:
        if "Path" in type_name:
            return Path(value)
        if type_name.startswith("int"):
            return int(value)
        if type_name.startswith("float"):
            return float(value)
        return value if value is None else str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name!r}: {value!r} is not a valid {type_name}") from None


def _from_env() -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = {f.name for f in fields(Settings)} | set(ALIASES)
    for name in names:
        value = os.environ.get(f"RAGQA_{name.upper()}")
        if value not in (None, ""):
            out[ALIASES.get(name, name)] = value
    return out


def _from_toml() -> dict[str, Any]:
    path = Path(os.environ.get("RAGQA_CONFIG", "ragqa.toml"))
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    section = data.get("ragqa", data)
    return {ALIASES.get(k, k): v for k, v in section.items()}


if __name__ == "__main__":  # the table of docs/settings.md: python -m ragqa.settings
    print(markdown_table())
