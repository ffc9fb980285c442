"""Dynamic int8 (per-channel) quantisation with ``onnxruntime.quantization`` and its report against
fp32 on a fixed set of 200 varied prompts. int8 is marked *recommended* only where its worst case is close:
the score MAE is <= 0.01, the 99th percentile of |int8 - fp32| over all scores is <= 0.05
(:data:`P99_LIMIT`) and, for models with emotions, the emotion argmax agrees on >= 99 % of the prompts
(:data:`ARGMAX_AGREEMENT`). Otherwise fp32 stays the default and the report says which test failed."""
from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from emo3d.errors import InvalidInputError
from emo3d.io import atomic_path

from .configs import INT8_MAE_LIMIT

P99_LIMIT = 0.05            # p99 of |int8 - fp32| over every score of the fixed prompt set
ARGMAX_AGREEMENT = 0.99     # share of prompts whose emotion argmax is the same

_INTENSITY = ("", "slightly ", "very ", "extremely ", "a hint of ", "barely ", "wildly ", "quietly ")
_FEELINGS = ("angry", "furious", "happy", "joyful", "sad", "heartbroken", "surprised", "shocked", "afraid",
             "terrified", "disgusted", "contemptuous", "neutral", "calm", "confused", "smug", "bored",
             "excited", "nervous", "proud", "ashamed", "amused", "annoyed", "tired", "in love")
_FACES = ("face", "scowl", "smile", "frown", "grin", "stare", "grimace", "pout", "sneer", "expression")
_SENTENCES = (
    "furious scowl", "a wide open-mouthed laugh", "eyebrows raised in disbelief", "tears welling up",
    "a polite but fake smile", "jaw clenched, nostrils flared", "wincing at a loud noise",
    "blowing a kiss", "squinting into the bright sun", "lips pressed tightly together",
    "the moment you realise you forgot your keys", "trying not to laugh at a funeral",
    "she looks at the spider with pure horror", "he smirks, knowing he won the argument",
    "a sleepy yawn", "puffing out the cheeks", "one eyebrow raised skeptically", "cheek to cheek grin",
    "wrinkled nose at a bad smell", "looking up, lost in thought")


def varied_prompts(n: int = 200, seed: int = 0) -> List[str]:
    """``n`` deterministic, varied emotion prompts (short and long, single words and sentences)."""
    if n < 1:
        raise InvalidInputError(f"need n >= 1 prompts, got {n}")
    combos = [f"{i}{f} {face}".strip() for i, f, face in itertools.product(_INTENSITY, _FEELINGS, _FACES)]
    rng = np.random.default_rng(seed)
    picked = [combos[j] for j in rng.permutation(len(combos))]
    out = list(_SENTENCES) + list(_FEELINGS) + picked
    return out[:n]


@dataclass
class QuantReport:
    """int8 vs fp32 over ``n_prompts`` prompts, per output; ``recommended``: MAE, p99 |diff| and emotion argmax
    agreement all within their limits (``failed`` names the ones that are not)."""

    n_prompts: int
    max_abs_diff: Dict[str, float]
    mae: Dict[str, float]
    cosine_mean: Dict[str, float]
    cosine_min: Dict[str, float]
    mae_limit: float
    recommended: bool
    size_fp32_mb: float
    size_int8_mb: float
    scores: Optional[Dict[str, np.ndarray]] = field(default=None, repr=False, compare=False)  # fp32/int8
    strategy: str = "all"
    p99_abs_diff: Dict[str, float] = field(default_factory=dict)
    emotion_agreement: Optional[float] = None
    failed: List[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("scores", None)
        return d

    def summary(self) -> str:
        s = self.mae.get("blendshapes", max(self.mae.values()))
        return (f"int8 vs fp32 on {self.n_prompts} prompts: score MAE {s:.4f}, max |diff| "
                f"{self.max_abs_diff.get('blendshapes', 0.0):.4f}, cosine mean "
                f"{self.cosine_mean.get('blendshapes', 0.0):.5f} min {self.cosine_min.get('blendshapes', 0.0):.5f}; "
                f"p99 |diff| {self.p99_abs_diff.get('blendshapes', 0.0):.4f}"
                + (f", emotion argmax agreement {self.emotion_agreement:.3f}" if self.emotion_agreement is not None
                   else "") +
                f"; {self.size_fp32_mb:.1f} MB -> {self.size_int8_mb:.1f} MB ({self.strategy}); "
                f"{'recommended' if self.recommended else 'NOT recommended: ' + ', '.join(self.failed)} "
                f"(limits: MAE {self.mae_limit}, p99 {P99_LIMIT}, agreement {ARGMAX_AGREEMENT})")


STRATEGIES = ("all", "fp32_ffn_down", "fp32_ffn")


def quantize_int8(fp32_path: str | Path, int8_path: str | Path, *, strategy: str = "all") -> Path:
    """Dynamic, per-channel int8 weights (MatMul/Gather); activations stay float. Written atomically.

    ``strategy``: ``all``; ``fp32_ffn_down`` keeps MatMuls that narrow the width (FFN down-projections,
    where BERT's activation outliers live) in fp32; ``fp32_ffn`` keeps every non-square MatMul in fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if strategy not in STRATEGIES:
        raise InvalidInputError(f"int8 strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    exclude: List[str] = []
    if strategy != "all":
        model = onnx.load(str(fp32_path))
        shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}
        for n in model.graph.node:
            dims = shapes.get(n.input[1]) if n.op_type == "MatMul" and len(n.input) > 1 else None
            if dims is None or len(dims) != 2 or dims[0] == dims[1]:
                continue
            if strategy == "fp32_ffn" or dims[0] > dims[1]:
                exclude.append(n.name)
    with atomic_path(int8_path) as tmp, _quiet_root_logger():
        quantize_dynamic(str(fp32_path), str(tmp), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Gather"], nodes_to_exclude=exclude)
    return int8_path


def quantize_best(fp32_path: str | Path, int8_path: str | Path,
                  encode: Callable[[Sequence[str]], Dict[str, np.ndarray]], *,
                  prompts: Optional[Sequence[str]] = None, mae_limit: float = INT8_MAE_LIMIT) -> "QuantReport":
    """Try :data:`STRATEGIES` in order (smallest/fastest first) and keep the first that is recommended (MAE,
    p99 |diff| and emotion argmax agreement within limits); where none is, the last one's report says
    "NOT recommended" and why."""
    report = None
    for strategy in STRATEGIES:
        quantize_int8(fp32_path, int8_path, strategy=strategy)
        report = compare_int8(fp32_path, int8_path, encode, prompts=prompts, mae_limit=mae_limit)
        report.strategy = strategy
        if report.recommended:
            break
    return report


class _quiet_root_logger:
    """onnxruntime.quantization warns on the root logger ("consider pre-processing"); silence it here."""

    def __enter__(self):
        import logging
        self._prev = logging.root.manager.disable
        logging.disable(logging.WARNING)

    def __exit__(self, *exc):
        import logging
        logging.disable(self._prev)


def compare_int8(fp32_path: str | Path, int8_path: str | Path, encode: Callable[[Sequence[str]], Dict[str, np.ndarray]],
                 *, prompts: Optional[Sequence[str]] = None, batch_size: int = 25,
                 mae_limit: float = INT8_MAE_LIMIT) -> QuantReport:
    """Run both graphs on ``prompts`` (default: :func:`varied_prompts`) tokenised by ``encode`` and report."""
    import onnxruntime as ort

    prompts = list(prompts) if prompts is not None else varied_prompts(200)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sessions = [ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"]) for p in (fp32_path, int8_path)]
    names = [o.name for o in sessions[0].get_outputs()]
    outs: List[Dict[str, List[np.ndarray]]] = [{n: [] for n in names}, {n: [] for n in names}]
    inputs = {i.name for i in sessions[0].get_inputs()}
    for start in range(0, len(prompts), batch_size):
        feeds = {k: v for k, v in encode(prompts[start:start + batch_size]).items() if k in inputs}
        for sess, acc in zip(sessions, outs):
            for n, v in zip(names, sess.run(names, feeds)):
                acc[n].append(np.asarray(v, dtype=np.float64))
    rep: Dict[str, Dict[str, float]] = {"max": {}, "mae": {}, "cmean": {}, "cmin": {}, "p99": {}}
    for n in names:
        a, b = np.concatenate(outs[0][n]), np.concatenate(outs[1][n])
        d = np.abs(a - b)
        cos = (a * b).sum(1) / np.clip(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12, None)
        rep["max"][n], rep["mae"][n], rep["p99"][n] = float(d.max()), float(d.mean()), float(np.percentile(d, 99))
        rep["cmean"][n], rep["cmin"][n] = float(cos.mean()), float(cos.min())
    key = "blendshapes" if "blendshapes" in names else names[0]
    scores = {"fp32": np.concatenate(outs[0][key]), "int8": np.concatenate(outs[1][key])}
    agreement = None
    if "emotions" in names:
        agreement = float(np.mean(np.concatenate(outs[0]["emotions"]).argmax(1)
                                  == np.concatenate(outs[1]["emotions"]).argmax(1)))
    failed = ([f"MAE {rep['mae'][key]:.4f} > {mae_limit}"] if rep["mae"][key] > mae_limit else []) + \
             ([f"p99 |diff| {rep['p99'][key]:.4f} > {P99_LIMIT}"] if rep["p99"][key] > P99_LIMIT else []) + \
             ([f"emotion argmax agreement {agreement:.3f} < {ARGMAX_AGREEMENT}"]
              if agreement is not None and agreement < ARGMAX_AGREEMENT else [])
    return QuantReport(scores=scores, n_prompts=len(prompts), max_abs_diff=rep["max"], mae=rep["mae"], cosine_mean=rep["cmean"],
                       cosine_min=rep["cmin"], mae_limit=mae_limit, recommended=not failed,
                       size_fp32_mb=_size_mb(fp32_path), size_int8_mb=_size_mb(int8_path),
                       p99_abs_diff=rep["p99"], emotion_agreement=agreement, failed=failed)


def _size_mb(path: str | Path) -> float:
    """Graph file plus its external weights (``<name>.data``) in MB."""
    path = Path(path)
    data = path.with_name(path.name + ".data")
    return (path.stat().st_size + (data.stat().st_size if data.is_file() else 0)) / 1e6


def tokenizer_encoder(tokenizer_json: str | Path, *, max_length: int = 128) -> Callable[[Sequence[str]], Dict[str, np.ndarray]]:
    """A batch encoder from a ``tokenizer.json`` (``tokenizers``, no torch): pads to the longest row."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.enable_truncation(max_length=max_length)
    pad_id = tok.padding["pad_id"] if tok.padding else 0
    pad_tok = tok.padding["pad_token"] if tok.padding else "[PAD]"
    tok.enable_padding(pad_id=pad_id, pad_token=pad_tok)   # pad to the batch's longest

    def encode(texts: Sequence[str]) -> Dict[str, np.ndarray]:
        enc = tok.encode_batch(list(texts))
        return {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)}
    return encode
