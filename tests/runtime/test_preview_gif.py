"""runtime.preview's GIF frames: one palette for the whole clip, dithered, so a smooth shading gradient keeps
its steps small (no bands) and the colours do not flicker from frame to frame."""
import numpy as np


def _gradient_frames(n: int = 6) -> list:
    x = np.linspace(0, 1, 192, dtype=np.float32)[None, :, None]
    skin = np.array([206, 160, 135], np.float32)
    frames = []
    for k in range(n):
        shade = 0.35 + 0.65 * x * (1 - 0.05 * k)                  # a lit cheek, drifting a little
        frames.append(np.broadcast_to(skin * shade, (48, 192, 3)).astype(np.uint8))
    return frames


def test_gif_frames_share_one_palette_and_follow_the_gradient():
    from runtime.preview import gif_frames
    frames = _gradient_frames()
    out = gif_frames(frames)
    assert len(out) == len(frames) and all(im.mode == "P" for im in out)
    palettes = {bytes(im.getpalette()) for im in out}
    assert len(palettes) == 1, "every frame uses the clip's palette"
    for src, im in zip(frames, out):
        rgb = np.asarray(im.convert("RGB"), np.float32)
        # dithering: averaged over a column the colour follows the source closely (no flat bands)
        err = np.abs(rgb.mean(0) - src.astype(np.float32).mean(0)).max()
        assert err < 4.0, err


def test_gif_frames_of_a_single_frame():
    from runtime.preview import gif_frames
    (im,) = gif_frames(_gradient_frames(1))
    assert im.size == (192, 48)
