"""Every one of the 51 shapes of the default face, at 1.0, moves the right region in the anatomically
right direction by a visible amount (ARKit's reference descriptions, FACS): measured on the geometry,
not through MediaPipe (which cannot read cheekPuff, cheekSquint, noseSneer, jawForward, mouthClose).

Rig space: +x = the subject's LEFT, +y up, +z toward the viewer. A row: (region, direction, cm) =
the mean displacement of the region's vertices projected on the direction is at least ``cm``.
"""
from __future__ import annotations

import numpy as np
import pytest

from emo3d import schema
from emo3d.avatar.authoring import BROW, CHEEK, CORNER, NOSTRIL

UP, DOWN, FWD, BACK = (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)
SX = {"Left": 1.0, "Right": -1.0}           # +x is the subject's left
CHIN = (152, 175, 199)
LIP_MID_UP, LIP_MID_LO = (0, 37, 267), (17, 84, 314)
UPPER_LID_MID = {"Left": (386, 385, 387), "Right": (159, 158, 160)}
LOWER_LID_MID = {"Left": (374, 373, 380), "Right": (145, 144, 153)}
UPPER_LIP_SIDE = {"Left": (267, 269, 270), "Right": (37, 39, 40)}
LOWER_LIP_SIDE = {"Left": (314, 405, 321), "Right": (84, 181, 91)}
NOSE_BRIDGE_SIDE = {"Left": (248, 281, 456), "Right": (3, 51, 236)}
EYE = "eye"                                  # the eyeball's front pole (gaze shapes rotate it)


def _side(S: str):
    s = S.lower()
    sx = SX[S]
    return {
        f"browDown{S}": [(BROW[s]["inner"] + BROW[s]["mid"], DOWN, 0.3)],
        f"browOuterUp{S}": [(BROW[s]["outer"], UP, 0.3)],
        f"cheekSquint{S}": [(CHEEK[s], UP, 0.35)],
        f"eyeBlink{S}": [(UPPER_LID_MID[S], DOWN, 0.5)],
        f"eyeSquint{S}": [(LOWER_LID_MID[S], UP, 0.1)],
        f"eyeWide{S}": [(UPPER_LID_MID[S], UP, 0.2)],
        f"eyeLookUp{S}": [((EYE, s), UP, 0.3)],
        f"eyeLookDown{S}": [((EYE, s), DOWN, 0.3)],
        f"eyeLookIn{S}": [((EYE, s), (-sx, 0, 0), 0.3)],
        f"eyeLookOut{S}": [((EYE, s), (sx, 0, 0), 0.3)],
        f"mouthDimple{S}": [(CORNER[s], BACK, 0.2)],
        f"mouthFrown{S}": [(CORNER[s], DOWN, 0.4)],
        f"mouthSmile{S}": [(CORNER[s], UP, 0.4), (CORNER[s], (sx, 0, 0), 0.1)],
        f"mouthStretch{S}": [(CORNER[s], (sx, 0, 0), 0.4)],
        f"mouthPress{S}": [(UPPER_LIP_SIDE[S][1:], DOWN, 0.05), (LOWER_LIP_SIDE[S][1:], UP, 0.05)],
        f"mouthLowerDown{S}": [(LOWER_LIP_SIDE[S], DOWN, 0.4)],
        f"mouthUpperUp{S}": [(UPPER_LIP_SIDE[S], UP, 0.4)],
        f"noseSneer{S}": [(NOSTRIL[s], UP, 0.35), (NOSE_BRIDGE_SIDE[S], UP, 0.1)],
    }


TABLE = {
    **_side("Left"), **_side("Right"),
    "browInnerUp": [(BROW["left"]["inner"] + BROW["right"]["inner"], UP, 0.3)],
    "cheekPuff": [(CHEEK["left"], (1, 0, 0), 0.3), (CHEEK["right"], (-1, 0, 0), 0.3)],
    "jawOpen": [(CHIN, DOWN, 1.0)],
    "jawForward": [(CHIN, FWD, 0.5)],
    "jawLeft": [(CHIN, (1, 0, 0), 0.5)],
    "jawRight": [(CHIN, (-1, 0, 0), 0.5)],
    "mouthClose": [(LIP_MID_LO, UP, 0.5)],
    "mouthFunnel": [(LIP_MID_UP + LIP_MID_LO, FWD, 0.3)],
    "mouthPucker": [(LIP_MID_UP + LIP_MID_LO, FWD, 0.3), (CORNER["left"], (-1, 0, 0), 0.15),
                    (CORNER["right"], (1, 0, 0), 0.15)],
    "mouthLeft": [(CORNER["left"] + CORNER["right"] + LIP_MID_UP + LIP_MID_LO, (1, 0, 0), 0.4)],
    "mouthRight": [(CORNER["left"] + CORNER["right"] + LIP_MID_UP + LIP_MID_LO, (-1, 0, 0), 0.4)],
    # a roll takes the lip's outer edge in toward the lip line and back (the red goes in over the teeth)
    "mouthRollLower": [(LIP_MID_LO, BACK, 0.2), (LIP_MID_LO, UP, 0.3)],
    "mouthRollUpper": [(LIP_MID_UP, BACK, 0.2), (LIP_MID_UP, DOWN, 0.25)],
    "mouthShrugLower": [(LIP_MID_LO + (18, 200), UP, 0.3)],
    "mouthShrugUpper": [(LIP_MID_UP, UP, 0.2)],
}


def test_the_table_covers_all_51_shapes():
    assert sorted(TABLE) == sorted(schema.MODEL_NAMES)


@pytest.fixture(scope="module")
def rig(face_landmarker):
    from emo3d.avatar.default import default_rig
    return default_rig()


@pytest.fixture(scope="module")
def head():
    from emo3d.avatar.mesh import build_head
    return build_head()


def _vertices(region, head) -> list:
    if isinstance(region, tuple) and region and region[0] == EYE:
        return [int(head.parts["eye_" + region[1]][0])]
    return list(region)


@pytest.mark.parametrize("name", schema.MODEL_NAMES)
def test_shape_moves_its_region_the_right_way(rig, head, name):
    d = rig.dense_deltas()[rig.target_names.index(name)]
    for region, direction, cm in TABLE[name]:
        u = np.asarray(direction, np.float64)
        u /= np.linalg.norm(u)
        got = float((d[_vertices(region, head)] @ u).mean())
        assert got >= cm, f"{name}: region {region} moves {got:.2f} cm along {direction}, want >= {cm}"


@pytest.mark.parametrize("name", [n for n in schema.MODEL_NAMES if n.endswith(("Left", "Right"))
                                  and n not in ("jawLeft", "jawRight", "mouthLeft", "mouthRight")])
def test_sided_shape_moves_its_own_side_more(rig, head, name):
    """The named side's region moves at least twice as far as the mirrored region."""
    other = name[:-4] + "Right" if name.endswith("Left") else name[:-5] + "Left"
    d = rig.dense_deltas()[rig.target_names.index(name)]
    for (region, _, _), (mirror, _, _) in zip(TABLE[name], TABLE[other]):
        own = np.linalg.norm(d[_vertices(region, head)], axis=1).mean()
        far = np.linalg.norm(d[_vertices(mirror, head)], axis=1).mean()
        assert own >= 2 * far, f"{name}: own side {own:.2f} cm vs other side {far:.2f} cm"


def test_mouth_close_keeps_the_lips_sealed_while_the_jaw_opens(rig):
    """mouthClose with jawOpen at the same weight (ARKit's use): the chin stays down, the lips meet."""
    from emo3d.avatar.mesh import LIP_LOWER_RINGS, LIP_UPPER_RINGS
    inner_up, inner_lo = list(LIP_UPPER_RINGS[3][1:-1]), list(LIP_LOWER_RINGS[3][1:-1])
    opened = rig.deform({"jawOpen": 0.6})[0]
    sealed = rig.deform({"jawOpen": 0.6, "mouthClose": 0.6})[0]
    gap = lambda V: float((V[inner_up, 1] - V[inner_lo, 1]).mean())  # noqa: E731
    assert gap(opened) > 0.3
    # the stretch limits of the skin between lip and chin keep the last ~15% open
    assert abs(gap(sealed)) < 0.2 * gap(opened), (gap(opened), gap(sealed))
    tip = [152, 175]
    assert sealed[tip, 1].mean() <= opened[tip, 1].mean() + 0.1


@pytest.fixture(scope="module")
def authored(face_landmarker):
    """(rest vertices, unit-gain deltas [51,V,3]) as authored, before the calibration's gains."""
    from emo3d.avatar.authoring import author, calm_rest_lids
    from emo3d.avatar.mesh import build_head
    head = calm_rest_lids(build_head())
    return head.vertices.astype(np.float64), author(head).astype(np.float64)


@pytest.mark.parametrize("name", [n for n in schema.MODEL_NAMES if n.endswith("Left")])
def test_sided_shapes_are_authored_as_mirror_images(authored, name):
    """Every Left shape is its Right twin mirrored (x -> -x) on the symmetric mesh: a difference between the
    two sides' readings comes from the calibration (gains, biases) or from MediaPipe, never the authoring."""
    V, D = authored
    flip = np.array([-1.0, 1.0, 1.0])
    d2 = ((V[:, None, :] - (V * flip)[None]) ** 2).sum(-1)
    mirror = d2.argmin(1)
    assert np.sqrt(d2.min(1)).max() < 1e-4, "the mesh is not mirror-symmetric"
    left = D[schema.MODEL_INDEX[name]]
    right = D[schema.MODEL_INDEX[name[:-4] + "Right"]]
    assert np.abs(left).max() > 0.2
    assert np.abs(left - right[mirror] * flip).max() < 1e-4, f"{name} is not its Right twin mirrored"


# the lower face's outline from jaw angle to jaw angle (MediaPipe's face oval, the subject's right to left)
JAW_OUTLINE = (132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361)


@pytest.mark.parametrize("name,sx", [("jawLeft", 1.0), ("jawRight", -1.0)])
def test_jaw_sideways_turns_the_whole_mandible(rig, name, sx):
    """jawLeft/Right (ARKit: the lower jaw moves to the side; a person's lateral excursion turns the mandible about
    the working side's condyle): the chin moves 1-2 cm to its side (a person's range, not the 2.2-2.6 cm that swung
    it out of the face's outline), the whole outline follows as one rigid piece (each point as far as it is in
    front of the condyle, so the move falls off smoothly from the chin to the jaw angles: no bulge, no corner)."""
    d = rig.dense_deltas()[rig.target_names.index(name)]
    rest = rig.vertices.astype(np.float64)
    idx = list(JAW_OUTLINE)
    dx = sx * d[idx, 0]
    chin = dx[JAW_OUTLINE.index(152)]
    assert 1.0 <= chin <= 2.0, f"{name}: the chin moves {chin:.2f} cm to its side"
    assert dx.min() >= -0.02 and dx.max() <= chin + 0.02, f"{name}: the outline bulges: {np.round(dx, 2)}"
    # rigid turn about a vertical axis: the sideways move is linear in the depth (z) along the whole outline
    # below the lip line (a fit's residual of a few mm), and the jaw angles still go with it
    body = slice(JAW_OUTLINE.index(172), JAW_OUTLINE.index(397) + 1)
    z = rest[idx, 2][body]
    fit = np.polyval(np.polyfit(z, dx[body], 1), z)
    assert np.abs(fit - dx[body]).max() <= 0.05 * chin, f"{name}: not one piece: {np.round(dx[body] - fit, 2)}"
    for angle in (172, 397):
        assert 0.1 * chin <= dx[JAW_OUTLINE.index(angle)] <= 0.7 * chin, f"{name}: jaw angle {angle}: {np.round(dx, 2)}"


def _inner_lip_gap(X):
    from emo3d.avatar.mesh import LIP_LOWER_RINGS, LIP_UPPER_RINGS
    return X[list(LIP_UPPER_RINGS[3][1:-1]), 1] - X[list(LIP_LOWER_RINGS[3][1:-1]), 1]


def test_funnel_parts_the_lips_in_a_rounded_opening(rig):
    """mouthFunnel (ARKit: lips forward and flared around a round opening, as in "who"): the lips come
    forward, the corners in, and the inner lips part most at the middle in a rounded (not pointed) opening."""
    d = rig.dense_deltas()[rig.target_names.index("mouthFunnel")]
    rest = rig.vertices.astype(np.float64)
    gap = _inner_lip_gap(rest + d) - _inner_lip_gap(rest)
    mid = len(gap) // 2
    assert gap[mid] >= 0.6, f"the opening is {gap[mid]:.2f} cm tall"
    # an ellipse is still 0.87 of its height half way to the corners; a diamond 0.5
    for q in (mid // 2, mid + (len(gap) - mid) // 2):
        assert gap[q] >= 0.6 * gap[mid], f"pointed opening: {np.round(gap, 2)}"
    assert d[CORNER["left"][0], 0] <= -0.3 and d[CORNER["right"][0], 0] >= 0.3   # the corners come in
    assert d[list(LIP_MID_UP + LIP_MID_LO), 2].min() >= 0.6                       # the lips forward


@pytest.mark.parametrize("name", ["mouthRollUpper", "mouthRollLower"])
def test_a_roll_keeps_the_lips_sealed(rig, name):
    """The other lip comes to meet the rolled one: no gap opens between them (the upper teeth showed through
    one). The rolled lip's inner edge is inside the mouth, behind the other lip: the gap may be negative."""
    d = rig.dense_deltas()[rig.target_names.index(name)]
    rest = rig.vertices.astype(np.float64)
    gap = _inner_lip_gap(rest + d)
    mid = len(gap) // 2
    assert gap[mid - 2:mid + 3].max() <= 0.05, f"{name}: the lips part by {np.round(gap, 2)} cm"


@pytest.mark.parametrize("name,sx", [("mouthLowerDownLeft", 1.0), ("mouthLowerDownRight", -1.0)])
def test_lower_down_pulls_its_half_of_the_lip_down_whole_and_bares_the_lower_teeth(rig, head, name, sx):
    """mouthLowerDown (FACS AU16 on one side): the lower lip's own half comes down as a piece, its rings (outer edge
    -> inner edge) staying in order in every column (they crossed into a torn, jagged edge), the corner joined to
    the upper lip, the other half nearly still; the lower teeth on that side come down with it (shown, not gum)."""
    from emo3d.avatar.mesh import LIP_LOWER_RINGS
    d = rig.dense_deltas()[rig.target_names.index(name)].astype(np.float64)
    X = rig.vertices.astype(np.float64) + d
    Y = np.array([X[list(r), 1] for r in LIP_LOWER_RINGS])            # [ring, column]
    # (by at most half a millimetre: the compose fit's change; the old shape crossed them by up to 1.7 mm)
    assert (np.diff(Y, axis=0) >= -0.05).all(), f"{name}: the lip's rings cross: {np.round(np.diff(Y, axis=0), 2)}"
    outer = list(LIP_LOWER_RINGS[0])
    drop = -d[outer, 1]
    rel = sx * (rig.vertices[outer, 0] - rig.vertices[outer, 0].mean())
    rel /= np.abs(rel).max()                                          # -1 the other corner, 1 its own
    assert drop[rel > 0].max() >= 1.0, f"{name}: the lip comes down {drop[rel > 0].max():.2f} cm"
    # the middle comes along (ARKit's half-lip shapes meet there); the other half a third of the way on far less
    other = drop[rel < -0.34]
    assert other.max() <= 0.3 * drop[rel > 0].max(), f"{name}: the other half drops {np.round(drop, 2)}"
    far = outer[1:3] if sx > 0 else outer[-3:-1]                       # the other half, beside its corner
    assert np.abs(d[far, 1]).max() <= 0.1 * drop.max(), f"{name}: the other side drops {np.round(drop, 2)}"
    corner = outer[-1] if sx > 0 else outer[0]
    assert np.linalg.norm(d[corner]) <= 0.3, f"{name}: the corner leaves the upper lip by {np.round(d[corner], 2)}"
    teeth = head.parts["teeth_lower"]
    tx = sx * rig.vertices[teeth, 0]
    assert d[teeth[tx > 0.5], 1].mean() <= -0.3, f"{name}: the lower teeth stay behind the upper ones"
    assert d[teeth[tx < -0.5], 1].mean() >= -0.1, f"{name}: the other side's lower teeth drop"


@pytest.mark.parametrize("name", ["mouthLeft", "mouthRight"])
def test_mouth_sideways_carries_the_teeth_behind_the_lips(rig, head, name):
    """mouthLeft/Right: the mouth's inside (teeth, tongue) slides with the lips; left behind, the side teeth poked
    through the thin skin beside the trailing corner."""
    d = rig.dense_deltas()[rig.target_names.index(name)]
    lips = float(d[list(LIP_MID_UP + LIP_MID_LO), 0].mean())
    for part in ("teeth_upper", "teeth_lower", "tongue"):
        got = float(d[head.parts[part], 0].mean())
        assert abs(got - lips) <= 0.15 * abs(lips), f"{name}: the {part} move {got:.2f} cm, the lips {lips:.2f}"
