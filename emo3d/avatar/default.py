"""The default avatar rig: MediaPipe's canonical face + eyes + mouth interior, 51 authored ARKit
shapes scaled by the shipped calibration (``avatar/data/calibration.json``), a neutral texture.

Built offline on first use (the face bundle comes from registry packages, see ``avatar.bundle``) and
cached as an ``.npz`` under ``emo3d.io.cache_dir("avatar")``; later calls load the cache.
"""
from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from emo3d import schema
from emo3d.errors import InvalidInputError
from emo3d.io import atomic_path, cache_dir

__all__ = ["default_rig", "build_default_rig", "limited_shapes", "load_calibration", "CALIBRATION_PATH"]

CALIBRATION_PATH = Path(__file__).with_name("data") / "calibration.json"
CLOSED_PARTS = ("scalp", "neck", "eye_left", "eye_right")   # triangles touching these are single-sided
NECK_SHOWN = 4.0         # cm of neck below the chin inside the head box
BUILD_VERSION = 8        # bump when mesh/texture/authoring code changes the result
_LOCK = threading.Lock()
_MEMO: Dict[str, object] = {}


def load_calibration(path: str | Path | None = None) -> dict:
    """{"gains": {name: g}, "neutral_bias": {name: c}, "corrections": {name: {landmark: [dx, dy]}},
    "rest_only": [names whose correction only shapes the rest pose (bias x correction), not the shape itself]};
    a missing file -> unit gains, no bias, no corrections."""
    p = Path(path) if path else CALIBRATION_PATH
    if not p.is_file():
        return {"gains": {}, "neutral_bias": {}}
    cal = json.loads(p.read_text())
    for key in ("gains", "neutral_bias", "corrections"):
        for name in cal.get(key, {}):
            if name not in schema.MODEL_INDEX:
                raise InvalidInputError(f"{p}: {key} names unknown blendshape {name!r}")
    for name in cal.get("rest_only", []):
        if name not in cal.get("corrections", {}):
            raise InvalidInputError(f"{p}: rest_only names {name!r}, which has no correction")
    return cal


def limited_shapes(calibration: Optional[dict] = None):
    """(head, rest [V,3], deltas [51,V,3]): the default mask's shapes at their calibrated gains after the
    stretch limits, before their combinations are fitted (``avatar.compose``) and the whole head is grown."""
    from .authoring import author, calm_rest_lids, seal_lips
    from .mesh import build_head
    from .stretch import limit_shapes
    cal = load_calibration() if calibration is None else calibration
    head = calm_rest_lids(build_head())
    deltas = author(head, cal.get("gains", {}))
    gains = np.array([float(cal.get("gains", {}).get(n, 1.0)) for n in schema.MODEL_NAMES], np.float32)
    bias = np.array([float(cal.get("neutral_bias", {}).get(n, 0.0)) for n in schema.MODEL_NAMES], np.float32)
    corr = cal.get("corrections", {})
    rest = np.zeros_like(deltas)   # correction fields that shape only the rest pose (see "rest_only")
    if corr:
        from .refine import correction_field
        rest_only = set(cal.get("rest_only", ()))
        for name, pts in corr.items():
            t = schema.MODEL_INDEX[name]
            field = correction_field(head.vertices, head.n_face, {int(k): np.asarray(v) for k, v in pts.items()})
            (rest if name in rest_only else deltas)[t] += field.astype(np.float32)
    # per element (not BLAS): the rest pose does not depend on how many vertices the head has
    base = head.vertices + (bias[:, None, None] * (deltas + rest)).sum(0)
    scaled = seal_lips(head, deltas * gains[:, None, None])
    return head, base, limit_shapes(head, base, scaled, names=schema.MODEL_NAMES, used_over={"mouthClose": "jawOpen"})


def build_default_rig(texture: str = "neutral", calibration: Optional[dict] = None, *, compose: bool = True):
    """Build (no cache) the default rig. ``calibration`` overrides the shipped one (used by calibrate);
    ``compose=False`` skips the fit of the combinations (the calibration's gain search reads single shapes)."""
    from .compose import compose_default
    from .framing import regions
    from .head import build_whole_head, follow_deltas, tongue_out
    from native.reference_render import vertex_normals

    from .head_ao import spare_eyes, vertex_ao
    from .head_texture import whole_texture
    from .rig import Rig
    from .texture import build_texture
    head, base, limited = limited_shapes(calibration)
    final = compose_default(head, base, limited) if compose else limited
    # the whole head around the mask: the scalp follows the face's boundary, ears and neck stay still;
    # the camera frames the face as it framed the mask (MediaPipe's readings were calibrated so)
    whole = build_whole_head(head)
    base_w = whole.head.vertices + follow_deltas(whole, base - head.vertices)
    jaw = final[schema.MODEL_INDEX["jawOpen"]]
    final_w = follow_deltas(whole, np.concatenate([final, tongue_out(head, jaw)[None]]))
    skin = np.concatenate([np.arange(head.n_face), whole.head.parts["scalp"]])
    ao = np.ones(len(base_w), np.float32)
    ao[skin] = vertex_ao(base_w, whole.head.triangles, vertex_normals(base_w, whole.head.triangles), skin)
    ao = spare_eyes(ao, base_w, whole.head.eye_centers.values())
    tex = whole_texture(build_texture(texture), whole, ao)
    names = schema.MODEL_NAMES + ("tongueOut",)
    face_box, _ = regions(base_w, names, final_w, None)
    # the head box (--framing head, the turnaround): skull, hair and ears, down to a little of the neck
    top = base_w[np.concatenate([whole.head.parts[p] for p in ("scalp", "ear_left", "ear_right")])]
    head_box = np.stack([top.min(0), top.max(0)])
    head_box[0, 1] = base_w[:head.n_face, 1].min() - NECK_SHOWN
    # closed surfaces seen only from outside (skull + face, neck, eyeballs): their back faces are culled
    closed = np.concatenate([whole.head.parts[p] for p in CLOSED_PARTS])
    one_sided = np.isin(whole.head.triangles, closed).any(1)
    rig = Rig.from_dense(f"default-{texture}", base_w, whole.head.triangles, names,
                         final_w, tol=1e-6, uvs=whole.head.uvs, texture=tex, face_box=face_box, head_box=head_box,
                         single_sided=one_sided)
    rig.frame_box = np.stack([base.min(0), base.max(0)]).astype(np.float32)
    return rig


def _key(texture: str) -> str:
    from .bundle import SHA256
    h = hashlib.sha256(SHA256.encode() + f"{BUILD_VERSION}:{texture}".encode())
    if CALIBRATION_PATH.is_file():
        h.update(CALIBRATION_PATH.read_bytes())
    for src in ("mesh.py", "head.py", "head_ao.py", "head_texture.py", "authoring.py", "stretch.py", "compose.py",
                "texture.py", "refine.py", "default.py", "data/compose.npz"):   # code that shapes the rig
        if (Path(__file__).parent / src).is_file():      # data/compose.npz may be absent (fitted at build)
            h.update((Path(__file__).parent / src).read_bytes())
    h = h.hexdigest()[:16]
    return f"default-{texture}-{h}"


def default_rig(texture: str = "neutral"):
    """The cached default :class:`avatar.rig.Rig` (``texture``: "neutral" painted or "photo")."""
    from .rig import Rig
    from .texture import TEXTURES
    if texture not in TEXTURES:
        raise InvalidInputError(f"unknown default-avatar texture {texture!r}; accepted: {', '.join(TEXTURES)}")
    key = _key(texture)
    with _LOCK:
        if key in _MEMO:
            return _MEMO[key]
        path = cache_dir("avatar") / f"{key}.npz"
        rig = None
        if path.is_file():
            try:
                z = np.load(path, allow_pickle=False)
                rig = Rig(str(z["name"]), z["vertices"], z["triangles"], tuple(str(n) for n in z["target_names"]),
                          z["offsets"], z["indices"], z["values"], uvs=z["uvs"], texture=z["texture"],
                          face_box=z["face_box"], head_box=z["head_box"], frame_box=z["frame_box"],
                          single_sided=z["single_sided"])
            except Exception:  # noqa: BLE001 - a corrupt cache is rebuilt
                rig = None
        if rig is None:
            rig = build_default_rig(texture)
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, name=rig.name, vertices=rig.vertices, triangles=rig.triangles,
                             target_names=np.array(rig.target_names), offsets=rig.offsets, indices=rig.indices,
                             values=rig.values, uvs=rig.uvs, texture=rig.texture, face_box=rig.face_box,
                             head_box=rig.head_box, frame_box=rig.frame_box, single_sided=rig.single_sided)
        _MEMO[key] = rig
        return rig


def main(argv=None) -> int:
    """``python -m emo3d.avatar.default``: refit the default rig's combinations for its shapes as authored and
    calibrated now (``avatar.compose``, warm-started from the last fit) and write ``data/compose.npz``."""
    import argparse
    from .compose import COMPOSE_PATH, write_fit
    ap = argparse.ArgumentParser(prog="python -m emo3d.avatar.default", description=main.__doc__)
    ap.parse_args(argv)
    res = write_fit(*limited_shapes())
    print(f"training poses folding: {res.folded_before} -> {res.folded_after}; smallest area ratio "
          f"{res.min_ratio:.3f}; {res.iterations} iterations; wrote {COMPOSE_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
