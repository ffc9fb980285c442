"""The whole default head (emo3d.avatar.head): the scalp stitched to the face without a seam, nothing of
the head turns over or opens at any expression, ears/neck/hair where a person has them, modelled teeth
that move with the jaw, a tongue that tongueOut pushes out, lids that cover the eyeballs in a blink."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from emo3d import schema

BG = (255, 0, 255)
HEAD_PARTS = ("scalp", "ear_left", "ear_right", "neck")


@pytest.fixture(scope="module")
def rig(face_landmarker):
    from emo3d.avatar.default import default_rig
    return default_rig()


@pytest.fixture(scope="module")
def whole(face_landmarker):
    from emo3d.avatar.authoring import calm_rest_lids
    from emo3d.avatar.head import build_whole_head
    from emo3d.avatar.mesh import build_head
    return build_whole_head(calm_rest_lids(build_head()))


def _normals(V, tris):
    V = np.asarray(V, np.float64)
    return np.cross(V[..., tris[:, 1], :] - V[..., tris[:, 0], :], V[..., tris[:, 2], :] - V[..., tris[:, 0], :])


def _cases(rig) -> np.ndarray:
    """[N,T] rig weights: neutral, every target at 1.0 (tongueOut included), 60 random sparse mixes."""
    T = rig.n_targets
    rows = [np.zeros(T)] + [np.eye(T)[t] for t in range(T)]
    rng = np.random.default_rng(3)
    for _ in range(60):
        w = np.zeros(T)
        idx = rng.choice(T, size=rng.integers(2, 5), replace=False)
        w[idx] = rng.uniform(0.3, 1.0, idx.size)
        rows.append(w)
    return np.asarray(rows, np.float32)


def _deform(rig, W):
    from native.reference import deform_sparse
    return deform_sparse(rig.vertices, rig.offsets, rig.indices, rig.values, W)


def test_the_boundary_loop_is_the_face_outline(whole):
    from emo3d.avatar.mesh import canonical_mesh
    m = canonical_mesh()
    loop = whole.boundary
    assert len(loop) == len(set(loop.tolist())) >= 30
    assert (loop < len(m.vertices)).all()
    assert m.vertices[loop[0], 1] == m.vertices[loop, 1].max()          # starts at the top of the forehead
    # every loop edge is used by exactly one canonical triangle (it is the open outline)
    edges = {}
    for t in m.triangles:
        for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0])):
            key = (min(a, b), max(a, b))
            edges[key] = edges.get(key, 0) + 1
    for a, b in zip(loop, np.roll(loop, -1)):
        assert edges[(min(a, b), max(a, b))] == 1


def test_scalp_closes_the_face_without_a_seam(whole):
    """Face + scalp form a closed surface (but for the eye and mouth openings): after merging vertices at the
    same position every outline edge of the face is shared with a scalp triangle, and no edge of the scalp is
    open (the pole's copies coincide)."""
    h = whole.head
    scalp = h.parts["scalp"]
    tris = h.triangles[np.isin(h.triangles, scalp).any(1) | (h.triangles < h.n_face).all(1)]
    _, canon = np.unique(np.round(h.vertices.astype(np.float64), 6), axis=0, return_inverse=True)
    canon = canon.reshape(-1)
    count = {}
    for t in canon[tris]:
        for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0])):
            if a != b:
                key = (min(a, b), max(a, b))
                count[key] = count.get(key, 0) + 1
    open_edges = [e for e, c in count.items() if c == 1]
    face_openings = {canon[i] for i in range(h.n_face)}
    # the only open edges left are the eye and mouth openings of the face (not the outline, not the scalp)
    outline = {canon[i] for i in whole.boundary}
    for a, b in open_edges:
        assert a in face_openings and b in face_openings
        assert not (a in outline and b in outline), "the face outline is open: the scalp does not meet it"
    # the scalp's outward normals point away from the skull
    from emo3d.avatar.head import SKULL_CENTER
    st = h.triangles[np.isin(h.triangles, scalp).any(1)]
    n = _normals(h.vertices, st)
    c = h.vertices[st].mean(1) - SKULL_CENTER
    area = np.linalg.norm(n, axis=1) > 1e-9
    assert ((n * c).sum(1)[area] > 0).all()


def test_head_parts_sit_where_a_person_has_them(whole):
    h = whole.head
    V = h.vertices
    face = V[:h.n_face]
    top = V[h.parts["scalp"], 1].max()
    assert top > face[:, 1].max() + 3.0                                    # a crown above the forehead
    assert V[h.parts["scalp"], 2].min() < face[:, 2].min() - 8.0           # a back of the head
    for side, sgn in (("left", 1), ("right", -1)):
        ear = V[h.parts["ear_" + side]]
        assert (sgn * ear[:, 0]).min() > 6.0                                # on its own side, out at the skull
        eye_y = h.eye_centers[side][1]
        assert ear[:, 1].min() < eye_y < ear[:, 1].max()                    # spans the eye's height
        assert ear[:, 2].mean() < face[:, 2].min()                          # behind the face
    neck = V[h.parts["neck"]]
    assert neck[:, 1].min() < face[:, 1].min() - 5.0                        # below the chin
    assert np.ptp(neck[:, 0]) < np.ptp(V[h.parts["scalp"], 0])              # narrower than the head
    # hair on the crown and the back, none on the face or the boundary ring
    assert whole.hair[h.parts["scalp"]][V[h.parts["scalp"], 1] > face[:, 1].max() + 2].min() > 0.9
    assert whole.hair[whole.boundary].max() == 0


def test_every_head_triangle_keeps_its_orientation_at_every_expression(rig, whole):
    """Scalp, ears and neck never turn over (the scalp's first rings follow the face with a falloff)."""
    h = whole.head
    new = np.concatenate([h.parts[p] for p in HEAD_PARTS])
    tris = rig.triangles[np.isin(rig.triangles, new).any(1)].astype(np.int64)
    n0 = _normals(rig.vertices, tris)
    ok = np.linalg.norm(n0, axis=1) > 1e-9
    W = _cases(rig)
    n1 = _normals(_deform(rig, W), tris)
    flipped = ((n1 * n0[None]).sum(-1) <= 0) & ok[None]
    assert flipped.sum() == 0, f"{flipped.any(1).sum()} cases turn head triangles over"


def test_scalp_follows_the_face_outline(rig, whole):
    """The boundary ring is the face's own vertices; the next ring takes most of their displacement, the
    rings far back none (jawOpen moves the chin, the scalp under it follows)."""
    from emo3d.avatar.head import FOLLOW_RINGS
    jaw = np.zeros(rig.n_targets, np.float32)
    jaw[rig.target_names.index("jawOpen")] = 1.0
    d = _deform(rig, jaw[None])[0] - rig.vertices
    N = len(whole.boundary)
    ring1 = whole.head.parts["scalp"][:N]
    far = whole.head.parts["scalp"][int(np.ceil(FOLLOW_RINGS)) * N:]
    moved = np.linalg.norm(d[whole.boundary], axis=1)
    assert moved.max() > 0.5
    k = moved > 0.5
    ratio = np.linalg.norm(d[ring1], axis=1)[k] / moved[k]
    assert (ratio > 0.5).all() and (ratio <= 1.0 + 1e-6).all()
    assert np.abs(d[far]).max() == 0.0
    for p in ("ear_left", "ear_right", "neck"):
        assert np.abs(d[whole.head.parts[p]]).max() == 0.0


def test_whole_head_renders_without_holes_from_any_side(rig):
    """Front, three-quarter and profile views of every target at 1.0: no background enclosed by the head."""
    from native.render import Renderer, RenderOptions
    r = Renderer(dataclasses.replace(rig, frame_box=None), RenderOptions(width=128, height=128, background=BG))
    W = _cases(rig)[:rig.n_targets + 1]
    for pose in ((0, 0, 0), (40, 0, 0), (90, 0, 0), (180, 0, 0)):
        imgs = r.render_vertices(_deform(rig, W), pose=pose)
        for i, im in enumerate(imgs):
            bg = (im == np.array(BG, np.uint8)).all(-1)
            enclosed = int((ndimage.binary_fill_holes(~bg) & bg).sum())
            name = "neutral" if i == 0 else rig.target_names[i - 1]
            assert enclosed == 0, f"{name} at pose {pose}: {enclosed} background pixels inside the head"


def test_teeth_are_arches_and_the_lower_one_moves_with_the_jaw(rig, whole):
    from emo3d.avatar.mesh import TEETH_PER_ARCH
    h = whole.head
    up, lo = h.parts["teeth_upper"], h.parts["teeth_lower"]
    for part in (up, lo):
        P = h.vertices[part]
        assert np.ptp(P[:, 2]) > 0.8                     # curved back: an arch, not a strip
    assert TEETH_PER_ARCH >= 8
    jaw = np.zeros(rig.n_targets, np.float32)
    jaw[rig.target_names.index("jawOpen")] = 1.0
    d = _deform(rig, jaw[None])[0] - rig.vertices
    assert np.abs(d[up]).max() == 0.0                    # the upper teeth sit in the skull
    assert d[lo, 1].mean() < -1.0                        # the lower ones drop with the jaw
    # at rest the upper incisors come down over the lower ones (the bite), behind the lips
    assert h.vertices[up, 1].min() < h.vertices[lo, 1].max()
    assert h.vertices[up, 2].max() < h.vertices[13, 2]


def test_a_lifted_upper_lip_shows_gum_not_the_dark_mouth(rig, whole):
    """mouthUpperUp (both sides at 1.0) lifts the upper lip over the teeth: the gum reaches higher than
    the lifted lip's inner edge, so the gum fills the gap behind the lip (a short gum left a dark patch)."""
    from emo3d.avatar.mesh import LIP_UPPER_RINGS
    up = whole.head.parts["teeth_upper"]
    lifted = rig.deform({"mouthUpperUpLeft": 1.0, "mouthUpperUpRight": 1.0})[0]
    inner = list(LIP_UPPER_RINGS[3][3:-3])                  # the inner edge over the front teeth
    front = up[np.abs(whole.head.vertices[up, 0]) < 1.0]
    assert lifted[inner, 1].max() < whole.head.vertices[front, 1].max() - 0.1


def test_tongue_out_pushes_the_tongue_past_the_lips(rig, whole):
    assert rig.target_names[-1] == "tongueOut" and rig.target_names[:-1] == schema.MODEL_NAMES
    t = whole.head.parts["tongue"]
    rest = rig.deform({})[0]
    out = rig.deform({}, extras={"tongueOut": 1.0})[0]
    lip_front = rest[:whole.head.n_face][[0, 17, 13, 14], 2].max()   # lip landmarks 0/17 (outer) 13/14 (inner)
    assert rest[t, 2].max() < lip_front
    assert out[t, 2].max() > lip_front + 0.5
    assert np.array_equal(rig.deform({"tongueOut": 0.0})[0], rest)


def test_blink_lids_cover_the_eyeballs(rig):
    """With the eyeball swatch painted pure green, a neutral face shows a lot of it and a full blink at most
    a hairline along the closed lids (the lid rows meet at slightly different depths)."""
    from emo3d.avatar.head import mask_uv_to_atlas
    from emo3d.avatar.mesh import ATLAS_EYE
    from native.render import Renderer, RenderOptions
    tex = rig.texture.copy()
    H, W = tex.shape[:2]
    c = mask_uv_to_atlas(np.array([[ATLAS_EYE[0], ATLAS_EYE[1]]], np.float32))[0] * [W - 1, H - 1]
    half = int(0.26 * W / 3)                                          # the eye swatch is a quarter of the mask atlas
    x0, y0 = int(c[0]) - half, int(c[1]) - half
    tex[max(y0, 0):y0 + 2 * half, max(x0, 0):x0 + 2 * half] = (0, 255, 0)
    r = Renderer(dataclasses.replace(rig, texture=tex), RenderOptions(width=256, height=256))

    def green(img):
        return int(((img[..., 1] > 150) & (img[..., 0] < 80) & (img[..., 2] < 80)).sum())

    assert green(r.render({})) > 200
    assert green(r.render({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0})) <= 16


def test_head_texture_has_hair_on_the_crown_and_skin_on_the_neck(rig, whole):
    from emo3d.avatar.head_texture import HAIR
    h = whole.head
    tex = rig.texture.astype(np.float64)
    H, W = tex.shape[:2]

    def colour(idx):
        px = np.round(h.uvs[idx] * [W - 1, H - 1]).astype(int)
        return tex[px[:, 1], px[:, 0]].mean(0)

    crown = h.parts["scalp"][np.argsort(h.vertices[h.parts["scalp"], 1])[-20:]]
    assert np.abs(colour(crown) - HAIR).max() < 40
    neck = colour(h.parts["neck"])
    forehead = colour(whole.boundary[:3])
    assert np.abs(neck - forehead).max() < 40 and neck[0] > neck[2] + 30        # skin, not hair
