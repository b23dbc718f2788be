"""The answer prompt's constant prefix (system prompt and worked examples), evaluated
once and kept on disk, so a cold `ragqa ask` does not evaluate it again.

Every answer prompt starts with the same ~300 tokens; a warm process reuses them from
llama.cpp's cache, a new process pays for all of them. After a cold process's first
answer, `save` cuts llama.cpp's state back to the tokens before the final question's
"Sources:" (nothing of the user's documents is kept), and writes it atomically under
~/.cache/ragqa/prefix-state/, keyed by the GGUF file, the context size, the llama.cpp
build and the prefix messages. `restore` loads it into a fresh context; llama-cpp-python
then evaluates only what follows the longest prefix the new prompt shares with it, so a
stale or foreign state can cost time but never change an answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .paths import cache_root

CUE = "Sources:"  # how ragqa's answer turn begins (ragqa.answer.prompts)


def cache_dir() -> Path:
    return cache_root() / "prefix-state"


def key(model_path: Path, n_ctx: int, prefix_messages: Sequence[dict[str, str]]) -> str:
    import llama_cpp

    st = model_path.stat()
    parts = [str(model_path.resolve()), st.st_size, st.st_mtime_ns, n_ctx, llama_cpp.__version__,
             llama_cpp.__file__, json.dumps(list(prefix_messages), sort_keys=True)]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


def cue_positions(llm: Any, ids: Sequence[int]) -> list[int]:
    """Where CUE begins in the tokens `ids`: its word's tokens followed by a token that begins
    with its colon (tokenizers differ: Qwen's merges the colon with the newline after it)."""
    word = list(llm.tokenize(CUE.rstrip(":").encode(), add_bos=False, special=False))
    out = []
    for i in range(len(ids) - len(word)):
        if ids[i: i + len(word)] == word and llm.detokenize([ids[i + len(word)]]).startswith(b":"):
            out.append(i)
    return out


def restore(llm: Any, name: str) -> int:
    """Load a saved prefix into a fresh context; the number of tokens restored (0: none)."""
    path = cache_dir() / f"{name}.pkl"
    if llm.n_tokens or not path.is_file():
        return 0
    try:
        import numpy as np
        from llama_cpp.llama import LlamaState

        with path.open("rb") as f:
            saved = pickle.load(f)
        n = int(saved["n_tokens"])
        ids = np.zeros(llm.n_ctx(), dtype=np.intc)  # load_state replaces the whole buffer, as save_state copied it
        ids[:n] = saved["input_ids"]
        state = LlamaState(input_ids=ids,
                           scores=np.zeros((n, llm.n_vocab()), dtype=np.single), n_tokens=n,
                           llama_state=saved["llama_state"], llama_state_size=len(saved["llama_state"]), seed=saved["seed"])
        llm.load_state(state)
        return n
    except Exception:  # a damaged or foreign file: start cold, as without it
        llm.reset()
        return 0


def save(llm: Any, name: str, prefix_messages: Sequence[dict[str, str]]) -> int:
    """Cut the context back to the constant prefix and keep it; tokens saved (0: none).
    The CUE after those the prefix messages hold opens the question's own turn (the user's
    documents come only after it)."""
    path = cache_dir() / f"{name}.pkl"
    if path.is_file():
        return 0
    before = sum(m["content"].count(CUE) for m in prefix_messages)
    ids = [int(t) for t in llm.input_ids]
    starts = cue_positions(llm, ids)
    if len(starts) <= before:
        return 0
    n = starts[before]
    if llm.detokenize(ids[:n]).decode("utf-8", "replace").count(CUE) != before:
        return 0  # a CUE the tokens did not show: where the question's turn begins is not certain
    llm._ctx.kv_cache_seq_rm(-1, n, -1)
    llm.n_tokens = n
    state = llm.save_state()
    blob = pickle.dumps({"n_tokens": n, "input_ids": ids[:n], "llama_state": state.llama_state, "seed": state.seed})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".state-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n
