"""The calibration itself: the neutral-bias rounds, the per-shape gain search and the optional
landmark-space refinement (:mod:`.refine`) of weak shapes, all through :class:`.calibrate_probe.Probe`."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from emo3d import schema

from .calibrate_probe import CalibrateOptions, Probe, mirror, unit_batch

__all__ = ["calibrate", "gain_search", "antagonists", "ANTAGONIST", "ANTAGONIST_BOTH"]

ANTAGONIST = {   # neutral reading too high -> bias toward this shape (both L/R spelled out below)
    "eyeLookDown{S}": "eyeLookUp{S}", "eyeSquint{S}": "eyeWide{S}", "eyeBlink{S}": "eyeWide{S}",
    "browOuterUp{S}": "browDown{S}", "browDown{S}": "browOuterUp{S}", "eyeLookUp{S}": "eyeLookDown{S}",
    "mouthSmile{S}": "mouthFrown{S}", "mouthFrown{S}": "mouthSmile{S}", "eyeWide{S}": "eyeSquint{S}",
}
ANTAGONIST_BOTH = {"browInnerUp": ("browDownLeft", "browDownRight"), "jawOpen": ("mouthClose",),
                   "mouthPucker": ("mouthStretchLeft", "mouthStretchRight")}

def antagonists() -> Dict[str, tuple]:
    out: Dict[str, tuple] = {k: v for k, v in ANTAGONIST_BOTH.items()}
    for k, v in ANTAGONIST.items():
        for S in ("Left", "Right"):
            out[k.format(S=S)] = (v.format(S=S),)
    return out


# --- the procedure -----------------------------------------------------------------------------
def _project(rig, verts: np.ndarray, size: int) -> np.ndarray:
    """Rig-space vertices [V,3] -> pixel positions [V,2] with the Renderer's camera (no pose)."""
    from native.render import RenderOptions, framing
    o = RenderOptions(width=size, height=size)
    c, dist, t = framing(rig.vertices if rig.frame_box is None else rig.frame_box, o)
    p = verts.astype(np.float64) - np.asarray(c, np.float64)
    z = dist - p[:, 2]
    return np.stack([(p[:, 0] / (z * t) + 1) * 0.5 * size, (1 - p[:, 1] / (z * t)) * 0.5 * size], 1), z, t


def _refine(probe: "Probe", cal: dict, opts: CalibrateOptions, log=print) -> None:
    """Landmark-space refinement (avatar.refine) of shapes whose full-path reading is weak."""
    from .mesh import build_head
    from .refine import BLENDSHAPE_SUBSET, MESH_SUBSET, ProxyScorer, refine_shape
    W = unit_batch()
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
        m = mirror(name)
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
    probe = Probe(opts.texture, opts.size, compose=False)    # single shapes: the combination fit is for after
    try:
        anta = antagonists()
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
        gain_search(probe, cal, opts, opts.rounds, log)
        for p in range(opts.refine_passes if opts.refine else 0):
            log(f"refine pass {p + 1}/{opts.refine_passes}")
            _refine(probe, cal, opts, log)
            gain_search(probe, cal, opts, max(2, opts.rounds // 2), log)
        cal["neutral_bias"] = {k: round(v, 4) for k, v in cal["neutral_bias"].items()}
        cal["meta"] = {"target": opts.target, "size": opts.size, "texture": opts.texture}
    finally:
        probe.close()
    return cal


def gain_search(probe: "Probe", cal: dict, opts: CalibrateOptions, rounds: int, log=print) -> None:
    """Bounded per-shape gain search (all shapes as one batch per round), from the current gains."""
    W = unit_batch()
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
