"""The calibration's fidelity report (the floors: neutral readings, per-shape rise, sides, MAE over
random sparse vectors, the FER reading of the emotion faces) and the contact sheet's PNG bytes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict

import numpy as np

from emo3d import schema

from .calibrate_probe import CalibrateOptions, Probe, emotion_vectors, fer_reading, mirror, random_sparse, unit_batch

__all__ = ["FidelityReport", "fidelity", "png_bytes", "SHEET_MAX_BYTES"]

@dataclass
class FidelityReport:
    neutral_scores: Dict[str, float]
    neutral_max: float
    rise: Dict[str, float]
    n_rise_ge_025: int
    sides: Dict[str, Dict[str, float]]          # name -> {own, other}
    sides_ok: int
    sides_total: int
    mae_random: float
    n_random: int
    detected_random: int
    fer: Dict[str, object] = field(default_factory=dict)     # the emotion faces' FER-2013 reading
    floors: Dict[str, bool] = field(default_factory=dict)


def fidelity(cal: dict, opts: CalibrateOptions, log=print):
    """Measure the issue-3 floors with ``cal``; returns (FidelityReport, contact-sheet images, labels)."""
    probe = Probe(opts.texture, opts.size)
    try:
        W = unit_batch()
        imgs = probe.images(cal, W)
        S = probe.scores(imgs)
        base = S[0]
        neutral = {n: round(float(base[i]), 3) for i, n in enumerate(schema.MEDIAPIPE_NAMES) if i}
        rise, sides = {}, {}
        for n in schema.MODEL_NAMES:
            i = schema.MEDIAPIPE_INDEX[n]
            rise[n] = round(float(S[i, i] - base[i]), 3) if not np.isnan(S[i, i]) else float("nan")
            m = mirror(n)
            if m:
                sides[n] = {"own": float(f"{S[i, i]:.3g}"), "other": float(f"{S[i, schema.MEDIAPIPE_INDEX[m]]:.3g}")}
        Wr = random_sparse(opts.n_random, opts.seed)
        Sr = probe.scores(probe.images(cal, Wr))
        ok = ~np.isnan(Sr).any(axis=1)
        mae = float(np.abs(Sr[ok, 1:] - Wr[ok, 1:]).mean()) if ok.any() else float("nan")
        emo = emotion_vectors()
        emo_imgs = probe.images(cal, np.stack(list(emo.values())))
        fx = fer_reading(dict(zip(emo.keys(), emo_imgs)))
    finally:
        probe.close()
    n_rise = int(sum(1 for v in rise.values() if v >= 0.25))
    s_ok = int(sum(1 for v in sides.values() if v["own"] > v["other"]))
    nmax = float(np.nanmax(base[1:]))
    rep = FidelityReport(neutral_scores=neutral, neutral_max=round(nmax, 3), rise=rise, n_rise_ge_025=n_rise,
                         sides=sides, sides_ok=s_ok, sides_total=len(sides), mae_random=round(mae, 4),
                         n_random=opts.n_random, detected_random=int(ok.sum()), fer=fx)
    rep.floors = {"neutral_all_le_0.25": nmax <= 0.25, "rise_ge_0.25_for_42": n_rise >= 42,
                  "sides_all_correct": s_ok == len(sides), "mae_le_0.15": mae <= 0.15}
    labels = ["neutral"] + [f"{n}\n{S[i, i]:.2f}" for i, n in enumerate(schema.MEDIAPIPE_NAMES) if i]
    sheet_imgs = list(imgs) + list(emo_imgs)
    labels += [f"{e}\nfer:{(fx.get(e) or {}).get('top', '-') if isinstance(fx.get(e), dict) else '-'}"
               for e in emo]
    return rep, sheet_imgs, labels


SHEET_MAX_BYTES = 600_000      # the contact sheet ships in the repo (docs/avatar)


def png_bytes(rgb: np.ndarray, max_bytes: int = SHEET_MAX_BYTES) -> bytes:
    """PNG of ``rgb`` within ``max_bytes``: full colour, else a 256-colour palette, else downscaled."""
    import io
    from PIL import Image
    im = Image.fromarray(rgb)
    for _ in range(8):
        for mode in ("rgb", "palette"):
            buf = io.BytesIO()
            (im if mode == "rgb" else im.quantize(256, method=Image.Quantize.MEDIANCUT)).save(
                buf, format="PNG", optimize=True)
            if buf.tell() <= max_bytes:
                return buf.getvalue()
        im = im.resize((max(1, int(im.width * 0.8)), max(1, int(im.height * 0.8))), Image.LANCZOS)
    return buf.getvalue()
