"""Cold start to first scores: ``emo3d-run --json "..."`` as a fresh process (warm file cache) vs the
sentence-transformers + torch head path doing the same job.

    python -m benchmarks.cold_start [--quick] [--model DIR] [--runs N]

Each command runs once untimed (fills the file cache and builds the default model if needed), then
``--runs`` times; the time is process start -> the JSON scores on stdout (the process exits right
after). Last line: ``cold_start: ratio=R candidate=emo3d-run p50 baseline=sentence-transformers p50``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from typing import List, Optional

import numpy as np

TEXT = "furious scowl"

_BASELINE = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import torch
from sentence_transformers import SentenceTransformer
from emo3d import models
from emo3d.schema import MEDIAPIPE_NAMES, model_to_mediapipe
st = SentenceTransformer(str(models.packaged_minilm_dir()), device="cpu")
head, _ = models.load_head(sys.argv[2] if len(sys.argv) > 2 else models.default_model_dir())
with torch.inference_mode():
    emb = st.encode([sys.argv[1]], convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False)
    v = model_to_mediapipe(head(emb)["blendshapes"].numpy())[0]
print(json.dumps({n: float(x) for n, x in zip(MEDIAPIPE_NAMES, v)}), flush=True)
"""


CPU: List[float] = []   # user+sys seconds of each timed child (a load-independent view on a shared machine)


def _time(cmd: List[str], runs: int) -> List[float]:
    env = dict(os.environ, PYTHONWARNINGS="ignore", TOKENIZERS_PARALLELISM="false")
    out = []
    CPU.clear()
    for _ in range(runs):
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, env=env)
        dt = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        CPU.append(ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime)
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr.decode()[-2000:]}")
        scores = json.loads(r.stdout.decode().splitlines()[0])
        assert len(scores) == 52
        out.append(dt)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cold_start", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--model", default="default")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--head-dir", default=None, help="torch head folder of the baseline (default: models/default)")
    args = ap.parse_args(argv)
    runs = args.runs or (5 if args.quick else 15)
    exe = shutil.which("emo3d-run")
    cand_cmd = ([exe] if exe else [sys.executable, "-m", "runtime.cli"]) + ["--json", "-q", "--model", args.model, TEXT]
    _time(cand_cmd, 1)                                       # warm the file cache / build the default
    cand = np.asarray(_time(cand_cmd, runs)) * 1e3
    ccpu = np.asarray(CPU) * 1e3
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"emo3d-run --json      p50 {np.percentile(cand, 50):7.1f} ms  p90 {np.percentile(cand, 90):7.1f} ms  "
          f"min {cand.min():7.1f} ms  cpu p50 {np.percentile(ccpu, 50):7.1f} ms  ({runs} runs)")
    # where the time goes: interpreter + imports alone
    imp = np.asarray(_time([sys.executable, "-c", "import runtime.cli, runtime.engine, onnxruntime, tokenizers;"
                            "print('{' + ','.join(f'\"{i}\":0' for i in range(52)) + '}')"], max(3, runs // 3))) * 1e3
    print(f"  of which python + imports p50 {np.percentile(imp, 50):7.1f} ms  cpu p50 {np.percentile(CPU, 50) * 1e3:7.1f} ms")
    if args.no_baseline:
        print(f"cold_start: ratio=n/a candidate={np.percentile(cand, 50):.0f}ms baseline=none")
        return 0
    base_cmd = [sys.executable, "-c", _BASELINE, TEXT] + ([args.head_dir] if args.head_dir else [])
    _time(base_cmd, 1)
    base = np.asarray(_time(base_cmd, max(3, runs // 3))) * 1e3
    bcpu = np.asarray(CPU) * 1e3
    print(f"sentence-transformers p50 {np.percentile(base, 50):7.1f} ms  p90 {np.percentile(base, 90):7.1f} ms  "
          f"cpu p50 {np.percentile(bcpu, 50):7.1f} ms")
    c50, b50 = float(np.percentile(cand, 50)), float(np.percentile(base, 50))
    print(f"cold_start: ratio={b50 / c50:.2f}x candidate=emo3d-run --json {c50:.0f}ms (cpu {np.percentile(ccpu, 50):.0f}ms) "
          f"baseline=sentence-transformers {b50:.0f}ms (cpu {np.percentile(bcpu, 50):.0f}ms) (target <= 500 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
