"""The blendshape rig every renderer in emo3d draws: a neutral mesh plus sparse per-target deltas.

Rig space: +x = the subject's LEFT (the viewer's right), +y up, +z toward the viewer; triangles are
counter-clockwise seen from outside. Target names are canonical ARKit names (``schema.MODEL_NAMES``).
Deltas are stored as CSR by target (``offsets [T+1]``, ``indices [K]``, ``values [K,3]``, see
``native.reference.dense_to_sparse``): most shapes move a small part of the face.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from emo3d import names as name_map
from emo3d import schema
from emo3d.errors import InvalidInputError
from emo3d.weights import WeightClampWarning, normalize

__all__ = ["Rig", "WeightClampWarning"]


def _as(arr, name: str, dtype, shape: tuple, *, finite: bool = False) -> np.ndarray:
    """``arr`` as a C-contiguous ``dtype`` array whose shape matches ``shape`` (None = any)."""
    a = np.asarray(arr)
    if a.dtype.kind not in "fiu" or (np.dtype(dtype).kind in "iu" and a.dtype.kind == "f"):
        raise InvalidInputError(f"Rig.{name} must be a {np.dtype(dtype).name} array, got dtype {a.dtype}")
    if a.ndim != len(shape) or any(w is not None and s != w for s, w in zip(a.shape, shape)):
        want = "[" + ", ".join("*" if w is None else str(w) for w in shape) + "]"
        raise InvalidInputError(f"Rig.{name} must have shape {want}, got {a.shape}")
    a = np.ascontiguousarray(a, dtype=dtype)
    if finite and not np.isfinite(a).all():
        raise InvalidInputError(f"Rig.{name} contains NaN or inf")
    return a


#: Targets a rig may carry beyond MediaPipe's 51 shapes (driven by name or by a prediction's ``extras``).
EXTRA_TARGETS = ("tongueOut",)


def _extra_value(name: str, weights, extras) -> float:
    if extras and name in extras:
        v = float(extras[name])
    elif isinstance(weights, Mapping):
        v = 0.0
        for k, x in weights.items():
            m = name_map.resolve(k)
            if m is not None and m.targets == (name,):
                v = float(x)
    else:
        return 0.0
    if not np.isfinite(v):
        raise InvalidInputError(f"{name}: value {v} is not finite")
    return min(max(v, 0.0), 1.0)


@dataclass
class Rig:
    """A blendshape rig (see module doc). Validated and normalised on construction."""

    name: str
    vertices: np.ndarray            # [V,3] float32 neutral pose
    triangles: np.ndarray           # [F,3] int32, CCW seen from outside
    target_names: tuple             # canonical ARKit names (subset of schema.MODEL_NAMES)
    offsets: np.ndarray             # [T+1] int64 CSR offsets
    indices: np.ndarray             # [K] int32 vertex indices
    values: np.ndarray              # [K,3] float32 deltas
    uvs: np.ndarray | None = None   # [V,2] float32; u right, v down
    texture: np.ndarray | None = None   # [H,W,3] uint8
    colors: np.ndarray | None = None    # [V,3] float32 in 0..1
    missing: tuple = ()             # ARKit targets the rig lacks
    unknown: tuple = ()             # source morph targets not matched to ARKit names
    # Regions as [2,3] (lo, hi) boxes in rig space, or None: the face (brows to chin, from the face
    # targets), the head (head bone / face grown), and the box the camera frames (None = the whole
    # mesh); emo3d.avatar.framing sets frame_box for --framing face|head|full.
    face_box: np.ndarray | None = None
    head_box: np.ndarray | None = None
    frame_box: np.ndarray | None = None
    # A skinned avatar's head: how much each vertex follows the head bone ([V] in 0..1) and the bone's
    # pivot ([3]); with them a head pose turns the head on the neck (emo3d.avatar.posing), not the body.
    head_weights: np.ndarray | None = None
    head_pivot: np.ndarray | None = None
    # Eye bones (a VRM whose lookAt turns bones): how much each vertex follows the left and the right
    # eye bone ([2, V] in 0..1) and the bones' pivots ([2, 3]); emo3d.avatar.posing turns them by the gaze.
    eye_weights: np.ndarray | None = None
    eye_pivots: np.ndarray | None = None
    # Per triangle [F] bool: True where it is single-sided (a glTF material without ``doubleSided``):
    # its back face (clockwise on screen) is not drawn. None: every triangle is drawn from both sides.
    single_sided: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.name = str(self.name)
        self.vertices = _as(self.vertices, "vertices", np.float32, (None, 3), finite=True)
        V = self.vertices.shape[0]
        if V < 3:
            raise InvalidInputError(f"Rig.vertices needs at least 3 vertices, got {V}")
        self.triangles = _as(self.triangles, "triangles", np.int64, (None, 3)).astype(np.int32)
        if self.triangles.shape[0] == 0:
            raise InvalidInputError("Rig.triangles is empty")
        if self.triangles.min() < 0 or self.triangles.max() >= V:
            raise InvalidInputError(f"Rig.triangles index out of range: values in "
                                    f"[{self.triangles.min()}, {self.triangles.max()}], vertices 0..{V - 1}")
        names = []
        for n in self.target_names:
            try:
                c = name_map.canonical_name(n)
            except KeyError as e:
                raise InvalidInputError(f"Rig.target_names: {e.args[0]}") from None
            if c not in schema.MODEL_INDEX and c not in EXTRA_TARGETS:
                raise InvalidInputError(f"Rig.target_names: {n!r} is not one of the 51 ARKit shapes "
                                        f"MediaPipe predicts (or {', '.join(EXTRA_TARGETS)})")
            if c in names:
                raise InvalidInputError(f"Rig.target_names: {c!r} appears twice")
            names.append(c)
        self.target_names = tuple(names)
        T = len(names)
        self.offsets = _as(self.offsets, "offsets", np.int64, (T + 1,))
        self.indices = _as(self.indices, "indices", np.int64, (None,)).astype(np.int32)
        K = self.indices.shape[0]
        self.values = _as(self.values, "values", np.float32, (K, 3), finite=True)
        if self.offsets[0] != 0 or self.offsets[-1] != K or (np.diff(self.offsets) < 0).any():
            raise InvalidInputError(f"Rig.offsets must start at 0, never decrease and end at len(indices)={K}; "
                                    f"got {self.offsets[0]}..{self.offsets[-1]}")
        if K and (self.indices.min() < 0 or self.indices.max() >= V):
            raise InvalidInputError(f"Rig.indices out of range: values in [{self.indices.min()}, "
                                    f"{self.indices.max()}], vertices 0..{V - 1}")
        if self.uvs is not None:
            self.uvs = _as(self.uvs, "uvs", np.float32, (V, 2), finite=True)
        if self.texture is not None:
            t = np.asarray(self.texture)
            if t.dtype != np.uint8 or t.ndim != 3 or t.shape[2] != 3 or min(t.shape[:2]) < 1:
                raise InvalidInputError(f"Rig.texture must be a [H, W, 3] uint8 image, got {t.dtype} {t.shape}")
            if self.uvs is None:
                raise InvalidInputError("Rig.texture needs Rig.uvs")
            self.texture = np.ascontiguousarray(t)
        if self.colors is not None:
            self.colors = _as(self.colors, "colors", np.float32, (V, 3), finite=True)
            if self.colors.min() < 0 or self.colors.max() > 1:
                raise InvalidInputError("Rig.colors must lie in [0, 1]")
        for k in ("face_box", "head_box", "frame_box"):
            box = getattr(self, k)
            if box is not None:
                box = _as(box, k, np.float32, (2, 3), finite=True)
                if (box[1] < box[0]).any():
                    raise InvalidInputError(f"Rig.{k} must be (lo, hi) with lo <= hi, got {box.tolist()}")
                setattr(self, k, box)
        if self.head_weights is not None:
            self.head_weights = _as(self.head_weights, "head_weights", np.float32, (V,), finite=True)
            if self.head_weights.min() < 0 or self.head_weights.max() > 1:
                raise InvalidInputError("Rig.head_weights must lie in [0, 1]")
            if self.head_pivot is None:
                raise InvalidInputError("Rig.head_weights needs Rig.head_pivot (the head bone's position)")
        if self.head_pivot is not None:
            self.head_pivot = _as(self.head_pivot, "head_pivot", np.float32, (3,), finite=True)
        if (self.eye_weights is None) != (self.eye_pivots is None):
            raise InvalidInputError("Rig.eye_weights and Rig.eye_pivots go together (both or neither)")
        if self.eye_weights is not None:
            self.eye_weights = _as(self.eye_weights, "eye_weights", np.float32, (2, V), finite=True)
            if self.eye_weights.min() < 0 or self.eye_weights.max() > 1:
                raise InvalidInputError("Rig.eye_weights must lie in [0, 1]")
            self.eye_pivots = _as(self.eye_pivots, "eye_pivots", np.float32, (2, 3), finite=True)
        if self.single_sided is not None:
            ss = np.asarray(self.single_sided)
            if ss.dtype != np.bool_ or ss.shape != (self.triangles.shape[0],):
                raise InvalidInputError(f"Rig.single_sided must be a bool array with one flag per triangle "
                                        f"[{self.triangles.shape[0]}], got {ss.dtype} {ss.shape}")
            self.single_sided = np.ascontiguousarray(ss)
        self.missing = tuple(str(n) for n in self.missing)
        self.unknown = tuple(str(n) for n in self.unknown)

    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_dense(cls, name: str, vertices, triangles, target_names: Sequence[str], deltas,
                   *, tol: float = 0.0, **kw) -> "Rig":
        """Build a rig from dense deltas [T,V,3]; vertices whose |delta| <= tol are dropped."""
        from native.reference import dense_to_sparse
        d = _as(deltas, "deltas", np.float32, (len(target_names), np.shape(vertices)[0], 3), finite=True)
        offsets, indices, values = dense_to_sparse(d, tol)
        return cls(name, vertices, triangles, tuple(target_names), offsets, indices, values, **kw)

    @property
    def n_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def n_targets(self) -> int:
        return len(self.target_names)

    def dense_deltas(self) -> np.ndarray:
        """[T,V,3] float32 dense deltas (for baselines and exports)."""
        d = np.zeros((self.n_targets, self.n_vertices, 3), np.float32)
        for t in range(self.n_targets):
            sl = slice(self.offsets[t], self.offsets[t + 1])
            d[t, self.indices[sl]] = self.values[sl]
        return d

    def weights_for(self, weights, *, extras: Mapping[str, float] | None = None) -> np.ndarray:
        """[52] MediaPipe vector / [51] / {name: value} / [F,52] -> [F,T] float32 in this rig's target
        order (validated, clamped to [0,1] with a warning). An extra target (``tongueOut``, beyond
        MediaPipe's 52) takes ``extras[name]`` (a prediction's ``extras``), else the mapping's value
        under any spelling of its name, else 0."""
        w = normalize(weights, batch=True).warn(stacklevel=4).values
        cols, extra = self._weight_columns()
        out = np.ascontiguousarray(w[:, cols])
        for t, n in extra:
            out[:, t] = _extra_value(n, weights, extras)
        return out

    def _weight_columns(self) -> tuple:
        """(the MediaPipe column of each target [T] int64, ((position, name) of each extra target)), made
        once per ``target_names`` (weights_for runs for every frame rendered)."""
        cached = self.__dict__.get("_columns")
        if cached is None or cached[0] is not self.target_names:
            cols = np.array([schema.MEDIAPIPE_INDEX.get(n, 0) for n in self.target_names], dtype=np.int64)
            extra = tuple((t, n) for t, n in enumerate(self.target_names) if n in EXTRA_TARGETS)
            cached = self.__dict__["_columns"] = (self.target_names, cols, extra)
        return cached[1], cached[2]

    def deform(self, weights, *, threads: int = 0, extras: Mapping[str, float] | None = None) -> np.ndarray:
        """Deformed vertices [F,V,3] float32 (the native sparse kernel ``deform_sparse``; the rig's
        deltas are checked once and kept in a native ``SparseDeformer``)."""
        w = self.weights_for(weights, extras=extras)
        d = self.__dict__.get("_deformer")
        if d is None:
            from native import _core
            d = _core.SparseDeformer(self.vertices, self.offsets, self.indices, self.values)
            self.__dict__["_deformer"] = d
        return d.deform(w, int(threads))

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_deformer", None)  # native object: rebuilt on first use
        return state

    def __repr__(self) -> str:
        tex = f"texture {self.texture.shape[1]}x{self.texture.shape[0]}" if self.texture is not None else \
            ("vertex colours" if self.colors is not None else "untextured")
        return (f"Rig({self.name!r}: {self.n_vertices} vertices, {self.triangles.shape[0]} triangles, "
                f"{self.n_targets} targets, {len(self.indices)} sparse deltas, {tex})")
