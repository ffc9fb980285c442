"""Hand-authored displacement fields of the 51 ARKit blendshapes on the default head.

Each shape moves a region named by MediaPipe landmark indices with a smooth (Gaussian) falloff;
"Left"/"Right" are the subject's own sides (ARKit): Left = +x in rig space. The jaw opens about a
hinge behind the ears (and turns sideways about a condyle, jawLeft/Right) and carries the lower lip, chin,
lower teeth, tongue and the mouth bag's floor; gaze shapes rotate the eyeballs. ``author(head)`` returns
dense deltas [51,V,3] in ``MODEL_NAMES`` order at unit gain; ``avatar.calibrate`` tunes one gain per shape
against MediaPipe.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from emo3d import pose, schema

from . import mesh as M
from .mesh import Head

__all__ = ["author", "calm_rest_lids", "REST_LID_DROP"]

BROW = {"right": {"inner": (107, 66, 55, 65), "mid": (105, 52, 63), "outer": (70, 46, 53, 124)},
        "left": {"inner": (336, 296, 285, 295), "mid": (334, 282, 293), "outer": (300, 276, 283, 353)}}
LID2 = {"right": (247, 30, 29, 27, 28, 56, 190), "left": (467, 260, 259, 257, 258, 286, 414)}
LID3 = {"right": (113, 225, 224, 223, 222, 221, 189), "left": (342, 445, 444, 443, 442, 441, 413)}
LOWLID2 = {"right": (130, 25, 110, 24, 23, 22, 26, 112, 243), "left": (359, 255, 339, 254, 253, 252, 256, 341, 463)}
CHEEK = {"right": (50, 101, 118, 117, 123, 147, 187, 205, 36), "left": (280, 330, 347, 346, 352, 376, 411, 425, 266)}
UNDER_EYE = {"right": (111, 117, 118, 119, 120, 121, 47, 100), "left": (340, 346, 347, 348, 349, 350, 277, 329)}
NOSTRIL = {"right": (48, 64, 98, 129, 102, 49, 209, 198, 131), "left": (278, 294, 327, 358, 331, 279, 429, 420, 360)}
CORNER = {"right": (61, 76, 62, 78), "left": (291, 306, 292, 308)}
SIDE_SIGN = {"left": 1.0, "right": -1.0}
CHIN_TIP = 152
BROW_DOWN_SOFT = 1.2


GAZE_MAX_DEG = 40.0      # the furthest a gaze shape turns the eye at 1.0, gain included
BLINK_FORWARD = 0.35     # cm the middle of the upper lid comes forward as it closes (the lower lid half that)
# mouthRoll*: the lip slides into the mouth along its own surface (the red disappears over the teeth) and the
# skin beside it follows toward the lip line; a slide, not a turn: the lip's triangles keep their shape
ROLL_SLIDE = {"lower": 0.7, "upper": 0.5}   # cm the middle of the lip slides inward at 1.0 (less toward the corners)
ROLL_BACK = {"lower": 0.5, "upper": 0.3}    # cm the rolled lip (and the skin following it) sinks back at 1.0
ROLL_REACH = {"lower": 1.8, "upper": 1.2}   # cm: the skin's follow falls off with its distance from the lip's outer edge (Gaussian)
ROLL_INTO = 0.3          # the path into the mouth: straight back, this much down (lower lip) or up (upper lip)
# cm the other lip comes to meet the rolled one at the middle: the lips stay sealed (else the upper teeth show
# between them and FaceLandmarker reads the gap as a parted mouth: its inner lip contour drops 3 px, roll 0.17)
ROLL_MEET = {"lower": 0.55, "upper": 0.7}
REST_LID_DROP = 0.2      # cm the upper lids come down at rest (covers the top of the iris a little)
# the lids follow the gaze (gain independent: a gaze shape's gain only turns the eye): looking up lifts
# the upper lid (else the lid over the iris reads as a squint), looking down brings the upper lid down
# with the iris and drops the lower lid a little (an upward lower lid reads as a squint)
LOOK_UP_LID = 3.0        # the upper lid's lift with eyeLookUp at 1.0, in units of eyeWide
LOOK_DOWN_LID = 0.95     # the lids' "down" field with eyeLookDown at 1.0 (the upper lid in units of eyeBlink)
LOOK_DOWN_LOWER = 0.3    # cm the middle of the lower lid drops in the "down" field
FUNNEL_FORWARD = 1.2     # cm mouthFunnel brings the lips' middle forward at unit gain (the corners 0.65 of it)
FUNNEL_NARROW = 0.5      # the corners come in by this share of the mouth's half width
FUNNEL_OPEN = 0.9        # cm the lips part at the middle (an ellipse across the mouth)
FUNNEL_FLARE = 0.25      # cm the lips' outer edges turn out (up / down) at the middle
FUNNEL_JAW = 4.0         # degrees the jaw opens with mouthFunnel at unit gain (the teeth part behind the opening)
JAW_HINGE = np.array([0.0, 0.0, -5.0])   # the jaw's hinge (rig cm; the axis runs along x)
# jawLeft/Right (session 7): the mandible turns about a vertical axis through the working side's condyle (in front of
# the ear, landmarks 234/454), as a person's jaw does in a lateral excursion: the chin moves 1 cm sideways at unit
# gain, the jaw angles much less, the chin a little forward (JAW_SIDE_DEPTH of a rigid turn: the mask is shallower
# than a skull). The skin over it follows with the height over the mouth's centre: fully below JAW_SIDE_FULL, not
# above JAW_SIDE_TOP, beside the mouth (more than JAW_SIDE_CHEEK[0] cm from the midline, fully past [1]); above the
# lip line inside the mouth's width nothing moves (the upper lip and the nose stay)
JAW_SIDE_FULL, JAW_SIDE_TOP = -0.5, 3.0
JAW_SIDE_CHEEK = (2.5, 5.0)
JAW_SIDE_CONDYLE = (234, 454)   # the condyles' landmarks (the subject's right, left)
JAW_SIDE_DEPTH = 0.5
# mouthLowerDown (session 7): the lower lip's own half drops as a piece (zero at the corner, 0.7 of it at
# the middle), everted a little, the chin skin below following over LOWER_DOWN_REACH cm (Gaussian)
LOWER_DOWN_FORWARD = 0.15
# the drop of the lip's rings, outer edge to inner edge (the inner edge drops less: the lip turns out and shows the
# lower teeth; dropping it as far as the outer edge bared the gum and the lip's fold in a ragged line)
LOWER_DOWN_RINGS = (1.0, 0.9, 0.75, 0.55)
LOWER_DOWN_TEETH = 2.0   # degrees the lower arch turns down with mouthLowerDown at unit gain (see _lower_down)
LOWER_DOWN_TEETH_SIDE = 1.0
MOUTH_SIDE_REACH = 1.3     # cm: the skin around the lips follows mouthLeft/Right with this Gaussian falloff
MOUTH_INSIDE = ("teeth_upper", "teeth_lower", "tongue", "bag_upper", "bag_lower")  # moved by mouthLeft/Right
LOWER_DOWN_REACH = 1.2
FROWN_DROP = 1.0         # cm mouthFrown brings the corner down at unit gain
FROWN_OUT = 1.2          # ... and out, in units of the drop (both sides read in MediaPipe from about 1.1)


def calm_rest_lids(head: Head, drop: float = REST_LID_DROP) -> Head:
    """Lower the upper lids of the rest pose in place (upper lid + the fold row above it, a sine
    profile across the lid) so the neutral face shows less sclera above the iris; returns ``head``.
    Applied before :func:`author`, so blink/wide/squint are authored from the calmer rest lids."""
    V = head.vertices
    for side in ("right", "left"):
        up = M.EYE_LEFT_UPPER if side == "left" else M.EYE_RIGHT_UPPER
        for k in range(1, len(up) - 1):
            V[up[k], 1] -= drop * np.sin(np.pi * k / (len(up) - 1))
        for k, i in enumerate(LID2[side]):
            V[i, 1] -= 0.5 * drop * np.sin(np.pi * (k + 1) / 8)
    return head


def _smooth(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


class _Fields:
    def __init__(self, head: Head):
        self.h = head
        self.V = head.vertices.astype(np.float64)
        self.nf = head.n_face
        self.F = self.V[:self.nf]
        self.upper = sorted({i for r in M.LIP_UPPER_RINGS for i in r[1:-1]})
        self.lower = sorted({i for r in M.LIP_LOWER_RINGS for i in r[1:-1]})
        self.corners = [r[0] for r in M.LIP_UPPER_RINGS] + [r[-1] for r in M.LIP_UPPER_RINGS]
        self.mouth_c = self.F[[13, 14, 78, 308]].mean(0)
        self.jaw = self._jaw_weight()

    def zeros(self):
        return np.zeros_like(self.V)

    def near(self, anchors: Sequence[int], sigma: float) -> np.ndarray:
        """[V] weight: 1 at the anchors, Gaussian falloff with the distance to the nearest (face only)."""
        a = self.F[list(anchors)]
        d2 = ((self.F[:, None, :] - a[None]) ** 2).sum(-1).min(1)
        w = np.zeros(len(self.V))
        w[:self.nf] = np.exp(-0.5 * d2 / sigma ** 2)
        return w

    def side(self, side: str, soft: float = 0.5) -> np.ndarray:
        w = np.zeros(len(self.V))
        w[:] = _smooth((SIDE_SIGN[side] * self.V[:, 0] + soft) / (2 * soft))
        return w

    def lip_mask(self, which: str) -> np.ndarray:
        """1 on one lip (and the skin beside it, by height), 0 on the other lip."""
        w = np.zeros(len(self.V))
        y = self.F[:, 1] - self.mouth_c[1]
        w[:self.nf] = _smooth(0.5 + (y if which == "upper" else -y) / 0.5)
        own, other = (self.upper, self.lower) if which == "upper" else (self.lower, self.upper)
        w[own] = 1.0
        w[other] = 0.0
        w[self.corners] = 0.5
        return w

    def _jaw_weight(self) -> np.ndarray:
        w = np.zeros(len(self.V))
        y, ax = self.F[:, 1], np.abs(self.F[:, 0])
        below = _smooth((self.mouth_c[1] + 0.3 - y) / 1.8)
        lateral = _smooth((7.6 - ax) / 2.5) * _smooth((self.mouth_c[1] + 2.5 - y) / 3.0 + 0.3)
        w[:self.nf] = np.maximum(below * np.clip(lateral + (ax < 4.5), 0, 1), 0)
        w[self.upper] = 0.0
        w[self.lower] = 1.0
        w[self.corners] = 0.45
        for part in ("teeth_lower", "tongue", "bag_lower"):
            w[self.h.parts[part]] = 1.0
        return w

    def rotate_x(self, weight: np.ndarray, angle_deg: float, pivot) -> np.ndarray:
        """Per-vertex rotation about the x axis through ``pivot`` by ``weight*angle`` degrees, with the sign of
        :mod:`emo3d.pose`'s pitch (the jaw opens with a positive angle)."""
        th = -np.radians(angle_deg) * weight
        p = self.V - pivot
        y = p[:, 1] * np.cos(th) + p[:, 2] * np.sin(th)
        z = -p[:, 1] * np.sin(th) + p[:, 2] * np.cos(th)
        d = self.zeros()
        d[:, 1], d[:, 2] = y - p[:, 1], z - p[:, 2]
        return d

    def eye_rotation(self, side: str, yaw_deg: float, pitch_deg: float) -> np.ndarray:
        """Rotate one eyeball about its centre by (yaw, pitch) degrees in :mod:`emo3d.pose`'s convention."""
        idx = self.h.parts["eye_" + side]
        c = self.h.eye_centers[side].astype(np.float64)
        p = self.V[idx] - c
        R = pose.rotation(np.radians(yaw_deg), np.radians(pitch_deg), 0.0)
        d = self.zeros()
        d[idx] = p @ R.T - p
        return d

    def vec(self, w: np.ndarray, v) -> np.ndarray:
        return w[:, None] * np.asarray(v, np.float64)[None]


def _eye_lids(f: _Fields, side: str) -> Dict[str, np.ndarray]:
    up = list(M.EYE_LEFT_UPPER if side == "left" else M.EYE_RIGHT_UPPER)
    lo = list(M.EYE_LEFT_LOWER if side == "left" else M.EYE_RIGHT_LOWER)
    blink, wide, squint, down = f.zeros(), f.zeros(), f.zeros(), f.zeros()
    gap = f.V[lo, 1] - f.V[up, 1]          # negative (lower lid is below)
    for k in range(1, len(up) - 1):
        blink[up[k], 1] = gap[k] * 1.04
        # the closed lids meet in front of the eyeball (its front pokes out between them otherwise)
        blink[up[k], 2] = BLINK_FORWARD * np.sin(np.pi * k / (len(up) - 1)) ** 0.5
        blink[lo[k], 1] = 0.08
        blink[lo[k], 2] = 0.5 * BLINK_FORWARD * np.sin(np.pi * k / (len(lo) - 1)) ** 0.5
        # a downward gaze: the upper lid follows the iris down, the lower lid drops a little with it
        down[up[k]] = blink[up[k]]
        down[lo[k], 1] = -LOOK_DOWN_LOWER * np.sin(np.pi * k / (len(lo) - 1))
        wide[up[k], 1] = 0.45 * np.sin(np.pi * k / (len(up) - 1))
        squint[lo[k], 1] = 0.3 * np.sin(np.pi * k / (len(lo) - 1))
        squint[up[k], 1] = -0.05
    for k, i in enumerate(LID2[side]):
        blink[i, 1] = 0.55 * gap[k + 1]
        blink[i, 2] = 0.5 * BLINK_FORWARD
        down[i] = blink[i]
        wide[i, 1] = 0.35 * np.sin(np.pi * (k + 1) / 8)
    for k, i in enumerate(LID3[side]):
        blink[i, 1] = 0.15 * gap[k + 1]
        down[i] = blink[i]
        wide[i, 1] = 0.2 * np.sin(np.pi * (k + 1) / 8)
    lo2 = list(LOWLID2[side])
    for k, i in enumerate(lo2):
        squint[i, 1] = 0.12 * np.sin(np.pi * k / (len(lo2) - 1))
    squint += f.vec(f.near(UNDER_EYE[side], 0.6) * 0.6, (0, 0.12, 0.04))
    return {"blink": blink, "wide": wide, "squint": squint, "down": down}


def _roll(f: _Fields, which: str) -> np.ndarray:
    """mouthRoll{Lower,Upper} at unit gain: each lip column (outer edge -> inner edge, then on into
    the mouth) slides inward along itself by ``ROLL_SLIDE`` (a sine profile, zero at the corners), so the red
    of the lip goes in over the teeth with its triangles' shape kept; the skin outside the lip follows toward
    the lip line (its Gaussian falloff ``ROLL_REACH``, inside the mouth's width); both sink back by ``ROLL_BACK``
    (the lip's bulge flattens against the teeth); the other lip stays."""
    rings = M.LIP_LOWER_RINGS if which == "lower" else M.LIP_UPPER_RINGS
    into = np.array([0.0, (-1.0 if which == "lower" else 1.0) * ROLL_INTO, -1.0])
    into /= np.linalg.norm(into)
    d = f.zeros()
    n = len(rings[0])
    outer, slide, tangent = [], [], []
    for j in range(1, n - 1):
        s = ROLL_SLIDE[which] * np.sin(np.pi * j / (n - 1)) ** 0.5
        path = np.array([f.V[rings[r][j]] for r in range(4)]
                        + [f.V[rings[3][j]] + into * 0.5 * k for k in (1, 2, 3, 4)])
        seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
        arc = np.r_[0.0, np.cumsum(seg)]
        for r in range(4):
            d[rings[r][j]] = [np.interp(arc[r] + s, arc, path[:, c]) - path[r, c] for c in range(3)]
            d[rings[r][j], 2] -= ROLL_BACK[which] * s / ROLL_SLIDE[which]
        outer.append(rings[0][j])
        slide.append(s)
        tangent.append((path[1] - path[0]) / max(seg[0], 1e-9))
    # the skin: each vertex follows the nearby columns (Gaussian-weighted) along their outer tangent
    dist = np.linalg.norm(f.F[:, None] - f.F[outer][None], axis=2)                 # [face, columns]
    kern = np.exp(-0.5 * (dist / 0.6) ** 2) + 1e-12
    s_v = (kern * np.array(slide)).sum(1) / kern.sum(1)
    t_v = kern @ np.array(tangent)
    t_v /= np.maximum(np.linalg.norm(t_v, axis=1, keepdims=True), 1e-12)
    own = f.lip_mask(which)[:f.nf]
    lip = np.zeros(f.nf, bool)
    lip[[i for i in f.upper + f.lower + f.corners if i < f.nf]] = True
    half = 0.5 * abs(f.F[rings[0][-1], 0] - f.F[rings[0][0], 0])
    w = np.exp(-0.5 * (dist.min(1) / ROLL_REACH[which]) ** 2) * own * (own >= 0.5) * ~lip \
        * _smooth((half - np.abs(f.F[:, 0] - f.mouth_c[0])) / (0.6 * half))
    d[:f.nf] += (w * s_v)[:, None] * t_v
    d[:f.nf, 2] -= w * s_v * ROLL_BACK[which] / ROLL_SLIDE[which]
    if ROLL_MEET[which]:
        # the other lip follows the rolled one's edge (the lips stay sealed; no teeth show between them)
        other = "upper" if which == "lower" else "lower"
        ow = f.near(f.upper if other == "upper" else f.lower, 0.45) * f.lip_mask(other)
        ow *= _smooth((half - np.abs(f.V[:, 0] - f.mouth_c[0])) / (0.8 * half))
        d[:, 1] += (1.0 if which == "upper" else -1.0) * ROLL_MEET[which] * ow
    return d


def _funnel(f: _Fields) -> np.ndarray:
    """mouthFunnel at unit gain (ARKit: the lips pushed forward and flared out around a rounded opening, as in
    "who"): the lips and the skin around them come forward (``FUNNEL_FORWARD``, the middle most) and in toward
    the middle (the corners by ``FUNNEL_NARROW`` of the half width), the lips part into an ellipse
    (``FUNNEL_OPEN`` tall at the middle, nothing at the corners) and their outer edges turn out (``FUNNEL_FLARE``)."""
    d = f.rotate_x(f.jaw, FUNNEL_JAW, JAW_HINGE)                       # the teeth part a little
    half = 0.5 * abs(f.F[M.LIP_UPPER_RINGS[0][-1], 0] - f.F[M.LIP_UPPER_RINGS[0][0], 0])
    rel = f.V[:, 0] - f.mouth_c[0]
    ell = np.sqrt(np.clip(1.0 - (rel / half) ** 2, 0.0, 1.0))        # 1 at the middle, 0 at the corners
    around = f.near(f.upper + f.lower + f.corners, 0.7)
    d[:, 2] += FUNNEL_FORWARD * around * (1.0 - 0.35 * np.clip(rel / half, -1, 1) ** 2)
    d[:, 0] -= FUNNEL_NARROW * rel * around
    for which, sgn in (("upper", 1.0), ("lower", -1.0)):
        w = f.near(f.upper if which == "upper" else f.lower, 0.5) * f.lip_mask(which)
        d[:, 1] += sgn * 0.5 * FUNNEL_OPEN * ell * w
        rings = M.LIP_UPPER_RINGS if which == "upper" else M.LIP_LOWER_RINGS
        for r, ring in enumerate(rings):                              # ring 0 = the outer edge: turns out most
            for i in ring[1:-1]:
                d[i, 1] += sgn * FUNNEL_FLARE * (3 - r) / 3 * ell[i]
                d[i, 2] += 0.3 * FUNNEL_FLARE * (3 - r) / 3 * ell[i]
    return d


def _jaw_side(f: _Fields, side: str) -> np.ndarray:
    """jawLeft/Right at unit gain (the chin 1 cm toward ``side``): the mandible (chin, outline, lower lip, lower
    teeth, tongue) turns about a vertical axis through that side's condyle, the skin over it following smoothly up
    the cheeks to ``JAW_SIDE_TOP``; the upper lip and everything above the lip line beside the mouth stay."""
    w = np.zeros(len(f.V))
    y = f.F[:, 1] - f.mouth_c[1]
    ax = np.abs(f.F[:, 0] - f.mouth_c[0])
    below = _smooth((0.3 - y) / 1.0)                                   # under the lip line
    flank = _smooth((JAW_SIDE_TOP - y) / (JAW_SIDE_TOP - JAW_SIDE_FULL))
    beside = _smooth((ax - JAW_SIDE_CHEEK[0]) / (JAW_SIDE_CHEEK[1] - JAW_SIDE_CHEEK[0]))
    w[:f.nf] = np.maximum(below, beside * flank)
    w[f.upper] = 0.0
    w[f.lower] = 1.0
    w[f.corners] = 0.45
    for part in ("teeth_lower", "tongue", "bag_lower"):
        w[f.h.parts[part]] = 1.0
    sx = SIDE_SIGN[side]
    pivot = f.F[JAW_SIDE_CONDYLE[1 if side == "left" else 0]]
    chin = f.F[CHIN_TIP]
    turn = 1.0 / (chin[2] - pivot[2])                                  # radians per cm of the chin's move
    d = f.zeros()
    d[:, 0] = sx * turn * np.maximum(f.V[:, 2] - pivot[2], 0.0)
    d[:, 2] = -sx * turn * JAW_SIDE_DEPTH * (f.V[:, 0] - pivot[0])
    return d * w[:, None]


def _lower_down(f: _Fields, side: str) -> np.ndarray:
    """mouthLowerDown{Left,Right} at unit gain (FACS AU16 on one side): the lower lip's own half (outer edge to
    inner edge, ``LOWER_DOWN_RINGS``) 1 cm down and a little out, most half way to the corner, none at the corner (the
    corner stays joined to the upper lip), 0.7 of it at the middle; the chin skin under it follows."""
    sx = SIDE_SIGN[side]
    rel = sx * (f.V[:, 0] - f.mouth_c[0])
    half = np.abs(f.F[list(CORNER[side][:1]), 0] - f.mouth_c[0]).max()    # the mouth's half width
    u = rel / half
    along = _smooth((u + 0.8) / 1.2) * (1.0 - _smooth((u - 0.6) / 0.4))
    y = f.V[:, 1] - f.mouth_c[1]
    skin = f.near(f.lower, LOWER_DOWN_REACH) * _smooth((0.1 - y) / 0.4)  # below the lip line only
    w = np.maximum(skin, 0.0)
    w[f.upper] = 0.0
    w[f.nf:] = 0.0
    w *= along
    # each lip column (outer edge -> inner edge) drops by its outer vertex's place along the lip, the inner rings less
    # (the lip turns out; with each vertex's own place the converging rings crossed beside the corner)
    outer = list(M.LIP_LOWER_RINGS[0])
    for ring, share in zip(M.LIP_LOWER_RINGS, LOWER_DOWN_RINGS):
        w[list(ring[1:-1])] = share * along[outer[1:-1]]
    w[f.corners] = 0.0
    # the lower teeth part from the upper ones (a closed bite hides the lower crowns behind the upper teeth, and the
    # lip pulled down bared only the lower gum): the lower arch (with the mouth's floor) turns down about the jaw's
    # hinge, more on the pulled side (LOWER_DOWN_TEETH_SIDE cm either side of the midline); behind the closed lips of
    # the other side it is not seen
    inside = np.zeros(len(f.V))
    for part in ("teeth_lower", "tongue", "bag_lower"):
        inside[f.h.parts[part]] = f.side(side, LOWER_DOWN_TEETH_SIDE)[f.h.parts[part]]
    return f.vec(w, (0, -1.0, LOWER_DOWN_FORWARD)) + f.rotate_x(inside, LOWER_DOWN_TEETH, JAW_HINGE)


def author(head: Head, gains: Dict[str, float] | None = None) -> np.ndarray:
    """Dense deltas [51, V, 3] float32 in ``schema.MODEL_NAMES`` order (unit gain). ``gains`` (the
    calibration's, applied by the caller as a multiplier) turn the gaze angles instead of scaling the
    eyeball: a gaze shape times its gain is a rigid rotation of the eye."""
    f = _Fields(head)
    D: Dict[str, np.ndarray] = {}
    g = lambda name: float((gains or {}).get(name, 1.0))  # noqa: E731
    D["jawOpen"] = f.rotate_x(f.jaw, 12.0, JAW_HINGE)
    D["jawForward"] = f.vec(f.jaw, (0, -0.1, 1.2))
    # jawLeft/Right: the mandible turns about the working side's condyle (_jaw_side)
    D["jawLeft"] = _jaw_side(f, "left")
    D["jawRight"] = _jaw_side(f, "right")

    lips = f.near(f.upper + f.lower, 0.45)
    upper_w = lips * f.lip_mask("upper")
    lower_w = lips * f.lip_mask("lower")
    mc = f.mouth_c
    rel_x = f.V[:, 0] - mc[0]
    # mouthClose is the lip seal over jawOpen (ARKit: lips closed while the jaw is open); it depends on
    # jawOpen's gain, so :func:`seal_lips` writes it once the gains are applied
    D["mouthClose"] = f.zeros()
    # funnel: lips forward, opening rounds; pucker: lips forward and narrow, closed
    D["mouthFunnel"] = _funnel(f)
    pucker = f.vec(lips, (0, 0, 0.8))
    pucker[:, 0] += -0.55 * lips * np.tanh(rel_x / 1.2)
    D["mouthPucker"] = pucker
    mouth_area = f.near(f.upper + f.lower + f.corners, MOUTH_SIDE_REACH)
    # the mouth's inside slides with the lips (session 7): with the teeth left behind, the side teeth poked
    # through the thinner skin beside the trailing corner (closed lips: invisible otherwise)
    for part in MOUTH_INSIDE:
        mouth_area[f.h.parts[part]] = 1.0
    D["mouthLeft"] = f.vec(mouth_area, (0.7, 0, -0.05))
    D["mouthRight"] = f.vec(mouth_area, (-0.7, 0, -0.05))
    D["mouthRollLower"] = _roll(f, "lower")
    D["mouthRollUpper"] = _roll(f, "upper")

    chin = f.near((152, 175, 199, 200, 18, 83, 313), 1.2)
    D["mouthShrugLower"] = f.vec(np.maximum(lower_w, chin * 0.6), (0, 0.7, 0.4))
    # the upper lip pushed up by the lower one (the two ride up together, the upper lip forward)
    D["mouthShrugUpper"] = f.vec(upper_w, (0, 0.6, 0.3)) + f.vec(lower_w * lips, (0, 0.8, 0.15))

    for side in ("left", "right"):
        S = "Left" if side == "left" else "Right"
        sx = SIDE_SIGN[side]
        sm = f.side(side)
        corner = f.near(CORNER[side], 1.0) * sm
        corner_wide = f.near(CORNER[side], 1.6) * sm
        D[f"mouthSmile{S}"] = f.vec(corner_wide, (0.45 * sx, 0.75, -0.25))
        lateral = _smooth((sx * rel_x - 0.6) / 1.6)
        # corners down AND out (FROWN_OUT x the drop): FaceLandmarker pulls a dropped corner inward (read as
        # pucker) unless the corner also moves outward; a chin push on the lower lip reads as mouthShrugLower.
        # Its landmark network is not mirror-symmetric: going out 1.0 and down 1.2, the right frown read 0.04-0.1
        # and the left 0.23-0.43 (the left one's render, flipped, reads like the right one: not the mesh, not the light)
        frown = f.vec(f.near(CORNER[side], 1.5) * sm * lateral, (FROWN_OUT * FROWN_DROP * sx, -FROWN_DROP, -0.05))
        D[f"mouthFrown{S}"] = frown
        # dimple: FaceLandmarker reads the lower lip beside the corner tightening UP with the corner
        # drawn back (not out: outward reads as smile/stretch)
        dimple = f.vec(corner, (-0.3 * sx, 0.3, -0.8))
        dimple += f.vec(lower_w * f.near(CORNER[side], 0.9) * sm, (0, 0.8, 0))
        D[f"mouthDimple{S}"] = dimple
        D[f"mouthStretch{S}"] = f.vec(corner_wide, (0.8 * sx, -0.45, -0.15))
        press = f.zeros()
        half = _smooth((sx * rel_x + 0.4) / 0.8)
        for rings in (M.LIP_LOWER_RINGS, M.LIP_UPPER_RINGS):
            for ring, frac in ((0, 0.55), (1, 0.4), (2, 0.2)):
                for a, b in zip(rings[ring][1:-1], rings[3][1:-1]):
                    press[a, 1] = frac * (f.V[b, 1] - f.V[a, 1]) * half[a]
        press[:, 0] += 0.6 * sx * corner
        press[:, 1] += 0.3 * corner          # pressed lips push the corner up a little
        press[:, 2] += -0.1 * corner
        D[f"mouthPress{S}"] = press
        D[f"mouthLowerDown{S}"] = _lower_down(f, side)
        D[f"mouthUpperUp{S}"] = f.vec(upper_w * _smooth((sx * rel_x + 0.8) / 1.6), (0, 0.9, 0.1))
        cheek = f.near(CHEEK[side], 1.3)
        D[f"cheekSquint{S}"] = f.vec(np.maximum(cheek, f.near(UNDER_EYE[side], 0.8)) * sm, (0, 0.7, 0.2))
        nostril = f.near(NOSTRIL[side], 1.0) * f.side(side, 0.6)
        sneer = f.vec(nostril, (0.08 * sx, 0.55, 0.1)) + f.vec(upper_w * _smooth((sx * rel_x + 0.5) / 1.0) * 0.3,
                                                               (0, 0.3, 0))
        D[f"noseSneer{S}"] = sneer
        b = BROW[side]
        brow_all = f.near(b["inner"] + b["mid"] + b["outer"], 0.9)
        inner = f.near(b["inner"], 1.0)
        outer = f.near(b["outer"], 1.0)
        # the pull toward the nose fades over BROW_DOWN_SOFT cm either side of the midline (over 0.6 cm it creased
        # the skin between the brows into a fold)
        brow_down = np.maximum(inner, brow_all * 0.7) * f.side(side, BROW_DOWN_SOFT)
        D[f"browDown{S}"] = f.vec(brow_down, (-0.3 * sx, -0.7, 0.1))
        D[f"browOuterUp{S}"] = f.vec(np.maximum(outer, brow_all * 0.3), (0, 0.7, 0))
        lids = _eye_lids(f, side)
        D[f"eyeBlink{S}"] = lids["blink"]
        D[f"eyeWide{S}"] = lids["wide"]
        D[f"eyeSquint{S}"] = lids["squint"]
        # gaze: In = toward the nose (-sx), Out = away (+sx); lids follow a little
        # a gain scales the gaze angle (up to GAZE_MAX_DEG), never the eyeball (a scaled rotation
        # delta swells the sphere)
        def rot(name, yaw, pitch):
            turn = min(g(name), GAZE_MAX_DEG / max(abs(yaw), abs(pitch)))
            return f.eye_rotation(side, yaw * turn, pitch * turn) / g(name)
        D[f"eyeLookIn{S}"] = rot(f"eyeLookIn{S}", -22.0 * sx, 0.0)
        D[f"eyeLookOut{S}"] = rot(f"eyeLookOut{S}", 22.0 * sx, 0.0)
        # looking up lifts the upper lid with the gaze (else the lid over the iris reads as squint)
        D[f"eyeLookUp{S}"] = rot(f"eyeLookUp{S}", 0.0, -25.0) + LOOK_UP_LID * lids["wide"] / g(f"eyeLookUp{S}")
        D[f"eyeLookDown{S}"] = rot(f"eyeLookDown{S}", 0.0, 22.0) \
            + LOOK_DOWN_LID * lids["down"] / g(f"eyeLookDown{S}")
    inner_both = f.near(BROW["left"]["inner"] + BROW["right"]["inner"], 1.0)
    D["browInnerUp"] = f.vec(inner_both, (0, 0.75, 0.0))
    # the lids stay where they are (a puff pulling the eye corners apart opens holes beside the eyeballs)
    eye_rings = M.EYE_LEFT_UPPER + M.EYE_LEFT_LOWER + M.EYE_RIGHT_UPPER + M.EYE_RIGHT_LOWER
    puff = f.near(CHEEK["left"] + CHEEK["right"], 1.6) * (1 - f.near((1, 4, 2, 0, 17), 1.5)) \
        * (1 - f.near(eye_rings, 1.0))
    n = np.zeros_like(f.V)
    n[:, 0] = np.sign(f.V[:, 0]) * 1.2
    n[:, 2] = 0.6
    D["cheekPuff"] = puff[:, None] * n
    missing = [n for n in schema.MODEL_NAMES if n not in D]
    if missing:
        raise RuntimeError(f"authoring lacks {missing}")
    return np.stack([D[n] for n in schema.MODEL_NAMES]).astype(np.float32)


def seal_lips(head: Head, deltas: np.ndarray) -> np.ndarray:
    """Write mouthClose into ``deltas`` [51,V,3] (gains applied, in place): the lower lip and the lower
    teeth ride back up jawOpen's path while the chin stays down, so that jawOpen = mouthClose = w
    closes the lips for any w. Returns ``deltas``."""
    f = _Fields(head)
    jaw = deltas[schema.MODEL_INDEX["jawOpen"]].astype(np.float64)
    lower = f.near(f.lower, 0.8) * f.lip_mask("lower")
    lower[f.corners] = 0.5
    close = -jaw * lower[:, None]
    close[f.h.parts["teeth_lower"]] = -jaw[f.h.parts["teeth_lower"]]
    deltas[schema.MODEL_INDEX["mouthClose"]] = close.astype(np.float32)
    return deltas
