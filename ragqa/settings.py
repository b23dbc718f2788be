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
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .file_reader import FileReader

# Measured on 20 SQuAD questions with the bundled 135M model (see the issue note): this
# short instruction plus the citation grammar below gave the most correctly cited answers.
DEFAULT_SYSTEM_PROMPT = (
    "Answer the question with a short phrase taken from the sources, then the number of "
    "the source in brackets, like: Thomas Savery [2]"
)

ALIASES = {"index": "index_dir", "model": "model_path"}


@dataclass(frozen=True)
class Settings:
    # where things live
    index_dir: Path = Path("indexes/default")
    database_url: str | None = None  # default: sqlite:///<index_dir>/ragqa.db
    # models (None = the bundled defaults)
    embedder: str | None = None  # a sentence-transformers model directory or name
    model_path: str | None = None  # any GGUF file
    # ingest
    chunk_tokens: int = 200  # never more than the embedder's window
    chunk_overlap: int = 40
    embed_batch_size: int = 32
    embed_processes: int = 0  # 0 = one per core when there is enough to embed
    lock_timeout: float = 60.0  # seconds a writer waits for another to finish before giving up
    # limits on one file: larger files (and a DOCX inflating past it) are refused unread;
    # more text than max_text_chars (about 1,500 book pages per million) is refused; each
    # file is read in a child process that is stopped after read_timeout seconds (0: read
    # in-process, no time or memory limit) and may use at most read_memory_mb of memory
    max_file_mb: float = 100.0
    max_text_chars: int = 5_000_000
    read_timeout: float = 60.0
    read_memory_mb: int = 2048
    # retrieval
    top_k: int = 2  # chunks retrieved for the prompt (bench/bench_prompt.py: 2 beat 1 and 3 with the bundled model)
    retrieval: str = "hybrid"  # hybrid (dense + lexical, fused), dense or lexical
    # convex: weighted sum of scaled cosine and BM25 (beat RRF and both searches alone on
    # SQuAD 2.0 and SciFact, see bench/fusion_report.py); rrf: reciprocal rank fusion
    fusion: str = "convex"
    dense_weight: float = 1.0  # weights of the fusion
    lexical_weight: float = 1.0
    # exact search below this many vectors, an inverted file (IVF) from there on
    ivf_min_vectors: int = 200_000
    nprobe: int = 0  # inverted lists searched per question (IVF only); 0: an eighth of them
    min_relevance: float = 0.25  # best cosine below this: nothing relevant was found
    # prompt: the best sentences of the top_k chunks up to this many model tokens (0: whole
    # chunks). The bundled 135M model loses the answer in long sources: on 100 SQuAD
    # questions, 44 right drafts with 32 tokens, 25 with two whole chunks (304 tokens);
    # raise it for a larger model (bench/bench_prompt.py)
    context_tokens: int = 32
    # generation
    n_ctx: int = 2048
    n_gpu_layers: int = 0  # -1 offloads every layer (needs a CUDA build of llama-cpp-python)
    n_threads: int = 0  # 0 = every core
    temperature: float = 0.0
    top_p: float = 0.95
    top_k_sampling: int = 40
    max_tokens: int = 96
    cite_grammar: int = 1  # 1: constrain the answer to end with a [n] marker (llama.cpp grammar)
    # 1: the answer is a verbatim span of one source, then its marker (a grammar built from the
    # sources at question time); 0: free text (then cite_grammar applies). Measured on 300
    # SQuAD questions with the bundled 135M model: spans gave 60 right drafts of 150 (EM 0.26,
    # 2 words), free text 68 (EM 0.23, 4 words) and a better-separating confidence, so 0
    extractive: int = 0
    seed: int = 42
    # 1: before a GGUF is first loaded with this llama.cpp build on this CPU, a child process
    # runs a short chat with it, so that a build the CPU cannot run gives a clear error
    # instead of a crash (ragqa.llama_check; remembered, about 1 s once)
    llama_check: int = 1
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    # answering
    calibration: str = "auto"  # auto: the index's calibration.json, else a bundled one for these models; off; or a file
    min_confidence: float | None = None  # abstain below this; default: the calibration's threshold, else 0.5
    # answer at this certified risk instead of the calibration's own target: one of the risks
    # it certified a threshold for (ragqa status lists them)
    target_risk: float | None = None
    min_grounding: float = 0.5  # share of the answer's content words found in what it cites
    # 1: one extra short pass asks the model whether the sources state its answer (+0.4 s a
    # question; with the bundled 135M model its AUROC was 0.53, so it is off by default)
    self_check: int = 0
    # the service (ragqa serve) and its ingestion workers (ragqa worker)
    api_key: str | None = field(default=None, repr=False)  # when set, every endpoint but /healthz needs it
    upload_dir: Path | None = None  # default: <index_dir>/uploads
    max_upload_mb: float = 50.0
    ask_queue: int = 8  # questions that may wait while one is answered; more are refused (503)
    ask_timeout: float = 120.0  # seconds a question may wait for its turn, then 503
    job_lease: float = 60.0  # seconds a worker holds a job without renewing before another may take it
    job_attempts: int = 3  # claims of one job before it is failed as abandoned

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.index_dir).resolve() / 'ragqa.db'}"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * (1 << 20))

    def file_reader(self) -> "FileReader":
        """A reader of files with these limits (ragqa.file_reader); close it when done."""
        from .file_reader import FileReader

        return FileReader(timeout=self.read_timeout, memory_mb=self.read_memory_mb,
                          max_bytes=int(self.max_file_mb * (1 << 20)) or None, max_chars=self.max_text_chars or None)

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
