"""The embedder on ONNX Runtime, in float32 or dynamically quantized int8, over the export
ragqa.models.onnx_export makes on this machine (the bundled MiniLM by default; nothing is
downloaded). Embedding needs only `tokenizers` and `onnxruntime`: torch is imported for
the export alone. Pooling (mean or CLS, from the model's own Pooling config) and
normalisation are done here, as sentence-transformers does them."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelError
from .onnx_export import FLOAT_FILE, INT8_FILE, ensure_export, pooling_mode
from .paths import DEFAULT_EMBEDDER_NAME, default_embedder_path

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

BULK_TEXTS = 32  # from this many texts (an ingest), threads spin between operators; fewer (a question, its sentences) not


class OnnxEmbedder:
    """The Embedder protocol (ragqa.models.embed) on ONNX Runtime; `quantized` picks int8."""

    def __init__(self, model: str | None = None, *, quantized: bool = False, threads: int = 0):
        if model:
            self.source = Path(model)
            self.name = os.path.basename(os.path.normpath(str(model))) or str(model)
        else:
            self.source = default_embedder_path()
            self.name = DEFAULT_EMBEDDER_NAME
        if not self.source.is_dir():
            raise ModelError(f"the onnx backends need a local model folder, not {model!r}: use RAGQA_EMBED_BACKEND=torch")
        self.backend = "onnx-int8" if quantized else "onnx"
        self.quantized = quantized
        self.threads = threads if threads > 0 else (os.cpu_count() or 1)
        # int8: one text per run. Dynamic quantization scales activations per run, so in a
        # batch a text's vector depends on its batch-mates (cosine 0.995-0.997 to its vector
        # alone); alone, a vector is a function of its text. 200 SQuAD paragraphs, 2 cores:
        # 2.09x torch's speed one by one, 2.49x in batches of 4. Float: batches of 4 were
        # fastest (1.26x; 1.01x in batches of 32).
        self.batch_size = 1 if quantized else 4
        self._sessions: dict[bool, Any] = {}
        self._folder: Path | None = None
        self._inputs: list[str] = []
        self._tokenizer: Any = None
        self._counter: Any = None
        self._config: dict | None = None

    @property
    def config(self) -> dict:
        if self._config is None:
            st = self.source / "sentence_bert_config.json"
            cfg = json.loads((self.source / "config.json").read_text(encoding="utf-8"))
            max_len = json.loads(st.read_text(encoding="utf-8")).get("max_seq_length") if st.is_file() else None
            self._config = {"dimension": int(cfg["hidden_size"]),
                            "max_length": int(max_len or cfg.get("max_position_embeddings", 512)),
                            "pooling": pooling_mode(self.source)}
        return self._config

    def session(self, bulk: bool) -> Any:
        """The ONNX Runtime session for many texts (`bulk`: worker threads spin between
        operators, 200 SQuAD paragraphs in 1.67 s against 2.07 s) or for a few (threads
        sleep when done, so none keeps spinning beside llama.cpp's after a question)."""
        if bulk not in self._sessions:
            try:
                import onnxruntime as ort
            except ImportError as e:  # pragma: no cover - install problem
                raise ModelError(f"onnxruntime is not installed: {e}") from None
            folder = self._export_folder()
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            options.add_session_config_entry("session.intra_op.allow_spinning", "1" if bulk else "0")
            path = folder / (INT8_FILE if self.quantized else FLOAT_FILE)
            self._sessions[bulk] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return self._sessions[bulk]

    def _export_folder(self) -> Path:
        """The export (made if needed) and the input names it takes: found once, for both sessions."""
        if self._folder is None:
            self._folder = ensure_export(self.source)
            self._inputs = json.loads((self._folder / "export.json").read_text(encoding="utf-8"))["inputs"]
        return self._folder

    def _tokenizers(self) -> tuple[Any, Any]:
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            path = self.source / "tokenizer.json"
            if not path.is_file():
                raise ModelError(f"{self.source} has no tokenizer.json (a fast tokenizer): use RAGQA_EMBED_BACKEND=torch")
            self._counter = Tokenizer.from_file(str(path))
            self._counter.no_truncation()
            self._counter.no_padding()
            tok = Tokenizer.from_file(str(path))
            tok.enable_truncation(self.config["max_length"])
            tok.no_padding()  # batches are padded here, to their longest text
            self._tokenizer = tok
        return self._tokenizer, self._counter

    @property
    def dimension(self) -> int:
        self.session(bulk=False)  # asked when an index opens: an export that cannot be made fails there, once
        return self.config["dimension"]

    @property
    def max_tokens(self) -> int:
        return self.config["max_length"] - 2  # [CLS] and [SEP]

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizers()[1].encode(text, add_special_tokens=False).ids)

    def close(self) -> None:
        """Drop the runtime's sessions (made again if the embedder is used after)."""
        self._sessions.clear()

    def embed(self, texts: Sequence[str]) -> "np.ndarray":
        import numpy as np

        texts = list(texts)
        dim = self.dimension
        out = np.zeros((len(texts), dim), dtype=np.float32)
        if not texts:
            return out
        tok, _ = self._tokenizers()
        session = self.session(bulk=len(texts) >= BULK_TEXTS)
        encodings = tok.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))  # like lengths batched together
        for start in range(0, len(order), self.batch_size):
            rows = order[start: start + self.batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            types = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                e = encodings[i]
                ids[r, :len(e.ids)], mask[r, :len(e.ids)], types[r, :len(e.ids)] = e.ids, e.attention_mask, e.type_ids
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            hidden = session.run(None, {n: feed[n] for n in self._inputs})[0]
            if self.config["pooling"] == "cls":
                vectors = hidden[:, 0]
            else:
                m = mask[..., None].astype(np.float32)
                vectors = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            out[rows] = vectors
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
