"""Exporting a sentence-transformers model to ONNX (float32, and dynamically quantized int8),
once per model, recipe and runtime; the embedder that runs it is ragqa.models.onnx_embed.

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
from pathlib import Path

from ..errors import ModelError
from .paths import cache_root

log = logging.getLogger(__name__)

RECIPE = ("ragqa-onnx-2: torch.onnx.export (TorchScript exporter, opset 17, eager attention), ONNX Runtime BERT fusions; "
          "int8: quantize_dynamic QInt8 per channel")
FUSED_TYPES = {"bert", "roberta", "xlm-roberta", "distilbert", "electra"}  # what ONNX Runtime's BERT optimizer fuses
FLOAT_FILE, INT8_FILE = "model.onnx", "model_int8.onnx"
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

    from .torch_embed import load_sentence_transformer

    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    with _quiet():
        st = load_sentence_transformer(str(source), threads=os.cpu_count() or 1, attn_implementation="eager")
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
