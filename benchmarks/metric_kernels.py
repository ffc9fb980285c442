"""Benchmark: Emo3D top-k + KL over N images × M prompts (random unit embeddings, random
distributions). Candidate: eval.kernels (BLAS similarity blocks → Numba top-k → Numba KL, official
definition). Baselines: a re-implementation of the official metric.py per-image loop (torch
softmax(100·cos) → topk → block-normalised KL per image) and a vectorised numpy version.
Results are checked to agree before timing is reported. The official loop is linear in the
number of images; without --quick it is timed on the first 2,000 images and scaled (--baseline-n).

    python -m benchmarks.metric_kernels [--quick] [--n 10000] [--m 10000] [--k 10]
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def _data(n, m, d, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.normal(size=(n, d)).astype(np.float32)
    txt = rng.normal(size=(m, d)).astype(np.float32)
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    txt /= np.linalg.norm(txt, axis=1, keepdims=True)
    emo = rng.dirichlet(np.full(8, 0.5), size=m).astype(np.float32)
    return img, txt, emo


def official_loop(img, txt, emo, k, eps=0.01, n_images=None):
    """The official ``Emo3D_Metric.calculate`` loop, image features given instead of encoded:
    per image it re-normalises the image and ALL text features (as ``classify_image`` does),
    softmax(100·cos) → topk, looks φ and the k retrieved rows up in the bank DataFrame
    (``iloc``), normalises the k rows as one block and sums KL (float32, ε on the block)."""
    import pandas as pd
    import torch
    df = pd.DataFrame(emo, columns=[f"e{i}" for i in range(emo.shape[1])])
    df.insert(0, "text", [f"prompt {i}" for i in range(len(df))])
    t_img = torch.from_numpy(img)
    t_txt = torch.from_numpy(txt)

    def dist(index):
        e = df.iloc[index, 1:9].to_numpy().astype(float)
        return e / np.sum(e)

    def kl(a, b):
        a = np.asarray(a, dtype=np.float32)
        b = np.asarray(b, dtype=np.float32) + eps
        return np.sum(np.where(a != 0, a * np.log(a / b), 0))

    kl_sum, hits = 0.0, 0
    n = img.shape[0] if n_images is None else n_images
    with torch.no_grad():
        for i in range(n):
            image_features = t_img[i:i + 1].clone()
            image_features /= image_features.norm(dim=-1, keepdim=True)
            text_features = t_txt / t_txt.norm(dim=-1, keepdim=True)
            similarity = (100.0 * image_features @ text_features.T).softmax(dim=-1)
            _, indices = similarity[0].topk(k)
            indices = indices.tolist()
            hits += i in indices
            kl_sum += float(kl(dist(i), dist(indices)))
    return kl_sum, hits / n


def numpy_vectorised(img, txt, emo, k, eps=0.01, block=1024):
    kl_sum, hits = 0.0, 0
    for b0 in range(0, img.shape[0], block):
        sim = img[b0:b0 + block] @ txt.T
        part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        rows = np.arange(b0, b0 + part.shape[0])
        hits += int(np.any(part == rows[:, None], axis=1).sum())
        phi = emo[rows].astype(np.float64)
        phi /= phi.sum(axis=1, keepdims=True)
        blk = emo[part].astype(np.float64)
        blk = blk / blk.sum(axis=(1, 2), keepdims=True) + eps
        p = phi[:, None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            kl_sum += float(np.where(p != 0, p * np.log(p / blk), 0.0).sum())
    return kl_sum, hits / img.shape[0]


def candidate(img, txt, emo, k, eps=0.01):
    from eval import kernels
    idx, _ = kernels.topk_similar(img, txt, k, normalize=False)
    emo64 = emo.astype(np.float64)
    phi = emo64[:len(idx)] / emo64[:len(idx)].sum(axis=1, keepdims=True)
    kl = kernels.kl_official(phi, emo64, idx, eps)
    hits = np.any(idx == np.arange(len(idx))[:, None], axis=1)
    return kl, hits


def _time(fn, *a, repeat=1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*a)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 × 2,000 instead of 10,000 × 10,000")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--m", type=int, default=None)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--baseline-n", type=int, default=None,
                    help="time the official loop on the first N images and scale linearly "
                         "(default: all with --quick, 2,000 otherwise)")
    args = ap.parse_args(argv)
    n = args.n or (2000 if args.quick else 10000)
    m = args.m or (2000 if args.quick else 10000)
    nb = min(n, args.baseline_n or (n if args.quick else 2000))
    img, txt, emo = _data(n, m, args.d)
    small = _data(64, 128, 8, seed=1)
    candidate(*small, 5)                      # JIT warm-up (cached after the first run)
    t_c, (kl_c, hit_c) = _time(candidate, img, txt, emo, args.k, repeat=3)
    t_v, (kl_v, r_v) = _time(numpy_vectorised, img, txt, emo, args.k)
    t_o, (kl_o, r_o) = _time(official_loop, img, txt, emo, args.k, 0.01, nb)
    t_o_full = t_o * n / nb                   # the loop is linear in the number of images
    checks = (("numpy", kl_v, r_v, float(kl_c.sum()), float(hit_c.mean())),
              ("official", kl_o, r_o, float(kl_c[:nb].sum()), float(hit_c[:nb].mean())))
    for name, kl, r, kl_ref, r_ref in checks:
        if not (np.isclose(kl, kl_ref, rtol=1e-4) and abs(r - r_ref) < 1e-9):
            raise SystemExit(f"mismatch: candidate KL {kl_ref} R {r_ref} vs {name} KL {kl} R {r}")
    print(f"n_images={n} n_prompts={m} dim={args.d} k={args.k}  mean KL/img={kl_c.mean():.4f} "
          f"R@{args.k}={hit_c.mean():.4f}  (all three agree)")
    scaled = f" (timed on {nb} images, x{n / nb:.1f})" if nb < n else ""
    print(f"numba {t_c:.3f}s  numpy-vectorised {t_v:.3f}s ({t_v / t_c:.1f}x)  "
          f"official-loop {t_o_full:.3f}s{scaled} ({t_o_full / t_c:.1f}x)")
    print(f"metric_kernels: ratio={t_o_full / t_c:.2f}x candidate={t_c:.3f}s "
          f"baseline={t_o_full:.3f}s numpy_ratio={t_v / t_c:.2f}x numpy={t_v:.3f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
