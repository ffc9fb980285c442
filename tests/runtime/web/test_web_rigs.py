"""External rigs in the browser viewer (headless Chromium, fixtures in conftest.py): a material-less,
normal-less scan (the ICT-FaceKit kind), VRM 0.x expressions, eye bones and VRM lookAt."""
from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import numpy as np
from support.browser import Page
from support.glb import FLOAT, U32, GlbBuilder

from runtime.web import WebOptions, WebServer


def _settle(loop, weights=None):
    loop.set_weights(np.zeros(52, np.float32) if weights is None else weights, transition_ms=0)
    time.sleep(0.3)


def _bare_sphere(path: Path, rings: int = 24, segments: int = 32) -> Path:
    """A unit UV sphere as a scan exporter writes it: POSITION and indices only (no NORMAL, no material),
    wound counter-clockwise seen from outside, with one (zero) morph target named jawOpen."""
    th = np.linspace(0, np.pi, rings + 1)
    ph = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    v = np.array([[np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)] for t in th for p in ph], np.float32)
    tris = []
    for r in range(rings):
        for s in range(segments):
            a, b = r * segments + s, r * segments + (s + 1) % segments
            c, d = a + segments, b + segments
            tris += [[a, c, d], [a, d, b]]
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
