"""emo3d.names: the one name map (table-driven), its warning, and the generated C# table (up to date,
and compiled with Mono's mcs it resolves every name of the table exactly like Python)."""
from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
from support.assets import machine_lacks

from emo3d import names as N
from emo3d import schema as S

ROOT = Path(__file__).resolve().parents[2]
CS_TABLE = ROOT / "clients" / "unity" / "Emo3DNames.g.cs"

# (source name, targets, split, part)
CASES = [
    # ARKit / MediaPipe / Live Link / VMC / Audio2Face
    ("eyeBlinkLeft", ("eyeBlinkLeft",), False, None),
    ("EyeBlinkLeft", ("eyeBlinkLeft",), False, None),
    ("EYEBLINKRIGHT", ("eyeBlinkRight",), False, None),
    ("_neutral", ("_neutral",), False, None),
    ("TongueOut", ("tongueOut",), False, None),
    ("jawLeft", ("jawLeft",), False, None),
    ("MouthRight", ("mouthRight",), False, None),
    # separators / sides
    ("Eye_Blink_L", ("eyeBlinkLeft",), False, None),
    ("EyeBlink_Left", ("eyeBlinkLeft",), False, None),
    ("eye-blink-right", ("eyeBlinkRight",), False, None),
    ("Mouth_Smile_L", ("mouthSmileLeft",), False, None),
    # Blender
    ("eyeBlink.L", ("eyeBlinkLeft",), False, None),
    ("eyeBlink.R.001", ("eyeBlinkRight",), False, None),
    ("jawOpen.001", ("jawOpen",), False, None),
    ("blendShape1.JawOpen", ("jawOpen",), False, None),
    ("Face:mouthPucker", ("mouthPucker",), False, None),
    # FaceCap / three.js facecap.glb
    ("browDown_L", ("browDownLeft",), False, None),
    ("eyeLookIn_L", ("eyeLookInLeft",), False, None),
    ("eyeLookOut_R", ("eyeLookOutRight",), False, None),
    ("browInnerUp_L", ("browInnerUp",), False, "Left"),
    # Character Creator 4 / iClone, CC3
    ("Brow_Drop_R", ("browDownRight",), False, None),
    ("Brow_Raise_Inner_L", ("browInnerUp",), False, "Left"),
    ("Brow_Raise_Outer_R", ("browOuterUpRight",), False, None),
    ("Cheek_Raise_L", ("cheekSquintLeft",), False, None),
    ("Cheek_Puff_R", ("cheekPuff",), False, "Right"),
    ("Mouth_Up_Upper_L", ("mouthUpperUpLeft",), False, None),
    ("Mouth_Down_Lower_R", ("mouthLowerDownRight",), False, None),
    ("Mouth_Roll_In_Upper_L", ("mouthRollUpper",), False, "Left"),
    ("Mouth_Funnel_Up_R", ("mouthFunnel",), False, "Right"),
    ("Jaw_L", ("jawLeft",), False, None),
    ("Mouth_R", ("mouthRight",), False, None),
    ("Eye_L_Look_L", ("eyeLookOutLeft",), False, None),
    ("Eye_L_Look_R", ("eyeLookInLeft",), False, None),
    ("Eye_R_Look_R", ("eyeLookOutRight",), False, None),
    ("Eye_R_Look_Down", ("eyeLookDownRight",), False, None),
    ("A14_Eye_Blink_Left", ("eyeBlinkLeft",), False, None),
    ("A25_Jaw_Open", ("jawOpen",), False, None),
    # MetaHuman curves
    ("CTRL_expressions_browDownL", ("browDownLeft",), False, None),
    ("CTRL_expressions_browRaiseInR", ("browInnerUp",), False, "Right"),
    ("CTRL_expressions_mouthCornerPullR", ("mouthSmileRight",), False, None),
    ("CTRL_expressions_mouthCornerDepressL", ("mouthFrownLeft",), False, None),
    ("CTRL_expressions_eyeLookLeftL", ("eyeLookOutLeft",), False, None),
    ("CTRL_expressions_eyeLookLeftR", ("eyeLookInRight",), False, None),
    ("CTRL_expressions_eyeWidenR", ("eyeWideRight",), False, None),
    ("CTRL_expressions_noseWrinkleL", ("noseSneerLeft",), False, None),
    ("CTRL_expressions_jawFwd", ("jawForward",), False, None),
    ("CTRL_expressions_mouthLipsPurseUL", ("mouthPucker",), False, "Left"),
    ("CTRL_expressions_mouthPressDR", ("mouthPressRight",), False, None),
    ("CTRL_expressions_jawChinRaiseDL", ("mouthShrugLower",), False, "Left"),
    ("CTRL_expressions_tongueOut", ("tongueOut",), False, None),
    # VRoid
    ("Fcl_EYE_Close_R", ("eyeBlinkRight",), False, None),
    # unsided source of a sided pair
    ("mouthSmile", ("mouthSmileLeft", "mouthSmileRight"), True, None),
    ("Eye_Blink", ("eyeBlinkLeft", "eyeBlinkRight"), True, None),
]
UNKNOWN = ["Key 1", "foo", "jawOpn", "Basis", "eyeLookSideways_L", "", "neutral", "Mouth_A"]


@pytest.mark.parametrize("name,targets,split,part", CASES)
def test_resolve_table(name, targets, split, part):
    m = N.resolve(name)
    assert m is not None, name
    assert (m.targets, m.split, m.part) == (targets, split, part)


@pytest.mark.parametrize("name", UNKNOWN)
def test_unknown_names_resolve_to_none(name):
    assert N.resolve(name) is None


def test_every_canonical_name_resolves_to_itself_in_every_vendor_style():
    for n in S.ARKIT_NAMES:
        assert N.resolve(n).targets == (n,)
        assert N.resolve(n[:1].upper() + n[1:]).targets == (n,)       # Live Link / VMC
        side = n.endswith(("Left", "Right")) and not n.startswith(("jaw", "mouthLeft", "mouthRight"))
        if side and n not in ("mouthLeft", "mouthRight"):
            stem, s = (n[:-4], "L") if n.endswith("Left") else (n[:-5], "R")
            assert N.resolve(f"{stem}_{s}").targets == (n,)              # FaceCap
            assert N.resolve(f"{stem}.{s}").targets == (n,)              # Blender
            assert N.resolve(f"{stem}.{s}.001").targets == (n,)


def test_canonical_name_raises_with_close_matches():
    assert N.canonical_name("Eye_Blink_L") == "eyeBlinkLeft"
    with pytest.raises(KeyError, match="jawOpen"):
        N.canonical_name("jawOpn")
    with pytest.raises(KeyError, match="both sides"):
        N.canonical_name("mouthSmile")


def test_warn_unknown_is_one_warning_with_close_matches():
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        N.warn_unknown(["jawOpn", "mouthSmil_L", "jawOpn"], "rig x.glb")
        N.warn_unknown([], "nothing")
    assert len(rec) == 1 and issubclass(rec[0].category, N.UnknownNameWarning)
    msg = str(rec[0].message)
    assert "2 shape name(s)" in msg and "close: jawOpen" in msg and "mouthSmileLeft" in msg


def test_weights_from_mapping_uses_the_map():
    v = N.weights_from_mapping({"Eye_Blink_L": 0.5, "mouthSmile": 0.25, "CTRL_expressions_jawFwd": 1,
                                "tongueOut": 1, "browInnerUp_L": 0.3, "browInnerUp_R": 0.6})
    i = S.MEDIAPIPE_INDEX
    assert v[i["eyeBlinkLeft"]] == 0.5 and v[i["eyeBlinkRight"]] == 0
    assert v[i["mouthSmileLeft"]] == v[i["mouthSmileRight"]] == 0.25
    assert v[i["jawForward"]] == 1 and v[i["browInnerUp"]] == pytest.approx(0.6)
    assert np.count_nonzero(v) == 5
    with pytest.raises(KeyError, match="jawOpen"):
        N.weights_from_mapping({"jawOpn": 1})
    with pytest.raises(ValueError, match="not finite"):
        N.weights_from_mapping({"jawOpen": float("inf")})


@pytest.mark.parametrize("name,preset", [
    ("happy", "happy"), ("Joy", "happy"), ("Sorrow", "sad"), ("Fun", "relaxed"), ("A", "aa"), ("ih", "ih"),
    ("U", "ou"), ("E", "ee"), ("O", "oh"), ("Blink_L", "blinkLeft"), ("blinkRight", "blinkRight"),
    ("LookUp", "lookUp"), ("lookleft", "lookLeft"), ("Surprised", "surprised"), ("neutral", "neutral"),
])
def test_vrm_presets(name, preset):
    assert N.vrm_preset(name) == preset
    assert N.vrm_preset("jawOpen") is None


def test_committed_csharp_table_is_up_to_date():
    assert CS_TABLE.read_text() == N.csharp_source(), (
        "clients/unity/Emo3DNames.g.cs is stale: run `python -m emo3d.names --csharp clients/unity/Emo3DNames.g.cs`")


def test_csharp_table_resolves_like_python(tmp_path):
    if not (shutil.which("mcs") and shutil.which("mono")):
        machine_lacks("Mono (mcs and mono)", "apt-get install mono-mcs mono-runtime")
    probe = [c[0] for c in CASES] + UNKNOWN + list(S.ARKIT_NAMES)
    (tmp_path / "names.txt").write_text("\n".join(probe) + "\n")
    (tmp_path / "Main.cs").write_text(
        "using System; using System.IO;\n"
        "public static class P { public static int Main(string[] a) {\n"
        "  foreach (var l in File.ReadAllLines(a[0])) Console.WriteLine(string.Join(\",\", Emo3DNames.Resolve(l)));\n"
        "  return 0; } }\n")
    exe = tmp_path / "p.exe"
    subprocess.run(["mcs", "-nologo", f"-out:{exe}", str(CS_TABLE), str(tmp_path / "Main.cs")], check=True,
                   capture_output=True, timeout=120)
    out = subprocess.run(["mono", str(exe), str(tmp_path / "names.txt")], check=True, capture_output=True,
                         text=True, timeout=60).stdout.split("\n")
    for name, line in zip(probe, out):
        m = N.resolve(name)
        assert line == (",".join(m.targets) if m else ""), name


# (formerly schema.canonical_name's cases: names is the one owner of name resolution)
@pytest.mark.parametrize("given,expected", [
    ("jawOpen", "jawOpen"), ("JawOpen", "jawOpen"), ("JAWOPEN", "jawOpen"), ("eyeBlink_L", "eyeBlinkLeft"),
    ("EyeBlink_R", "eyeBlinkRight"), ("browInnerUp", "browInnerUp"), ("TongueOut", "tongueOut"),
    ("mouthSmile.L", "mouthSmileLeft"), ("_neutral", "_neutral"),
])
def test_canonical_name_of_plain_arkit_spellings(given, expected):
    assert N.canonical_name(given) == expected


def test_unknown_name_lists_close_matches_and_what_is_accepted():
    with pytest.raises(KeyError, match="jawOpen"):
        N.canonical_name("jawOpn")
    with pytest.raises(KeyError, match="accepted"):
        N.canonical_name("xyz")
