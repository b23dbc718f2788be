"""The embedder on ONNX Runtime, in float32 or dynamically quantized int8.

The model is exported from the sentence-transformers model on this machine (the bundled
MiniLM by default; nothing is downloaded), once, into ~/.cache/ragqa/onnx/ (or
RAGQA_CACHE_DIR): a folder named for the model and a key made of its files' sizes and
hashes, the export recipe and the library versions, so a changed model is exported
again. The export is built in a hidden temporary folder and renamed into place whole, so
a crash mid-export leaves no half file under the final name.

Embedding then needs only `tokenizers` and `onnxruntime`: torch is imported for the
export alone. What is exported is the transformer; pooling (mean or CLS, from the
model's own Pooling config) and normalisation are done here, as sentence-transformers
does them. Models with other modules (a Dense layer, say) are refused: use torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelError
from .paths import DEFAULT_EMBEDDER_NAME, cache_root, default_embedder_path

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

RECIPE = ("ragqa-onnx-2: torch.onnx.export (TorchScript exporter, opset 17, eager attention), ONNX Runtime BERT fusions; "
          "int8: quantize_dynamic QInt8 per channel")
FUSED_TYPES = {"bert", "roberta", "xlm-roberta", "distilbert", "electra"}  # what ONNX Runtime's BERT optimizer fuses
FLOAT_FILE, INT8_FILE = "model.onnx", "model_int8.onnx"
BULK_TEXTS = 32  # from this many texts (an ingest), threads spin between operators; fewer (a question, its sentences) not
_SUPPORTED = {"sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
              "sentence_transformers.models.Normalize",
              "sentence_transformers.base.modules.Transformer", "sentence_transformers.base.modules.Pooling",
              "sentence_transformers.base.modules.Normalize"}


def cache_dir() -> Path:
    return cache_root() / "onnx"


def _file_digest(path: Path) -> str:
    """Size and a hash of the first and last MiB: cheap on a 90 MB weights file, and
    different for any other weights of that size in practice."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read())
    return h.hexdigest()


def export_key(source: Path) -> str:
    """What an export is keyed by: every file of the model folder, the recipe, the versions."""
    import onnxruntime

    files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))
    parts = [RECIPE, onnxruntime.__version__] + [f"{p.relative_to(source)}:{_file_digest(p)}" for p in files]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _modules(source: Path) -> list[dict]:
    path = source / "modules.json"
    if not path.is_file():
        raise ModelError(f"{source} is not a sentence-transformers model folder (no modules.json): "
                         "the onnx backends need one; use RAGQA_EMBED_BACKEND=torch")
    return json.loads(path.read_text(encoding="utf-8"))


def pooling_mode(source: Path) -> str:
    """'mean' or 'cls', from the model's Pooling module; other models are refused."""
    modules = _modules(source)
    other = [m["type"] for m in modules if m.get("type") not in _SUPPORTED]
    if other:
        raise ModelError(f"the onnx backends export a Transformer with Pooling and Normalize; {source} also has "
                         f"{', '.join(other)}: use RAGQA_EMBED_BACKEND=torch")
    pooling = next((m for m in modules if m["type"].endswith("Pooling")), None)
    config = json.loads((source / pooling["path"] / "config.json").read_text(encoding="utf-8")) if pooling else {}
    if config.get("pooling_mode_cls_token"):
        return "cls"
    if config.get("pooling_mode_mean_tokens", True) and not any(
            config.get(k) for k in ("pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens",
                                    "pooling_mode_lasttoken")):
        return "mean"
    raise ModelError(f"the pooling of {source} is not mean or CLS: use RAGQA_EMBED_BACKEND=torch")


def ensure_export(source: Path) -> Path:
    """The folder holding this model's ONNX export (float and int8), exporting it first if
    there is none for this exact model."""
    pooling_mode(source)  # refuse an unsupported model before any work
    name = source.name if source.name != "model" else source.parent.name
    final = cache_dir() / f"{name}-{export_key(source)}"
    if (final / "export.json").is_file():
        return final
    try:
        _export(source, final)
    except OSError as e:  # a read-only or full cache: say where, and the ways out
        raise ModelError(f"cannot write the ONNX export of the embedder under {final.parent}: {e}; set RAGQA_CACHE_DIR "
                         "to a writable folder, or RAGQA_EMBED_BACKEND=torch") from None
    except ModelError:
        raise
    except Exception as e:  # the exporter or the quantizer failed on this model
        raise ModelError(f"cannot export {source} to ONNX: {e}; RAGQA_EMBED_BACKEND=torch embeds it with torch") from None
    log.info("exported %s to ONNX in %s", source, final)
    return final


def _export(source: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(final.parent)
    work = Path(tempfile.mkdtemp(dir=final.parent, prefix=".export-"))
    try:
        started = time.perf_counter()
        inputs = _export_float(source, work / FLOAT_FILE)
        _quantize(work / FLOAT_FILE, work / INT8_FILE)
        (work / "export.json").write_text(json.dumps({
            "source": str(source), "recipe": RECIPE, "inputs": inputs,
            "seconds": round(time.perf_counter() - started, 2)}, indent=2) + "\n", encoding="utf-8")
        try:
            os.rename(work, final)  # whole, or not at all
        except OSError:
            if not (final / "export.json").is_file():  # not merely another process that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _remove_stale_parts(folder: Path, older_than_s: float = 3600) -> None:
    """Leftovers of an export a crash interrupted (never one still running: an hour old)."""
    for part in folder.glob(".export-*"):
        try:
            if time.time() - part.stat().st_mtime > older_than_s:
                shutil.rmtree(part, ignore_errors=True)
        except OSError:
            pass


def _export_float(source: Path, out: Path) -> list[str]:
    """The transformer to ONNX (eager attention, which ONNX Runtime's optimizer recognises),
    then its BERT fusions (Attention, EmbedLayerNormalization, SkipLayerNormalization,
    BiasGelu) where the architecture has them; the input names it takes."""
    import torch

    from .embed import _load_model

    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    with _quiet():
        st = _load_model(str(source), threads=os.cpu_count() or 1, attn_implementation="eager")
        transformer = st[0].auto_model.eval()
        sample = st.tokenizer(["an example", "a second, longer example sentence"], padding=True, return_tensors="pt")
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

        class Encoder(torch.nn.Module):
            def __init__(self, model):
                super().__init__()
                self.model = model

            def forward(self, *args):
                return self.model(**dict(zip(names, args))).last_hidden_state

        axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
        raw = out.with_name("raw.onnx")
        with torch.no_grad():
            torch.onnx.export(Encoder(transformer), tuple(sample[n] for n in names), str(raw), input_names=names,
                              output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)
        if config.get("model_type") in FUSED_TYPES:
            from onnxruntime.transformers import optimizer

            fused = optimizer.optimize_model(str(raw), model_type="bert", num_heads=int(config["num_attention_heads"]),
                                             hidden_size=int(config["hidden_size"]))
            fused.save_model_to_file(str(out))
            raw.unlink()
        else:
            raw.rename(out)
    return names


def _quantize(src: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


@contextlib.contextmanager
def _quiet():
    """The exporter's tracer warnings and the quantizer's advice go to the log, not the terminal."""
    root = logging.getLogger()
    level = root.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root.setLevel(logging.ERROR)
        try:
            yield
        finally:
            root.setLevel(level)


class OnnxEmbedder:
    """The Embedder protocol (ragqa.embedding) on ONNX Runtime; `quantized` picks int8."""

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
        self._tokenizer = None
        self._counter = None
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

    def session(self, bulk: bool):
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

    def _tokenizers(self):
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
