"""tongueOut in the browser viewer (headless Chromium, fixtures in conftest.py): a rig's tongue target
(CC4's Tongue_Out here) is bound to the frames' extras.tongueOut and moves on the page."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from support.browser import Page
from support.glb import FLOAT, U32, GlbBuilder

from runtime.web import WebOptions, WebServer


def _tongue_card(path: Path) -> Path:
    """A flat card facing +z with two morph targets: jawOpen (zero) and Tongue_Out, which pushes the card's
    lower middle down and out (a big, visible move)."""
    n = 24
    xs, ys = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n))
    v = np.stack([xs, ys, np.zeros_like(xs)], -1).reshape(-1, 3).astype(np.float32)
    tris = []
    for j in range(n - 1):
        for i in range(n - 1):
            a, b, c, d = j * n + i, j * n + i + 1, (j + 1) * n + i + 1, (j + 1) * n + i
            tris += [[a, b, c], [a, c, d]]
    tongue = np.zeros_like(v)
    band = (np.abs(v[:, 0]) < 0.35) & (v[:, 1] < 0)
    tongue[band] = [0.0, -0.8, 0.6]
    b = GlbBuilder()
    mat = b.material((0.9, 0.5, 0.4, 1.0))
    prim = {"attributes": {"POSITION": b.accessor(v, FLOAT)}, "material": mat,
            "indices": b.accessor(np.array(tris, np.uint32).reshape(-1), U32, index=True),
            "targets": [{"POSITION": b.accessor(np.zeros_like(v))}, {"POSITION": b.accessor(tongue)}]}
    return b.write(path, [b.node(mesh=b.mesh([prim], ["jawOpen", "Tongue_Out"]), name="Card")])


def _settled(p, timeout: float = 5.0):
    """The page's canvas once two captures 0.2 s apart agree (the rig's textures and first frames are in)."""
    last, deadline = p.canvas(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = p.canvas()
        if (np.abs(now - last).sum(axis=2) > 60).mean() == 0:
            return now
        last = now
    return last


def test_the_rigs_tongue_target_follows_the_frames_tongue_out(browser, loop, tmp_path):
    card = _tongue_card(tmp_path / "card.glb")
    loop.set_weights(np.zeros(52, np.float32), transition_ms=0)
    with WebServer(loop, WebOptions(port=0, rig=card)) as server:
        p = Page(browser, server.url, width=500, height=500)
        try:
            rig = p.stats()["rig"]
            assert p.errors == [] and rig["morphBindings"] == 2 and "tongueOut" in rig["driven"]
            still = _settled(p)
            loop.set_weights({"tongueOut": 1.0}, transition_ms=0)
            p.wait("s => s.applied > 0")
            time.sleep(0.4)
            out = p.canvas()
            moved = np.abs(out - still).sum(axis=2) > 60
            h, w = moved.shape
            ys, xs = np.nonzero(moved)
            assert moved.mean() > 0.01, "the tongue target did not move"
            assert abs(xs.mean() - w / 2) < 0.1 * w and ys.mean() > 0.5 * h   # the lower middle of the card
            loop.set_weights(np.zeros(52, np.float32), transition_ms=0)
            deadline, left = time.monotonic() + 5.0, 1.0      # the loop's smoothing and the page's frames settle
            while left >= 0.002 and time.monotonic() < deadline:
                time.sleep(0.2)
                left = (np.abs(p.canvas() - still).sum(axis=2) > 60).mean()
            assert left < 0.002, f"{left:.4f} of the card still differs with tongueOut back at 0"
            assert p.errors == []
        finally:
            p.close()
