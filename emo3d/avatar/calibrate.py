"""Calibrate the default avatar against MediaPipe: ``python -m emo3d.avatar.calibrate --out DIR``.

Full path on every probe: rig -> 256x256 render -> FaceLandmarker -> 52 scores.

1. Neutral bias: where the rest face reads above ``neutral_max`` (0.15) (e.g. eyeLookDown), add a little
   of the antagonist shape (eyeLookUp) to the neutral mesh; a few bounded rounds.
2. Gains: per shape, a bounded multiplicative/bisection search on its gain so that weight 1 reads
   about ``--target`` (all 51 shapes are probed together as one batch per round).
   With ``--refine``: then landmark-space corrections of still-weak shapes through MediaPipe's
   blendshape model (``avatar.refine``), each kept only if the full path improves, and a few
   more gain rounds.
3. Fidelity report (the floors of issue 3): neutral scores, per-shape rise 0 -> 1, left/right
   sides, the MAE over random sparse expression vectors, and the FER-2013 reading (``avatar.fer``, the
   one emotion reader) of the eight emotion prototype faces when its model can be had.

Writes ``avatar/data/calibration.json`` (with ``--write``) and ``DIR/calibration_report.json`` +
``DIR/contact_sheet.png``. Use ``--report-only`` to measure the shipped calibration.

Measurement notes: every shape's rise is measured alone (weight 0 -> 1, all others 0), mouthClose
included (tried with jawOpen at 1 underneath as ARKit defines it: MediaPipe reads <= 0.04 either way,
it only reads less jawOpen). Shapes MediaPipe's blendshape model cannot produce from any 2-D landmark
motion (checked by ascent on its landmark-only model, ``avatar.refine.ProxyScorer``): cheekPuff,
cheekSquint L/R, noseSneer L/R, jawForward (and mouthClose from a closed jaw); their L/R "sides"
compare readings below 1e-6. Gains up to ``--gain-max`` (4.0); the shipped gains of the mouth
shapes were finished by hand from full-path gain sweeps (readings are not monotonic in the gain).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from emo3d import facs, schema
from emo3d.errors import AssetError, InvalidInputError
from emo3d.io import atomic_path, atomic_write_json

from .fer import FerReader

__all__ = ["CalibrateOptions", "FidelityReport", "calibrate", "fidelity", "fer_reading", "main"]

ANTAGONIST = {   # neutral reading too high -> bias toward this shape (both L/R spelled out below)
    "eyeLookDown{S}": "eyeLookUp{S}", "eyeSquint{S}": "eyeWide{S}", "eyeBlink{S}": "eyeWide{S}",
    "browOuterUp{S}": "browDown{S}", "browDown{S}": "browOuterUp{S}", "eyeLookUp{S}": "eyeLookDown{S}",
    "mouthSmile{S}": "mouthFrown{S}", "mouthFrown{S}": "mouthSmile{S}", "eyeWide{S}": "eyeSquint{S}",
}
ANTAGONIST_BOTH = {"browInnerUp": ("browDownLeft", "browDownRight"), "jawOpen": ("mouthClose",),
                   "mouthPucker": ("mouthStretchLeft", "mouthStretchRight")}

# the EMFACS prototypes of the basic emotions by shape name (owned by emo3d.facs)
EMOTION_PROTOTYPES: Dict[str, Dict[str, float]] = {
    e: {n: float(v) for n, v in zip(schema.MEDIAPIPE_NAMES, facs.prototype(e)) if v > 0} for e in schema.EMOTIONS}


@dataclass
class CalibrateOptions:
    out: Path
    texture: str = "neutral"
    size: int = 256
    target: float = 0.85
    rounds: int = 7
    bias_rounds: int = 4
    neutral_max: float = 0.15
    gain_min: float = 0.3
    gain_max: float = 4.0
    n_random: int = 200
    seed: int = 0
    write: bool = False
    report_only: bool = False
    refine: bool = False
    refine_below: float = 0.4
    refine_passes: int = 2
    refine_amplify: float = 1.5

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if not (64 <= self.size <= 1024):
            raise InvalidInputError(f"--size must be in 64..1024, got {self.size}")
        if not (0.2 <= self.target <= 1.0):
            raise InvalidInputError(f"--target must be in 0.2..1, got {self.target}")
        if self.rounds < 0 or self.bias_rounds < 0 or self.n_random < 1:
            raise InvalidInputError("--rounds/--bias-rounds must be >= 0 and --n-random >= 1")
        if not (0 < self.gain_min < self.gain_max):
            raise InvalidInputError("need 0 < gain_min < gain_max")


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


# --- helpers -----------------------------------------------------------------------------------
class _Probe:
    """Render + score with the current calibration."""

    def __init__(self, texture: str, size: int):
        from .scorer import FaceScorer
        self.texture, self.size = texture, size
        self.scorer = FaceScorer("image")

    def rig(self, cal: dict):
        from .default import build_default_rig
        return build_default_rig(self.texture, calibration=cal)

    def images(self, cal: dict, W: np.ndarray) -> np.ndarray:
        from native.render import Renderer, RenderOptions
        r = Renderer(self.rig(cal), RenderOptions(width=self.size, height=self.size))
        out = []
        for i in range(0, len(W), 32):
            imgs = r.render(W[i:i + 32])
            out.append(imgs if imgs.ndim == 4 else imgs[None])
        return np.concatenate(out)

    def scores(self, imgs: np.ndarray) -> np.ndarray:
        out = np.full((len(imgs), schema.N_MEDIAPIPE), np.nan, np.float32)
        for i, im in enumerate(imgs):
            s = self.scorer.scores(im)
            if s is not None:
                out[i] = s
        return out

    def close(self):
        self.scorer.close()


def _unit_batch() -> np.ndarray:
    W = np.zeros((schema.N_MEDIAPIPE, schema.N_MEDIAPIPE), np.float32)
    W[np.arange(1, schema.N_MEDIAPIPE), np.arange(1, schema.N_MEDIAPIPE)] = 1.0
    return W                      # row 0 = neutral, row i = shape i at 1.0


def _mirror(name: str) -> Optional[str]:
    if name.endswith("Left"):
        return name[:-4] + "Right"
    if name.endswith("Right"):
        return name[:-5] + "Left"
    return None


def _antagonists() -> Dict[str, tuple]:
    out: Dict[str, tuple] = {k: v for k, v in ANTAGONIST_BOTH.items()}
    for k, v in ANTAGONIST.items():
        for S in ("Left", "Right"):
            out[k.format(S=S)] = (v.format(S=S),)
    return out


def random_sparse(n: int, seed: int = 0) -> np.ndarray:
    """[n,52] sparse expression vectors: 1-4 random shapes each, weights uniform in [0.2, 1]."""
    rng = np.random.default_rng(seed)
    W = np.zeros((n, schema.N_MEDIAPIPE), np.float32)
    for i in range(n):
        k = rng.integers(1, 5)
        idx = rng.choice(np.arange(1, schema.N_MEDIAPIPE), size=k, replace=False)
        W[i, idx] = rng.uniform(0.2, 1.0, size=k)
    return W


def _emotion_vectors() -> Dict[str, np.ndarray]:
    return {e: facs.prototype(e) for e in schema.EMOTIONS}


# --- what the emotion faces read as ----------------------------------------------------------
def fer_reading(images: Dict[str, np.ndarray]) -> Dict[str, object]:
    """{label: {top, FER class: p} | None (no face found)}, or {"error": why} when the FER model cannot be
    had here (``avatar.fer.FerReader``)."""
    try:
        reader = FerReader()
    except AssetError as e:   # reported, not fatal
        return {"error": f"{type(e).__name__}: {e}"}
    out: Dict[str, object] = {}
    for k, im in images.items():
        r = reader.read(im)
        out[k] = None if r is None else {"top": max(r, key=r.get), **{c: round(v, 3) for c, v in r.items()}}
    return out


# --- the procedure -----------------------------------------------------------------------------
def _project(rig, verts: np.ndarray, size: int) -> np.ndarray:
    """Rig-space vertices [V,3] -> pixel positions [V,2] with the Renderer's camera (no pose)."""
    from native.render import RenderOptions, framing
    o = RenderOptions(width=size, height=size)
    c, dist, t = framing(rig.vertices, o)
    p = verts.astype(np.float64) - np.asarray(c, np.float64)
    z = dist - p[:, 2]
    return np.stack([(p[:, 0] / (z * t) + 1) * 0.5 * size, (1 - p[:, 1] / (z * t)) * 0.5 * size], 1), z, t


def _refine(probe: "_Probe", cal: dict, opts: CalibrateOptions, log=print) -> None:
    """Landmark-space refinement (avatar.refine) of shapes whose full-path reading is weak."""
    from .mesh import build_head
    from .refine import BLENDSHAPE_SUBSET, MESH_SUBSET, ProxyScorer, refine_shape
    W = _unit_batch()
    S = probe.scores(probe.images(cal, W))
    if np.isnan(S[0]).any():
        log("refine: no face on the neutral render; skipped")
        return
    weak = [n for n in schema.MODEL_NAMES
            if not np.isnan(S[schema.MEDIAPIPE_INDEX[n]]).any()
            and S[schema.MEDIAPIPE_INDEX[n], schema.MEDIAPIPE_INDEX[n]] < opts.refine_below]
    log(f"refine: {len(weak)} weak shapes: {', '.join(weak)}")
    rig = probe.rig(cal)
    probe.scores(probe.images(cal, W[:1]))
    L0 = probe.scorer.last_landmarks[:, :2] * opts.size            # [478,2] pixels
    base_px = L0[list(BLENDSHAPE_SUBSET)]
    head = build_head()
    proxy = ProxyScorer()
    P0, z0, t = _project(rig, rig.vertices, opts.size)
    sub = np.array(BLENDSHAPE_SUBSET)
    mesh_pos = np.nonzero(sub < 468)[0]
    # iris landmarks follow the eyeball front poles (468.. is the eye nearer landmark 33)
    right_first = abs(L0[468, 0] - L0[33, 0]) < abs(L0[468, 0] - L0[263, 0])
    pole = {"right": head.parts["eye_right"][0], "left": head.parts["eye_left"][0]}
    iris_sides = (("right", range(468, 473)), ("left", range(473, 478))) if right_first else \
        (("left", range(468, 473)), ("right", range(473, 478)))
    for name in weak:
        w = np.zeros(schema.N_MEDIAPIPE, np.float32)
        w[schema.MEDIAPIPE_INDEX[name]] = 1.0
        Vd = rig.deform(w)[0]
        # start from what FaceLandmarker actually detects on the render of this shape (the proxy
        # score of those landmarks is the full-path score); fall back to the projected mesh
        detected = probe.scores(probe.images(cal, w[None]))[0]
        if not np.isnan(detected).any():
            shape_px = probe.scorer.last_landmarks[list(BLENDSHAPE_SUBSET), :2] * opts.size
        else:
            P1, _, _ = _project(rig, Vd, opts.size)
            disp = P1 - P0
            shape_px = base_px.copy()
            shape_px[mesh_pos] += disp[sub[mesh_pos]]
            for side, rng in iris_sides:
                for j in rng:
                    shape_px[list(sub).index(j)] += disp[pole[side]]
        mag = np.linalg.norm(Vd - rig.vertices, axis=1)[:head.n_face]
        if mag.max() <= 0:
            continue
        hot = np.nonzero(mag > 0.15 * mag.max())[0]
        d = np.linalg.norm(rig.vertices[MESH_SUBSET][:, None] - rig.vertices[hot][None], axis=2).min(1)
        region = np.zeros(146, bool)
        region[mesh_pos] = d < 0.8
        c = refine_shape(proxy, base_px, shape_px, name, region, log=log, amplify=opts.refine_amplify)
        if c is None:
            continue
        g = float(cal["gains"].get(name, 1.0))
        corr = {}
        for k in np.nonzero(np.abs(c).max(1) > 0.05)[0]:
            vi = int(sub[k])
            dx = c[k, 0] * 2 * z0[vi] * t / opts.size / g
            dy = -c[k, 1] * 2 * z0[vi] * t / opts.size / g
            corr[str(vi)] = [round(float(dx), 4), round(float(dy), 4)]
        old = cal["corrections"].get(name, {})
        for k, v in old.items():
            if k in corr:
                corr[k] = [round(corr[k][0] + v[0], 4), round(corr[k][1] + v[1], 4)]
            else:
                corr[k] = v
        # keep the correction only if the FULL path (render -> FaceLandmarker) improves
        i = schema.MEDIAPIPE_INDEX[name]
        m = _mirror(name)
        trial = dict(cal, corrections=dict(cal["corrections"], **{name: corr}))
        after = probe.scores(probe.images(trial, w[None]))[0]
        before = detected
        good = not np.isnan(after[i]) and (np.isnan(before[i]) or after[i] > before[i] + 0.03)
        if good and m is not None:
            good = after[i] > after[schema.MEDIAPIPE_INDEX[m]]
        log(f"refine {name}: full path {before[i]:.2f} -> {after[i]:.2f} ({'kept' if good else 'dropped'})")
        if good:
            cal["corrections"][name] = corr


def calibrate(opts: CalibrateOptions, start: Optional[dict] = None, log=print) -> dict:
    """Bounded search of neutral bias and per-shape gains; returns the calibration dict."""
    cal = {"gains": {}, "neutral_bias": {}, "corrections": {}}
    if start:
        cal = {"gains": dict(start.get("gains", {})), "neutral_bias": dict(start.get("neutral_bias", {})),
               "corrections": dict(start.get("corrections", {})), "rest_only": list(start.get("rest_only", []))}
    probe = _Probe(opts.texture, opts.size)
    try:
        anta = _antagonists()
        neutral = np.zeros((1, schema.N_MEDIAPIPE), np.float32)
        for r in range(opts.bias_rounds):
            s = probe.scores(probe.images(cal, neutral))[0]
            if np.isnan(s).any():
                log(f"bias round {r}: no face on the neutral render; stopping bias search")
                break
            high = {n: float(s[schema.MEDIAPIPE_INDEX[n]]) for n in schema.MODEL_NAMES
                    if s[schema.MEDIAPIPE_INDEX[n]] > opts.neutral_max and n in anta}
            log(f"bias round {r}: over {opts.neutral_max}: " + (", ".join(f"{k}={v:.2f}" for k, v in high.items())
                                                               or "none"))
            if not high:
                break
            for n, v in high.items():
                for a in anta[n]:
                    cal["neutral_bias"][a] = float(np.clip(cal["neutral_bias"].get(a, 0.0) + 0.8 * (v - 0.08), 0, 0.8))
        _gain_search(probe, cal, opts, opts.rounds, log)
        for p in range(opts.refine_passes if opts.refine else 0):
            log(f"refine pass {p + 1}/{opts.refine_passes}")
            _refine(probe, cal, opts, log)
            _gain_search(probe, cal, opts, max(2, opts.rounds // 2), log)
        cal["neutral_bias"] = {k: round(v, 4) for k, v in cal["neutral_bias"].items()}
        cal["meta"] = {"target": opts.target, "size": opts.size, "texture": opts.texture}
    finally:
        probe.close()
    return cal


def _gain_search(probe: "_Probe", cal: dict, opts: CalibrateOptions, rounds: int, log=print) -> None:
    """Bounded per-shape gain search (all shapes as one batch per round), from the current gains."""
    W = _unit_batch()
    lo = {n: opts.gain_min for n in schema.MODEL_NAMES}
    hi = {n: opts.gain_max for n in schema.MODEL_NAMES}
    best: Dict[str, tuple] = {}
    for r in range(rounds):
        S = probe.scores(probe.images(cal, W))
        base = S[0]
        for n in schema.MODEL_NAMES:
            i = schema.MEDIAPIPE_INDEX[n]
            g = float(cal["gains"].get(n, 1.0))
            v = S[i, i]
            if np.isnan(v):            # face lost: the shape is too strong
                hi[n] = min(hi[n], g)
                cal["gains"][n] = float(np.sqrt(lo[n] * hi[n]))
                continue
            err = abs(v - opts.target)
            # keep the gain closest to the target; a reading that does not move keeps the smaller gain
            if n not in best or err < best[n][0] - 0.01:
                best[n] = (err, g, float(v))
            if v < opts.target:
                lo[n] = max(lo[n], g)
                new = g * 1.7 if hi[n] >= opts.gain_max and g * 1.7 <= opts.gain_max else np.sqrt(g * hi[n])
            else:
                hi[n] = min(hi[n], g)
                new = np.sqrt(lo[n] * g)
            cal["gains"][n] = float(np.clip(new, opts.gain_min, opts.gain_max))
        done = sum(1 for n in schema.MODEL_NAMES if n in best and best[n][0] < 0.1)
        log(f"gain round {r + 1}/{rounds}: {done}/51 within 0.1 of target {opts.target}; "
            f"neutral max {np.nanmax(base[1:]):.2f}")
    for n, (err, g, v) in best.items():
        cal["gains"][n] = round(g, 4)


def fidelity(cal: dict, opts: CalibrateOptions, log=print):
    """Measure the issue-3 floors with ``cal``; returns (FidelityReport, contact-sheet images, labels)."""
    probe = _Probe(opts.texture, opts.size)
    try:
        W = _unit_batch()
        imgs = probe.images(cal, W)
        S = probe.scores(imgs)
        base = S[0]
        neutral = {n: round(float(base[i]), 3) for i, n in enumerate(schema.MEDIAPIPE_NAMES) if i}
        rise, sides = {}, {}
        for n in schema.MODEL_NAMES:
            i = schema.MEDIAPIPE_INDEX[n]
            rise[n] = round(float(S[i, i] - base[i]), 3) if not np.isnan(S[i, i]) else float("nan")
            m = _mirror(n)
            if m:
                sides[n] = {"own": float(f"{S[i, i]:.3g}"), "other": float(f"{S[i, schema.MEDIAPIPE_INDEX[m]]:.3g}")}
        Wr = random_sparse(opts.n_random, opts.seed)
        Sr = probe.scores(probe.images(cal, Wr))
        ok = ~np.isnan(Sr).any(axis=1)
        mae = float(np.abs(Sr[ok, 1:] - Wr[ok, 1:]).mean()) if ok.any() else float("nan")
        emo = _emotion_vectors()
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
    rep.floors = {"neutral_all_le_0.25": nmax <= 0.25, "rise_ge_0.25_for_40": n_rise >= 40,
                  "sides_all_correct": s_ok == len(sides), "mae_le_0.15": mae <= 0.15}
    labels = ["neutral"] + [f"{n}\n{S[i, i]:.2f}" for i, n in enumerate(schema.MEDIAPIPE_NAMES) if i]
    sheet_imgs = list(imgs) + list(emo_imgs)
    labels += [f"{e}\nfer:{(fx.get(e) or {}).get('top', '-') if isinstance(fx.get(e), dict) else '-'}"
               for e in emo]
    return rep, sheet_imgs, labels


SHEET_MAX_BYTES = 600_000      # the contact sheet ships in the repo (docs/avatar)


def _png_bytes(rgb: np.ndarray, max_bytes: int = SHEET_MAX_BYTES) -> bytes:
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


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emo3d.avatar.calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for calibration_report.json and contact_sheet.png")
    ap.add_argument("--texture", default="neutral")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--target", type=float, default=0.85)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--bias-rounds", type=int, default=4)
    ap.add_argument("--gain-max", type=float, default=4.0, help="upper bound of a shape's gain")
    ap.add_argument("--n-random", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--refine", action="store_true",
                    help="experimental: landmark-space refinement of weak shapes through the proxy model")
    ap.add_argument("--write", action="store_true", help="write avatar/data/calibration.json")
    ap.add_argument("--report-only", action="store_true", help="measure the shipped calibration only")
    ap.add_argument("--start", choices=("shipped", "unit"), default="shipped",
                    help="start the search from the shipped calibration or from unit gains")
    a = ap.parse_args(argv)
    try:
        opts = CalibrateOptions(out=a.out, texture=a.texture, size=a.size, target=a.target, rounds=a.rounds,
                                bias_rounds=a.bias_rounds, n_random=a.n_random, gain_max=a.gain_max,
                                seed=a.seed, write=a.write,
                                report_only=a.report_only, refine=a.refine)
    except InvalidInputError as e:
        print(f"calibrate: {e}", file=sys.stderr)
        return 2
    from .cli import contact_sheet
    from .default import CALIBRATION_PATH, load_calibration
    t0 = time.time()
    shipped = load_calibration()
    if opts.report_only:
        cal = shipped
    else:
        cal = calibrate(opts, shipped if a.start == "shipped" else None)
        if opts.write:
            atomic_write_json(CALIBRATION_PATH, cal)
            print(f"wrote {CALIBRATION_PATH}")
    rep, imgs, labels = fidelity(cal, opts)
    opts.out.mkdir(parents=True, exist_ok=True)
    report = {"calibration": cal, "fidelity": asdict(rep), "seconds": round(time.time() - t0, 1)}
    atomic_write_json(opts.out / "calibration_report.json", json.loads(json.dumps(report, default=float)))
    sheet = contact_sheet(imgs, labels, cols=10)
    with atomic_path(opts.out / "contact_sheet.png") as tmp:
        Path(tmp).write_bytes(_png_bytes(sheet))
    print(f"neutral max {rep.neutral_max}; rise>=0.25: {rep.n_rise_ge_025}/51; sides {rep.sides_ok}/"
          f"{rep.sides_total}; MAE {rep.mae_random} over {rep.detected_random}/{rep.n_random} detected; "
          f"floors {rep.floors}")
    print(f"fer: {json.dumps(rep.fer)}")
    print(f"wrote {opts.out / 'calibration_report.json'} and {opts.out / 'contact_sheet.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
