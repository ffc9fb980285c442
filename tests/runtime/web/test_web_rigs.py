"""External rigs in the browser viewer (headless Chromium, fixtures in conftest.py): a material-less,
normal-less scan (the ICT-FaceKit kind), VRM 0.x expressions, eye bones and VRM lookAt."""
from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from support.browser import Page
from support.glb import FLOAT, U32, GlbBuilder, uv_sphere

from runtime.web import WebOptions, WebServer


def _settle(loop, weights=None):
    loop.set_weights(np.zeros(52, np.float32) if weights is None else weights, transition_ms=0)
    time.sleep(0.3)


def _bare_sphere(path: Path, rings: int = 24, segments: int = 32) -> Path:
    """A unit UV sphere as a scan exporter writes it: POSITION and indices only (no NORMAL, no material),
    wound counter-clockwise seen from outside, with one (zero) morph target named jawOpen."""
    v, tris = uv_sphere(rings, segments)
    b = GlbBuilder()
    prim = {"attributes": {"POSITION": b.accessor(v, FLOAT)},
            "indices": b.accessor(np.array(tris, np.uint32).reshape(-1), U32, index=True),
            "targets": [{"POSITION": b.accessor(np.zeros_like(v))}]}
    return b.write(path, [b.node(mesh=b.mesh([prim], ["jawOpen"]), name="Scan")])


def test_a_scan_without_material_or_normals_is_lit_all_over(browser, loop, tmp_path):
    """glTF's default material is fully metallic: with no environment map the side away from the sun went black
    (the ICT-FaceKit head's dark slivers). The page shades such a mesh as grey clay with smooth normals."""
    sphere = _bare_sphere(tmp_path / "scan.glb")
    doc = json.loads(sphere.read_bytes()[20:20 + struct.unpack_from("<I", sphere.read_bytes(), 12)[0]])
    assert "materials" not in doc and "NORMAL" not in doc["meshes"][0]["primitives"][0]["attributes"]
    _settle(loop)
    with WebServer(loop, WebOptions(port=0, rig=sphere)) as server:
        p = Page(browser, server.url, width=600, height=600)
        try:
            assert p.errors == [] and p.stats()["clayMeshes"] == 1
            img = p.canvas()
            h, w, _ = img.shape
            lum = img @ np.array([0.299, 0.587, 0.114])
            fg = np.abs(img - img[h // 2, 2]).sum(axis=2) > 40          # differs from the background
            cols, rows = np.nonzero(fg[h // 2])[0], np.nonzero(fg[:, w // 2])[0]
            cx, cy, r = (cols[0] + cols[-1]) / 2, (rows[0] + rows[-1]) / 2, (cols[-1] - cols[0]) / 2
            assert r > 0.25 * h, f"the sphere is not framed ({r:.0f} px radius in a {w}x{h} canvas)"
            yy, xx = np.mgrid[:h, :w]
            disk = lum[(yy - cy) ** 2 + (xx - cx) ** 2 < (0.95 * r) ** 2]
            print(f"\nbare scan: luminance within 0.95 of the sphere's radius: min {disk.min():.0f}, "
                  f"median {np.median(disk):.0f}")
            # the default metallic material drew a black crescent on the side away from the sun (min 0)
            assert disk.min() > 30, f"part of the surface is drawn black ({(disk <= 30).sum()} pixels)"
            # smooth normals: no facet edges (flat shading steps by 8 levels between the 32 segments)
            steps = np.abs(np.diff(lum[int(cy), int(cx - 0.6 * r): int(cx + 0.6 * r)]))
            assert steps.max() < 6, f"facets: the shading jumps by {steps.max():.0f} between neighbouring pixels"
        finally:
            p.close()


# --- avatars built from the default head: VRM 0.x / 1.0 with ARKit-named expressions, glTF with eye bones ------
HUMAN_BONES = ("hips", "spine", "head", "leftUpperLeg", "leftLowerLeg", "leftFoot", "rightUpperLeg", "rightLowerLeg",
               "rightFoot", "leftUpperArm", "leftLowerArm", "leftHand", "rightUpperArm", "rightLowerArm", "rightHand")
# world positions (the default head faces +z, about 16 units wide, its eyes near y=2, z=4)
HEAD_AT, EYE_AT = np.array([0.0, 2.0, 1.0]), np.array([3.0, 2.2, 4.0])     # EYE_AT: the subject's left eye
LINEAR_90 = {"curve": [0, 0, 0, 1, 1, 1, 1, 0], "xRange": 90, "yRange": 90}   # VRM 0.x degree map: out = in


def _quat_to_matrix(q) -> np.ndarray:
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


# a VRoid-style VRM 0.x: presets only, no ARKit-named expressions (group name, presetName, ARKit targets bound)
PRESET_GROUPS = (("A", "a", ("jawOpen",)), ("Joy", "joy", ("mouthSmileLeft", "mouthSmileRight")),
                 ("Blink", "blink", ("eyeBlinkLeft", "eyeBlinkRight")), ("Angry", "angry", ("browDownLeft", "browDownRight")),
                 ("Sorrow", "sorrow", ("mouthFrownLeft", "mouthFrownRight")))


def _n_shapes(eye_shapes: bool = True) -> int:
    """The default head's driven channels: its ARKit targets (51) and extras such as tongueOut, less the
    8 eyeLook* shapes when they are left out."""
    from emo3d.avatar.default import default_rig
    names = default_rig().target_names
    return len([n for n in names if eye_shapes or not n.startswith("eyeLook")])


def _head_rig(path: Path, kind: str, *, eye_shapes: bool = True, presets_only: bool = False) -> Path:
    """The default head as ``kind``: 'vrm0' (extensions.VRM: blendShapeMaster groups named by the 51 ARKit names,
    humanoid with eyes, firstPerson with a bone lookAt; facing -z as UniVRM 0.x writes it), 'vrm1' (VRMC_vrm: the
    same as custom expressions, bone lookAt) or 'gltf' (plain glTF with a Head > LeftEye/RightEye skeleton whose
    head bone is turned, so an eye's local axes are not the rig's). ``eye_shapes=False`` leaves the eyeLook*
    shapes out (unnamed targets, no expressions), so only the eye bones can turn the eyes."""
    from emo3d.avatar.default import default_rig
    from emo3d.avatar.gltf_export import glb_bytes
    data = glb_bytes(default_rig())
    n = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + n])
    binary = data[20 + n + 8:]
    names = doc["meshes"][0]["extras"]["targetNames"]
    kept = [k for k, name in enumerate(names) if eye_shapes or not name.startswith("eyeLook")]
    if not eye_shapes or presets_only:   # unnamed (VRoid-style) targets: not ARKit shapes to the viewer
        doc["meshes"][0]["extras"]["targetNames"] = [nm if k in kept and not presets_only else f"Fcl_shape{k}"
                                                     for k, nm in enumerate(names)]
    flip = np.array([-1.0, 1.0, -1.0]) if kind == "vrm0" else np.ones(3)    # VRM 0.x faces -z
    if kind == "vrm0":
        doc["nodes"][0]["rotation"] = [0.0, 1.0, 0.0, 0.0]                   # the mesh turned to face -z
    first = len(doc["nodes"])
    idx = {b: first + i for i, b in enumerate(HUMAN_BONES + ("leftEye", "rightEye"))}
    head_q = [0.0, 0.0, 0.0, 1.0] if kind != "gltf" else [0.5, 0.5, 0.5, 0.5]   # glTF: 120 deg about (1,1,1)
    head_r = _quat_to_matrix(head_q)
    hips_at, spine_at = np.array([0.0, -8.0, 0.0]), np.array([0.0, -4.0, 0.0])
    nodes = []
    for b in HUMAN_BONES + ("leftEye", "rightEye"):
        node = {"name": {"leftEye": "LeftEye", "rightEye": "RightEye", "head": "Head"}.get(b, b)}
        if b == "hips":
            node["translation"] = (hips_at * flip).tolist()
        elif b == "spine":
            node["translation"] = ((spine_at - hips_at) * flip).tolist()
        elif b == "head":
            node["translation"], node["rotation"] = ((HEAD_AT - spine_at) * flip).tolist(), head_q
        elif b in ("leftEye", "rightEye"):
            at = EYE_AT * (np.array([1.0, 1, 1]) if b == "leftEye" else np.array([-1.0, 1, 1]))
            node["translation"] = (head_r.T @ ((at - HEAD_AT) * flip)).tolist()
            if kind == "gltf":   # an eye bone with its own rest rotation (Blender-style: y along the bone)
                node["rotation"] = [0.0, 0.0, 0.7071068, 0.7071068]
        nodes.append(node)
    children = {"hips": ["spine"] + [b for b in HUMAN_BONES if b not in ("hips", "spine", "head")],
                "spine": ["head"], "head": ["leftEye", "rightEye"]}
    for parent, kids in children.items():
        nodes[idx[parent] - first]["children"] = [idx[k] for k in kids]
    doc["nodes"] += nodes
    doc["scenes"][0]["nodes"] += [idx["hips"]]
    arkit = [(k, names[k]) for k in kept]
    if kind == "vrm0":
        doc["extensionsUsed"] = ["VRM"]
        doc["extensions"] = {"VRM": {
            "specVersion": "0.0", "exporterVersion": "emo3d tests",
            "meta": {"title": "emo3d test head", "version": "1", "author": "emo3d tests", "licenseName": "CC0"},
            "humanoid": {"humanBones": [{"bone": b, "node": i, "useDefaultValues": True} for b, i in idx.items()]},
            "firstPerson": {"firstPersonBone": idx["head"], "firstPersonBoneOffset": {"x": 0, "y": 0.06, "z": 0},
                            "meshAnnotations": [], "lookAtTypeName": "Bone", "lookAtHorizontalInner": LINEAR_90,
                            "lookAtHorizontalOuter": LINEAR_90, "lookAtVerticalDown": LINEAR_90,
                            "lookAtVerticalUp": LINEAR_90},
            "blendShapeMaster": {"blendShapeGroups": [
                {"name": name, "presetName": "unknown", "isBinary": False, "materialValues": [],
                 "binds": [{"mesh": 0, "index": k, "weight": 100}]} for k, name in arkit] if not presets_only else [
                {"name": name, "presetName": preset, "isBinary": False, "materialValues": [],
                 "binds": [{"mesh": 0, "index": names.index(t), "weight": 100} for t in bound]}
                for name, preset, bound in PRESET_GROUPS]},
            "secondaryAnimation": {"boneGroups": [], "colliderGroups": []}, "materialProperties": []}}
    elif kind == "vrm1":
        linear = {"inputMaxValue": 90, "outputScale": 90}
        doc["extensionsUsed"] = ["VRMC_vrm"]
        doc["extensions"] = {"VRMC_vrm": {
            "specVersion": "1.0",
            "meta": {"name": "emo3d test head", "authors": ["emo3d tests"], "licenseUrl": "https://vrm.dev/licenses/1.0/"},
            "humanoid": {"humanBones": {b: {"node": i} for b, i in idx.items()}},
            "expressions": {"custom": {name: {"morphTargetBinds": [{"node": 0, "index": k, "weight": 1.0}]}
                                       for k, name in arkit}},
            "lookAt": {"type": "bone", "offsetFromHeadBone": [0, 0.06, 0], "rangeMapHorizontalInner": linear,
                       "rangeMapHorizontalOuter": linear, "rangeMapVerticalDown": linear, "rangeMapVerticalUp": linear},
        }}
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    out = struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(js) + 8 + len(binary)) + struct.pack("<II", len(js), 0x4E4F534A) \
        + js + struct.pack("<II", len(binary), 0x004E4942) + binary
    path.write_bytes(out)
    return path


@pytest.mark.parametrize("kind", ["vrm0", "vrm1"])
def test_a_vrm_rig_is_driven_through_its_expressions(browser, loop, tmp_path, kind):
    vrm = _head_rig(tmp_path / "head.vrm", kind)
    _settle(loop)
    with WebServer(loop, WebOptions(port=0, rig=vrm)) as server:
        p = Page(browser, server.url)
        try:
            s = p.stats()
            assert p.errors == [] and s["rig"]["format"] == "vrm"
            assert s["rig"]["expressionBindings"] == _n_shapes() and s["rig"]["morphBindings"] == 0
            assert s["eyes"]["mode"] == "shapes"      # its eyeLook* expressions turn the eyes, not its lookAt
            a = p.canvas()
            h, w, _ = a.shape
            face = (slice(int(h * .2), int(h * .85)), slice(int(w * .25), int(w * .75)))
            assert a[face].std() > 10
            _settle(loop, {"jawOpen": 1.0, "browInnerUp": 1.0})
            b = p.canvas()
            moved = (np.abs(b[face] - a[face]).sum(axis=2) > 30).mean()
            assert moved > 0.02, f"the expressions did not move the face ({moved:.4f})"
            # the face is seen from the front (VRM 0.x: three-vrm turned the -z-facing avatar to the camera): the
            # jaw drops, so the lower half changes more than the upper
            rows = np.abs(b[face] - a[face]).sum(axis=2).mean(axis=1)
            assert rows[len(rows) // 2:].sum() > rows[:len(rows) // 2].sum() * 0.5
        finally:
            p.close()


GAZES = {   # eyeLook* weights -> the eyes' (yaw, pitch) in degrees (emo3d/pose.py: EYE_YAW_DEG 30, EYE_PITCH_DEG 25)
    "down": ({"eyeLookDownLeft": 1.0, "eyeLookDownRight": 1.0}, (0.0, 25.0)),
    "up": ({"eyeLookUpLeft": 1.0, "eyeLookUpRight": 1.0}, (0.0, -25.0)),
    "subject's left": ({"eyeLookOutLeft": 1.0, "eyeLookInRight": 1.0}, (30.0, 0.0)),
    "subject's right, down": ({"eyeLookInLeft": 1.0, "eyeLookOutRight": 1.0, "eyeLookDownLeft": 0.6,
                               "eyeLookDownRight": 0.6}, (-30.0, 15.0)),
}


@pytest.mark.parametrize("kind,mode", [("gltf", "bones"), ("vrm0", "vrm-lookat"), ("vrm1", "vrm-lookat")])
def test_the_frames_eyes_turn_the_eye_bones(browser, loop, tmp_path, kind, mode):
    """A rig without eyeLook* shapes: the frame's eye rotations turn its eye bones (glTF: found by name;
    VRM: its lookAt). The turn is read back from the scene graph after a draw: each eye's rotation from rest in
    the rig frame applied to the face's forward axis, as (yaw, pitch)."""
    rig = _head_rig(tmp_path / ("head.glb" if kind == "gltf" else "head.vrm"), kind, eye_shapes=False)
    _settle(loop)
    with WebServer(loop, WebOptions(port=0, rig=rig)) as server:
        p = Page(browser, server.url)
        try:
            s = p.stats()
            assert p.errors == [] and s["eyes"]["mode"] == mode and s["rig"]["shapes"] == _n_shapes(False)
            for what, (weights, (yaw, pitch)) in GAZES.items():
                _settle(loop, weights)
                p.canvas()
                gaze = np.degrees(np.array(p.stats()["eyes"]["gaze"]))
                assert np.allclose(gaze, [[yaw, pitch], [yaw, pitch]], atol=0.5), (what, gaze.round(2).tolist())
            _settle(loop)
            p.canvas()
            assert np.allclose(p.stats()["eyes"]["gaze"], 0, atol=1e-3)
        finally:
            p.close()


def test_a_rig_whose_shapes_turn_the_eyes_keeps_its_eye_bones_still(browser, loop, tmp_path):
    rig = _head_rig(tmp_path / "head.glb", "gltf", eye_shapes=True)
    _settle(loop, GAZES["down"][0])
    with WebServer(loop, WebOptions(port=0, rig=rig)) as server:
        p = Page(browser, server.url)
        try:
            s = p.stats()
            assert s["eyes"] == {"mode": "shapes", "gaze": None} and s["rig"]["shapes"] == _n_shapes()
        finally:
            p.close()


def test_a_vrm_with_presets_only_is_driven_through_emo3ds_retarget(browser, loop, tmp_path):
    """A VRoid-style VRM 0.x (presets a/joy/blink/angry/sorrow, no ARKit names): the page drives its presets from
    the scores with emo3d.avatar.vrm's retarget (sent in config.json), the values the renderer's retarget gives."""
    from emo3d import schema
    from emo3d.avatar.vrm import preset_weights
    rig = _head_rig(tmp_path / "vroid.vrm", "vrm0", presets_only=True)
    scores = np.zeros(52, np.float32)
    for name, v in {"jawOpen": 0.8, "mouthSmileLeft": 0.6, "mouthSmileRight": 0.4, "eyeBlinkLeft": 1.0,
                    "eyeBlinkRight": 0.5, "browDownLeft": 0.3, "mouthFrownRight": 0.2}.items():
        scores[schema.MEDIAPIPE_INDEX[name]] = v
    _settle(loop)
    with WebServer(loop, WebOptions(port=0, rig=rig)) as server:
        p = Page(browser, server.url)
        try:
            s = p.stats()
            assert p.errors == [] and s["rig"]["presetBindings"] == 5 and s["rig"]["expressionBindings"] == 0
            assert s["eyes"]["mode"] == "vrm-lookat"
            a = p.canvas()
            _settle(loop, scores)
            b = p.canvas()
            got = {n: p.page.evaluate(f"() => window.__emo3d.expression('{n}')")
                   for n in ("aa", "happy", "blink", "angry", "sad")}
            want = preset_weights(scores, ("aa", "happy", "blink", "angry", "sad"))
            assert got == pytest.approx(want, abs=1e-3) and got["aa"] == pytest.approx(0.8, abs=1e-3)
            h, w, _ = a.shape
            mouth = (slice(int(h * .55), int(h * .85)), slice(int(w * .3), int(w * .7)))
            moved = (np.abs(b[mouth] - a[mouth]).sum(axis=2) > 30).mean()
            assert moved > 0.02, f"the presets did not move the mouth ({moved:.4f})"
        finally:
            p.close()


@pytest.mark.shared
def test_the_ict_facekit_head_has_no_black_slivers(browser, loop, ict_rig_path):
    """The real scan (no material, no normals): nothing on the head is drawn darker than the background (the
    default metallic material drew ~500 black pixels along the left cheek and under the chin)."""
    _settle(loop, {"jawOpen": 0.57, "browInnerUp": 0.72})
    with WebServer(loop, WebOptions(port=0, rig=ict_rig_path)) as server:
        p = Page(browser, server.url, width=700, height=700)
        try:
            assert p.errors == [] and p.stats()["clayMeshes"] == 1 and p.stats()["rig"]["morphBindings"] == 51
            img = p.canvas()
            h, w, _ = img.shape
            lum = (img @ np.array([0.299, 0.587, 0.114]))[int(h * .1):int(h * .9), int(w * .2):int(w * .8)]
            background = float(img[h // 2, 2] @ np.array([0.299, 0.587, 0.114]))
            assert (lum > background + 30).mean() > 0.15, "the head is not drawn"
            assert (lum < background / 2).sum() == 0, f"{(lum < background / 2).sum()} near-black pixels on the head"
        finally:
            p.close()
