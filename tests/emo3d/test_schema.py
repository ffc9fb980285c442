"""The one blendshape schema: counts, orders, round trips, mirror, user-name resolution."""
import numpy as np
import pytest

from emo3d import schema as S

RNG = np.random.default_rng(0)


def test_counts_and_uniqueness():
    assert (S.N_MEDIAPIPE, S.N_MODEL, S.N_ARKIT, S.N_LIVELINK, S.N_EMOTIONS) == (52, 51, 52, 61, 8)
    for names in (S.MEDIAPIPE_NAMES, S.MODEL_NAMES, S.ARKIT_NAMES, S.VMC_NAMES, S.LIVELINK_NAMES, S.EMOTIONS):
        assert len(set(names)) == len(names)
        assert len({n.lower() for n in names}) == len(names)


def test_mediapipe_order_is_release_order():
    # The Emo3D release's blenshape_score_* columns: _neutral, then the 51 ARKit names alphabetically.
    assert S.MEDIAPIPE_NAMES[0] == "_neutral"
    assert list(S.MEDIAPIPE_NAMES[1:]) == sorted(S.MEDIAPIPE_NAMES[1:])
    assert S.MODEL_NAMES == S.MEDIAPIPE_NAMES[1:]
    assert S.MEDIAPIPE_NAMES[25] == "jawOpen" and S.MEDIAPIPE_NAMES[9] == "eyeBlinkLeft"
    assert set(S.ARKIT_NAMES) - set(S.MODEL_NAMES) == {"tongueOut"}
    assert S.EMOTIONS == ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")


def test_arkit_and_livelink_orders_match_epic():
    from pylivelinkface import FaceBlendShape  # independent source of Epic's order
    epic = [m.name for m in sorted(FaceBlendShape, key=lambda m: m.value)]
    assert list(S.LIVELINK_NAMES) == epic
    assert [n.lower() for n in S.ARKIT_NAMES] == [n.lower() for n in epic[:52]]
    assert S.VMC_NAMES[S.ARKIT_INDEX["jawOpen"]] == "JawOpen"


@pytest.mark.parametrize("batch", [(), (3,), (2, 4)])
def test_round_trips(batch):
    mp = RNG.random(batch + (52,)).astype(np.float32)
    mp[..., 0] = 0.0  # _neutral does not survive ARKit/Live Link (they have no such shape)
    assert np.array_equal(S.arkit_to_mediapipe(S.mediapipe_to_arkit(mp)), mp)
    assert np.array_equal(S.livelink_to_mediapipe(S.mediapipe_to_livelink(mp)), mp)
    assert np.array_equal(S.model_to_mediapipe(S.mediapipe_to_model(mp)), mp)
    ark = S.mediapipe_to_arkit(mp)
    assert np.all(ark[..., S.ARKIT_INDEX["tongueOut"]] == 0)
    for name in S.MODEL_NAMES:
        assert np.array_equal(ark[..., S.ARKIT_INDEX[name]], mp[..., S.MEDIAPIPE_INDEX[name]])


def test_vmc_round_trip_and_livelink_pose():
    mp = RNG.random(52).astype(np.float32)
    mp[0] = 0
    vmc = S.mediapipe_to_vmc(mp)
    assert list(vmc) == list(S.VMC_NAMES) and vmc["TongueOut"] == 0.0
    assert np.allclose(S.vmc_to_mediapipe(vmc), mp)
    ll = S.mediapipe_to_livelink(mp, pose=np.arange(9))
    assert np.array_equal(ll[52:], np.arange(9, dtype=np.float32))
    with pytest.raises(ValueError, match="9"):
        S.mediapipe_to_livelink(mp, pose=[0, 1])


def test_mirror_is_involution_and_swaps_sides():
    v = RNG.random((5, 52)).astype(np.float32)
    assert np.array_equal(S.mirror(S.mirror(v)), v)
    m = S.mirror(v)
    for left, right in S.MIRROR_PAIRS:
        assert np.array_equal(m[:, S.MEDIAPIPE_INDEX[left]], v[:, S.MEDIAPIPE_INDEX[right]])
    assert np.array_equal(m[:, S.MEDIAPIPE_INDEX["jawOpen"]], v[:, S.MEDIAPIPE_INDEX["jawOpen"]])
    assert len(S.MIRROR_PAIRS) == 20
    p = S.mirror_permutation(S.MODEL_NAMES)
    assert np.array_equal(p[p], np.arange(51))


def test_weights_from_mapping_rejects_bad_values():
    from emo3d.weights import normalize     # the one weights normaliser (names through emo3d.names)
    v = normalize({"JawOpen": 1, "tongueOut": 0.5}).vector
    assert v[S.MEDIAPIPE_INDEX["jawOpen"]] == 1 and v.sum() == 1
    with pytest.raises(ValueError, match="not finite"):
        normalize({"jawOpen": float("nan")})
    with pytest.raises(ValueError, match="not a number"):
        normalize({"jawOpen": "wide"})
    assert normalize({"jawOpen": 3}).vector[S.MEDIAPIPE_INDEX["jawOpen"]] == 1


def test_wrong_lengths_are_refused():
    with pytest.raises(ValueError, match="expected 52"):
        S.mediapipe_to_arkit(np.zeros(51))
    with pytest.raises(ValueError, match="51 .*52"):
        S.as_mediapipe(np.zeros(50))
    assert S.as_mediapipe(np.ones(51))[0] == 0


def test_cpp_header_and_bound_constants_come_from_schema():
    import native
    assert native._core.MEDIAPIPE_NAMES == S.MEDIAPIPE_NAMES
    assert native._core.MODEL_NAMES == S.MODEL_NAMES
    assert native._core.ARKIT_NAMES == S.ARKIT_NAMES
    assert native._core.LIVELINK_NAMES == S.LIVELINK_NAMES
    assert native._core.EMOTIONS == S.EMOTIONS
    assert list(native._core.MODEL_MIRROR) == S.mirror_permutation(S.MODEL_NAMES).tolist()
    h = S.cpp_header()
    assert "kMediaPipeCount = 52" in h and '"noseSneerRight"' in h
