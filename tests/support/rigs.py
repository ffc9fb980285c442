"""The test rigs (keyword sets for support.glb.face_rig) and the expressions they are shown with."""
from __future__ import annotations

BLENDER = {"jawOpen": "jawOpen.001", "eyeBlinkLeft": "eyeBlink.L", "eyeBlinkRight": "eyeBlink.R",
           "mouthSmileLeft": "mouthSmile_L", "mouthSmileRight": "mouthSmile_R", "browDownLeft": "browDown.L",
           "browDownRight": "browDown.R.001", "tongueOut": "tongueOut.001"}
CC4 = {"jawOpen": "Jaw_Open", "eyeBlinkLeft": "Eye_Blink_L", "eyeBlinkRight": "Eye_Blink_R",
       "mouthSmileLeft": "Mouth_Smile_L", "mouthSmileRight": "Mouth_Smile_R", "browDownLeft": "Brow_Drop_L",
       "browDownRight": "Brow_Drop_R", "tongueOut": "Tongue_Out"}

TEST_RIGS = {
    "textured": {},
    "jpeg": {"image_format": "JPEG"},
    "multi_material_webp": {"multi_material": True, "image_format": "WEBP"},
    "quantized_sparse": {"quantized": True, "sparse": True},
    "meshopt_multi_material": {"meshopt": True, "multi_material": True},
    "skinned_full_body": {"skinned": True, "body": True, "multi_material": True},
    "blender_names": {"names": BLENDER},
    "cc4_names": {"names": CC4},
    "vrm0_full_body": {"vrm": "0", "skinned": True, "body": True},
    "vrm1": {"vrm": "1", "skinned": True},
}

EXPRESSIONS = {
    "jawOpen": {"jawOpen": 1.0},
    "smile": {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0},
    "blink+browDown left": {"eyeBlinkLeft": 1.0, "browDownLeft": 1.0},
}


def skin_share(img) -> float:
    """The share of an RGB image's pixels that read as skin (red clearly above blue, not dark)."""
    return float(((img[..., 0] > img[..., 2] + 25) & (img[..., 0] > 60)).mean())


def body_rig(path):
    """A skinned full-body, multi-material test avatar with Character Creator (CC4) names, written to ``path``."""
    from support.glb import face_rig
    return face_rig(path, skinned=True, body=True, multi_material=True, names=CC4)
