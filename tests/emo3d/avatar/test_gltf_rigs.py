"""The glTF reader on rigs built in-test (tests/support/glb.py): textured (PNG/JPEG/WebP), several
materials with KHR_texture_transform, quantized + sparse, meshopt-compressed, skinned full body,
Blender and CC4 names, VRM 0.x and 1.0 - and the ICT-FaceKit rig. For each: it loads, the face
fills >= 30% of the default frame, the textures show, and jawOpen / smile / blink / browDown move
the right region on the right side (the subject's left is the viewer's right)."""
from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from emo3d.avatar import framing
from emo3d.avatar.gltf import SUPPORTED_EXTENSIONS, load_gltf
from emo3d.avatar import vrm
from emo3d.errors import InvalidInputError
from native.render import Renderer, RenderOptions
from support.glb import GlbBuilder, face_grid, face_rig
from support.rigs import TEST_RIGS

SIZE = 128
BG = (0, 0, 0)
FACE_SHAPES = ("jawOpen", "mouthSmileLeft", "mouthSmileRight", "eyeBlinkLeft", "eyeBlinkRight",
               "browDownLeft", "browDownRight")


@pytest.fixture(scope="module")
def rigs(tmp_path_factory):
    d = tmp_path_factory.mktemp("rigs")
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # no unknown-name warning from any of them
        for name, kw in TEST_RIGS.items():
            out[name] = load_gltf(face_rig(d / f"{name}.glb", **kw))
    return out


def _render(rig, w):
    return Renderer(rig, RenderOptions(width=SIZE, height=SIZE, background=BG)).render(w).astype(np.int32)


def _skin_box(img):
    """Bounding box (x0, y0, x1, y1) of skin-coloured pixels (red over blue: the face, not the shirt)."""
    m = (img[..., 0] > img[..., 2] + 25) & (img[..., 0] > 60)
    ys, xs = np.nonzero(m)
    return xs.min(), ys.min(), xs.max(), ys.max(), m


@pytest.mark.parametrize("name", list(TEST_RIGS))
def test_rig_loads_with_face_shapes(rigs, name):
    rig = rigs[name]
    assert set(FACE_SHAPES) <= set(rig.target_names), rig.target_names
    assert rig.unknown == ()
    assert rig.texture is not None and rig.uvs is not None
    assert rig.face_box is not None and rig.head_box is not None


@pytest.mark.parametrize("name", list(TEST_RIGS))
def test_face_fills_the_default_frame_and_textures_show(rigs, name):
    img = _render(rigs[name], {})
    x0, y0, x1, y1, skin = _skin_box(img)
    assert skin.mean() >= 0.30, f"the face fills {skin.mean():.0%} of the frame"
    upper = img[y0:(y0 + y1) // 2, x0:x1]
    blue_iris = (upper[..., 2] > upper[..., 0] + 60).sum()
    brow = ((upper[..., 0] < 110) & (upper[..., 0] > upper[..., 2] + 15)).sum()
    lower = img[(y0 + y1) // 2:y1, x0:x1]
    lips = ((lower[..., 0] > 120) & (lower[..., 1] < 90)).sum()
    assert blue_iris >= 4 and brow >= 10 and lips >= 10, (blue_iris, brow, lips)


@pytest.mark.parametrize("name", list(TEST_RIGS))
@pytest.mark.parametrize("shape,region", [
    ("jawOpen", "lower-centre"), ("mouthSmileLeft", "lower-right"), ("mouthSmileRight", "lower-left"),
    ("eyeBlinkLeft", "upper-right"), ("eyeBlinkRight", "upper-left"), ("browDownLeft", "upper-right"),
    ("browDownRight", "upper-left"),
])
def test_shape_moves_its_region_on_its_side(rigs, name, shape, region):
    rig = rigs[name]
    neutral = _render(rig, {})
    x0, y0, x1, y1, _ = _skin_box(neutral)
    diff = np.abs(_render(rig, {shape: 1.0}) - neutral).sum(-1) > 40
    ys, xs = np.nonzero(diff)
    assert len(xs) >= 8, f"{shape} changed {len(xs)} pixels"
    cx, cy = (xs.mean() - x0) / (x1 - x0), (ys.mean() - y0) / (y1 - y0)
    vert, horiz = region.split("-")
    assert (cy > 0.55) if vert == "lower" else (cy < 0.45), (cx, cy)
    if horiz == "centre":
        assert abs(cx - 0.5) < 0.1, (cx, cy)
    else:   # the subject's left is the viewer's right
        assert (cx > 0.55) if horiz == "right" else (cx < 0.45), (cx, cy)


def test_full_body_is_framed_on_the_face_and_framing_modes(rigs):
    rig = rigs["skinned_full_body"]
    full = np.stack([rig.vertices.min(0), rig.vertices.max(0)])
    assert full[1, 1] - full[0, 1] > 3 * (rig.face_box[1, 1] - rig.face_box[0, 1])     # a tall body
    assert rig.frame_box is not None and framing.face_fraction(rig.face_box, rig.frame_box) >= 0.3
    assert framing.face_fraction(rig.face_box, full) < 0.1
    whole = framing.with_framing(rig, "full")
    assert whole.frame_box is None
    _, _, _, _, skin = _skin_box(_render(whole, {}))
    assert skin.mean() < 0.1                                         # the face is small in a full shot
    head = framing.with_framing(rig, "head").frame_box
    face = framing.with_framing(rig, "face").frame_box
    assert (head[1] - head[0])[1] >= (rig.face_box[1] - rig.face_box[0])[1]
    assert (face[1] - face[0])[1] > (rig.face_box[1] - rig.face_box[0])[1]
    with pytest.raises(InvalidInputError, match="face, head, full"):
        framing.with_framing(rig, "torso")


def test_head_only_rig_keeps_the_whole_mesh_in_frame(rigs):
    assert rigs["textured"].frame_box is None          # the face already fills the frame


def test_skinned_mesh_is_placed_by_its_joints_not_its_node(rigs, tmp_path):
    rig = rigs["skinned_full_body"]
    v, _, _ = face_grid()
    assert np.abs(rig.vertices).max() < 20                           # the node's translation 100 is ignored
    assert rig.vertices[:, 1].max() == pytest.approx(v[:, 1].max(), abs=1e-4)
    # a bind pose that moves the head: Head's inverse bind matrix off by 0.5 in y moves the face by 0.5
    from support import glb as G
    p = face_rig(tmp_path / "s.glb", skinned=True)
    import json
    import struct
    data = p.read_bytes()
    jl = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + jl])
    doc["nodes"][doc["skins"][0]["joints"][2]]["translation"] = [0, 0.7, 0]   # Head 0.5 higher than bound
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    rest = data[20 + jl:]
    q = tmp_path / "moved.glb"
    q.write_bytes(struct.pack("<4sII", b"glTF", 2, 20 + len(js) + len(rest)) + struct.pack("<II", len(js), 0x4E4F534A)
                  + js + rest)
    moved = load_gltf(q)
    assert moved.vertices[:, 1].max() == pytest.approx(v[:, 1].max() + 0.5, abs=1e-4)
    assert G is not None


def test_head_box_comes_from_the_head_bone(rigs):
    rig = rigs["skinned_full_body"]
    # every face vertex is skinned to Head, the body to nothing: the head box is the face plane
    v, _, _ = face_grid()
    np.testing.assert_allclose(rig.head_box[:, :2], [v[:, :2].min(0), v[:, :2].max(0)], atol=1e-4)


def test_transparent_card_left_out_and_atlas_packs_materials(rigs):
    plain, multi = rigs["textured"], rigs["multi_material_webp"]
    # the lash card (alphaMode MASK, mostly transparent) is not drawn: no vertex at z = 0.7
    assert not np.any(np.isclose(multi.vertices[:, 2], 0.7))
    # skin, eyes (own texture) and lips (solid colour) share one atlas; UVs stay inside it
    assert multi.texture.shape[0] > plain.texture.shape[0]
    assert multi.uvs.min() >= 0 and multi.uvs.max() <= 1


def test_tongue_out_is_a_known_name(rigs):
    for rig in rigs.values():
        assert "tongueOut" not in rig.unknown


def test_vrm_presets_drive_arkit_scores(rigs):
    for name in ("vrm0_full_body", "vrm1"):
        rig = rigs[name]
        # smile shapes came from the 'happy' preset: half of it each, so both smiles = the preset
        d = rig.dense_deltas()
        both = d[rig.target_names.index("mouthSmileLeft")] + d[rig.target_names.index("mouthSmileRight")]
        v, _, _ = face_grid()
        from support.glb import face_deltas
        want = face_deltas(v)
        np.testing.assert_allclose(both[:len(v)], want["mouthSmileLeft"] + want["mouthSmileRight"], atol=1e-5)
        jaw = d[rig.target_names.index("jawOpen")][:len(v)]
        np.testing.assert_allclose(jaw, want["jawOpen"], atol=1e-5)


def test_vrm_preset_weights_document_the_retarget():
    from emo3d import schema
    s = np.zeros(52, np.float32)
    s[schema.MEDIAPIPE_INDEX["mouthSmileLeft"]] = 1
    s[schema.MEDIAPIPE_INDEX["mouthSmileRight"]] = 1
    s[schema.MEDIAPIPE_INDEX["jawOpen"]] = 0.5
    s[schema.MEDIAPIPE_INDEX["eyeLookOutLeft"]] = 1
    s[schema.MEDIAPIPE_INDEX["eyeLookInRight"]] = 1
    w = vrm.preset_weights(s)
    assert w["happy"] == 1 and w["aa"] == 0.5 and w["lookLeft"] == 1 and w["angry"] == 0
    # a rig with only 'blink' (no blinkLeft/Right): each eye's blink drives half of it
    w = vrm.preset_weights(np.eye(52)[schema.MEDIAPIPE_INDEX["eyeBlinkLeft"]], have=("blink",))
    assert w == {"blink": 0.5}


def test_vrm_head_and_lookat(tmp_path):
    import json
    import struct
    for ver in ("0", "1"):
        data = face_rig(tmp_path / f"v{ver}.glb", vrm=ver, skinned=True).read_bytes()
        jl = struct.unpack_from("<I", data, 12)[0]
        doc = json.loads(data[20:20 + jl])
        assert doc["nodes"][vrm.head_node(doc)]["name"] == "Head"
        assert vrm.look_at(doc)["type"] == "expression"
        assert vrm.faces_minus_z(doc) == (ver == "0")
        rig = load_gltf(tmp_path / f"v{ver}.glb")
        nose = rig.vertices[np.argmax(rig.vertices[:, 2])]
        assert nose[2] > 0.4 and abs(nose[0]) < 0.1      # facing the camera (+z) in both versions


@pytest.mark.parametrize("ext,hint", [("KHR_draco_mesh_compression", "meshopt"),
                                      ("KHR_texture_basisu", "png"), ("EXT_made_up", "re-export")])
def test_unsupported_required_extension_is_named(tmp_path, ext, hint):
    p = face_rig(tmp_path / "x.glb", extra_required=[ext])
    with pytest.raises(InvalidInputError, match=ext) as e:
        load_gltf(p)
    assert hint in str(e.value)
    assert "KHR_mesh_quantization" in SUPPORTED_EXTENSIONS


def test_meshopt_corrupt_stream_is_a_clear_error(tmp_path):
    p = face_rig(tmp_path / "m.glb", meshopt=True)
    data = bytearray(p.read_bytes())
    jl = struct_len = int.from_bytes(data[12:16], "little")
    start = 20 + jl + 8
    data[start + 1:start + 200] = bytes(199)     # zero the first compressed stream's body
    (tmp_path / "bad.glb").write_bytes(bytes(data))
    with pytest.raises(InvalidInputError, match="EXT_meshopt_compression"):
        load_gltf(tmp_path / "bad.glb")
    assert struct_len > 0


def test_unknown_names_warn_once_with_close_matches(tmp_path):
    p = face_rig(tmp_path / "u.glb", names={"jawOpen": "jawOpn", "mouthSmileLeft": "mouthSmil_L"})
    with pytest.warns(Warning) as rec:
        rig = load_gltf(p)
    msgs = [str(r.message) for r in rec if "name map" in str(r.message)]
    assert len(msgs) == 1 and "close: jawOpen" in msgs[0] and "mouthSmileLeft" in msgs[0]
    assert set(rig.unknown) == {"jawOpn", "mouthSmil_L"}


def test_unsided_source_is_split_by_side(tmp_path):
    rig = load_gltf(face_rig(tmp_path / "s.glb", unsided_smile=True))
    d = rig.dense_deltas()
    left = d[rig.target_names.index("mouthSmileLeft")]
    right = d[rig.target_names.index("mouthSmileRight")]
    ml, mr = np.linalg.norm(left, axis=1) > 1e-4, np.linalg.norm(right, axis=1) > 1e-4
    assert ml.any() and mr.any()
    # +x is the subject's left; the split ramps over 5% of the moved width (0.1 here) each side of the middle
    assert (rig.vertices[ml, 0] > -0.1).all() and (rig.vertices[mr, 0] < 0.1).all()
    from support.glb import face_deltas
    want = face_deltas(rig.vertices)
    np.testing.assert_allclose(left + right, want["mouthSmileLeft"] + want["mouthSmileRight"], atol=1e-5)


def test_texture_transform_and_builder_round_trip(tmp_path):
    b = GlbBuilder()
    pos = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, :4] = (255, 0, 0)
    img[:, 4:] = (0, 0, 255)
    # rotation pi about the uv origin then offset (1, 1): u -> 1 - u, v -> 1 - v (the image mirrored)
    m = b.material(texture=b.texture(img), transform={"rotation": float(np.pi), "offset": [1, 1]})
    prim = {"attributes": {"POSITION": b.accessor(pos), "TEXCOORD_0": b.accessor(uv)},
            "indices": b.accessor(np.array([0, 1, 2, 0, 2, 3], np.uint16), 5123, index=True), "material": m}
    p = b.write(tmp_path / "t.glb", [b.node(mesh=b.mesh([prim]))])
    rig = load_gltf(p)
    np.testing.assert_allclose(rig.uvs, 1 - uv, atol=1e-6)
    out = Renderer(rig, RenderOptions(width=16, height=16, ambient=1, diffuse=0, margin=0)).render({})
    assert out[8, 2, 2] > 200 and out[8, 13, 0] > 200        # blue now on the left, red on the right


def test_ict_rig_loads_fast_and_frames_its_face(ict_rig_path):
    t = time.perf_counter()
    rig = load_gltf(ict_rig_path)
    took = time.perf_counter() - t
    assert rig.n_vertices > 20000 and rig.n_targets == 51
    assert took < 3.0, f"{took:.2f} s (the floor is 1 s on an idle machine; this one is shared)"
    full = np.stack([rig.vertices.min(0), rig.vertices.max(0)])
    box = full if rig.frame_box is None else rig.frame_box
    assert framing.face_fraction(rig.face_box, box) >= 0.3


def test_head_pose_turns_the_head_bone_not_the_body(rigs):
    from emo3d import avatar
    from emo3d.avatar.posing import head_posed_vertices
    rig = rigs["skinned_full_body"]
    assert rig.head_weights is not None and rig.head_pivot[1] == pytest.approx(-1.4)   # the Head joint
    assert rigs["textured"].head_weights is None                                      # a head alone
    v = head_posed_vertices(rig, {}, (25.0, 0.0, 0.0))[0]
    body = rig.head_weights < 0.5
    np.testing.assert_allclose(v[body], rig.vertices[body], atol=1e-6)                # the body stays
    face = ~body
    assert np.abs(v[face] - rig.vertices[face]).max() > 0.2                           # the face turned
    # +yaw turns the face toward the subject's left (+x): the nose side (front, z > 0) moves to +x
    front = face & (rig.vertices[:, 2] > 0.4)
    assert (v[front, 0] - rig.vertices[front, 0]).mean() > 0.05
    straight = avatar.render({}, size=96, rig=rig)
    turned = avatar.render({}, size=96, rig=rig, pose=(25.0, 0.0, 0.0))
    assert turned.shape == (96, 96, 3)
    shirt = straight[..., 2] > straight[..., 0] + 40
    shirt[:88] = False                                  # the shirt below the chin (not the blue irises)
    assert shirt.sum() > 100
    same = (turned == straight).all(-1)[shirt].mean()
    assert same > 0.9, f"only {same:.0%} of the shirt is unchanged"   # the body did not turn (a whole-model
                                                                       # turn re-shades all of it)
    assert np.abs(turned.astype(int) - straight).sum(-1).mean() > 5                  # the face did


@pytest.mark.parametrize("name", list(TEST_RIGS))
def test_test_rigs_are_valid_gltf(tmp_path, name):
    from support.gltf_validator import validate
    report = validate(face_rig(tmp_path / f"{name}.glb", **TEST_RIGS[name]))
    assert report["numErrors"] == 0, report
    # allowed warnings: the skinned mesh node's transform (there on purpose: the reader must ignore it)
    # and VRM 0.x's extension name "VRM" (not in the VENDOR_name form; every VRM 0.x file has it)
    codes = {m["code"] for m in report["messages"] if m["severity"] == 1}
    assert codes <= {"NODE_SKINNED_MESH_LOCAL_TRANSFORMS", "INVALID_EXTENSION_NAME_FORMAT"}, report


def test_tongue_out_target_is_kept_and_driven_by_name_or_extras(rigs):
    rig = rigs["cc4_names"]                      # the source name is "Tongue_Out"
    assert rig.target_names[-1] == "tongueOut" and "tongueOut" not in rig.missing
    t = rig.target_names.index("tongueOut")
    assert rig.weights_for({"Tongue_Out": 0.8})[0, t] == pytest.approx(0.8)
    assert rig.weights_for({"tongueOut": 2.0})[0, t] == 1.0                       # clamped like the others
    vec = np.zeros(52, np.float32)
    assert rig.weights_for(vec)[0, t] == 0.0
    assert rig.weights_for(vec, extras={"tongueOut": 0.5})[0, t] == pytest.approx(0.5)   # Prediction.extras
    neutral, out = _render(rig, {}), _render(rig, {"tongueOut": 1.0})
    ys, xs = np.nonzero(np.abs(out - neutral).sum(-1) > 40)
    x0, y0, x1, y1, _ = _skin_box(neutral)
    assert len(ys) >= 4 and (ys.mean() - y0) / (y1 - y0) > 0.55                  # at the mouth


def test_spec_gloss_diffuse_texture_is_the_base_colour(tmp_path):
    b = GlbBuilder()
    pos = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)
    img = np.zeros((8, 8, 3), np.uint8)
    img[:] = (200, 100, 40)
    tex = b.texture(img)
    b.doc["materials"].append({"extensions": {"KHR_materials_pbrSpecularGlossiness": {
        "diffuseTexture": {"index": tex}, "diffuseFactor": [0.5, 1.0, 1.0, 1.0]}}})
    prim = {"attributes": {"POSITION": b.accessor(pos), "TEXCOORD_0": b.accessor(uv)},
            "indices": b.accessor(np.array([0, 1, 2, 0, 2, 3], np.uint16), 5123, index=True), "material": 0}
    p = b.write(tmp_path / "sg.glb", [b.node(mesh=b.mesh([prim]))], required=["KHR_materials_pbrSpecularGlossiness"])
    rig = load_gltf(p)
    np.testing.assert_array_equal(rig.texture[0, 0], [100, 100, 40])


def test_alpha_masked_primitive_keeps_its_opaque_triangles(tmp_path):
    # an "iris": a 12x12 grid whose texture is opaque inside a disc of radius 0.3 (uv units), clear outside
    b = GlbBuilder()
    n = 13
    g = np.linspace(0, 1, n)
    U, Vv = np.meshgrid(g, g)
    uv = np.stack([U, Vv], -1).reshape(-1, 2).astype(np.float32)
    pos = np.concatenate([uv * 2 - 1, np.zeros((len(uv), 1))], 1).astype(np.float32) * [1, -1, 1]
    tris = [(j * n + i, j * n + i + 1, (j + 1) * n + i + 1) for j in range(n - 1) for i in range(n - 1)]
    tris += [(j * n + i, (j + 1) * n + i + 1, (j + 1) * n + i) for j in range(n - 1) for i in range(n - 1)]
    yy, xx = (np.mgrid[0:64, 0:64] + 0.5) / 64
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 2] = 200
    rgba[..., 3] = np.where((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.3 ** 2, 255, 0)
    m = b.material(texture=b.texture(rgba), alpha_mode="MASK")
    prim = {"attributes": {"POSITION": b.accessor(pos), "TEXCOORD_0": b.accessor(uv)},
            "indices": b.accessor(np.array(tris, np.uint16).reshape(-1), 5123, index=True), "material": m}
    rig = load_gltf(b.write(tmp_path / "iris.glb", [b.node(mesh=b.mesh([prim]))]))
    kept = uv[rig.triangles].mean(axis=1)
    r = np.linalg.norm(kept - 0.5, axis=1)
    assert 0 < len(rig.triangles) < len(tris)          # the disc's triangles, not the card's corners
    assert r.max() < 0.36 and r.min() < 0.1


def test_own_spelling_wins_over_aliases_in_one_mesh(tmp_path):
    # a Ready Player Me-like mesh: jawOpen and mouthOpen, mouthSmileLeft/Right and mouthSmile, browInnerUp_L
    # beside browInnerUp: each shape is driven once, by its own ARKit spelling
    b = GlbBuilder()
    v, tris, uv = face_grid()
    dd = face_deltas_for_test(v)
    order = ["mouthOpen", "jawOpen", "mouthSmile", "mouthSmileLeft", "mouthSmileRight", "browInnerUp_L",
             "browInnerUp"]
    prim = {"attributes": {"POSITION": b.accessor(v)},
            "indices": b.accessor(tris.reshape(-1).astype(np.uint16), 5123, index=True),
            "targets": [{"POSITION": b.accessor(dd[n])} for n in order]}
    p = b.write(tmp_path / "rpm.glb", [b.node(mesh=b.mesh([prim], order))])
    with pytest.warns(Warning, match="mouthOpen.*mouthSmile.*browInnerUp_L"):
        rig = load_gltf(p)
    d = rig.dense_deltas()
    for n in ("jawOpen", "mouthSmileLeft", "mouthSmileRight", "browInnerUp"):
        np.testing.assert_allclose(d[rig.target_names.index(n)], dd[n], atol=1e-6)


def face_deltas_for_test(v):
    rng = np.random.default_rng(1)
    names = ["mouthOpen", "jawOpen", "mouthSmile", "mouthSmileLeft", "mouthSmileRight", "browInnerUp_L",
             "browInnerUp"]
    return {n: (rng.random((len(v), 3)) * 0.01).astype(np.float32) for n in names}


def test_meshopt_exponential_filter_decodes_to_the_same_rig(rigs, tmp_path):
    rig = load_gltf(face_rig(tmp_path / "exp.glb", meshopt=True, meshopt_exp=True))
    ref = rigs["textured"]
    np.testing.assert_allclose(rig.vertices, ref.vertices, atol=2 ** -20)
    assert rig.target_names == ref.target_names
    np.testing.assert_allclose(rig.dense_deltas(), ref.dense_deltas(), atol=2 ** -19)


def _edit_glb(path, out, change):
    import json
    import struct
    data = path.read_bytes()
    jl = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + jl])
    change(doc)
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    rest = data[20 + jl:]
    out.write_bytes(struct.pack("<4sII", b"glTF", 2, 20 + len(js) + len(rest))
                    + struct.pack("<II", len(js), 0x4E4F534A) + js + rest)
    return out


@pytest.mark.parametrize("change,match", [
    (lambda d: (d["skins"][0].update(joints=d["skins"][0]["joints"][:2]),
                d["accessors"][d["skins"][0]["inverseBindMatrices"]].update(count=2)),
     "JOINTS_0 names joint 2, skin 0 has 2"),
    (lambda d: d["accessors"][d["skins"][0]["inverseBindMatrices"]].update(count=2),
     "inverse bind matrices for 3 joints"),
    (lambda d: d["skins"][0].update(joints=[0, 1, 99]), "nodes index 99 out of range"),
    (lambda d: d["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"].update(index=7),
     "textures index 7 out of range"),
    (lambda d: d["nodes"][0].update(children=[0]), "cycle"),
])
def test_corrupt_skins_and_materials_are_clear_errors(tmp_path, change, match):
    p = face_rig(tmp_path / "s.glb", skinned=True)
    bad = _edit_glb(p, tmp_path / "bad.glb", change)
    with pytest.raises(InvalidInputError, match=match):
        load_gltf(bad)
