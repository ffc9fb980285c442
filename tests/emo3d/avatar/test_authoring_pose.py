"""The authored gaze shapes follow emo3d.pose's convention (+pitch looks down): eyeLookDown turns the front of
the eyeball down as pose.rotation(0, +pitch, 0) does, eyeLookUp turns it up, and jawOpen drops the chin."""
import numpy as np

from emo3d import pose, schema
from emo3d.avatar.authoring import author
from emo3d.avatar.mesh import build_head


def test_gaze_and_jaw_shapes_follow_the_pose_convention():
    head = build_head()
    deltas = author(head)
    for side, S in (("left", "Left"), ("right", "Right")):
        idx = np.asarray(head.parts["eye_" + side])
        rest = head.vertices[idx] - head.eye_centers[side]
        front = idx[np.argmax(rest[:, 2])]                     # the pupil: the eyeball's most +z vertex
        down = deltas[schema.MODEL_INDEX[f"eyeLookDown{S}"]][front]
        up = deltas[schema.MODEL_INDEX[f"eyeLookUp{S}"]][front]
        assert down[1] < -0.05 and up[1] > 0.05, (side, down, up)
        # the same direction pose.rotation gives a forward vector for +pitch
        assert (pose.rotation(0.0, 0.3, 0.0) @ np.array([0.0, 0.0, 1.0]))[1] < 0
    middle = np.flatnonzero(np.abs(head.vertices[:, 0]) < 1.0)
    chin = middle[np.argmin(head.vertices[middle, 1])]         # the lowest vertex on the midline
    assert deltas[schema.MODEL_INDEX["jawOpen"]][chin][1] < -0.1
