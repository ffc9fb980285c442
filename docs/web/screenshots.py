"""Regenerate the screenshots in docs/web/: ``python docs/web/screenshots.py [--model default]``.

Runs the real avatar loop on the model, serves the viewer (default head, then the ICT-FaceKit rig from
``../shared/rigs``), types a prompt into headless Chromium (Debian's ``chromium``, software WebGL) and
saves the page. Needs the built viewer (``bash scripts/build_web.sh``) and Playwright for Python.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from runtime.engine import Engine, EngineOptions
from runtime.loop import AvatarLoop, LoopOptions
from runtime.web import WebOptions, WebServer

HERE = Path(__file__).resolve().parent
ARGS = ["--use-angle=swiftshader", "--use-gl=angle", "--enable-unsafe-swiftshader", "--no-sandbox"]


def shoot(browser, url: str, prompt: str, out: Path, width: int, height: int, full_page: bool = False) -> None:
    page = browser.new_page(viewport={"width": width, "height": height}, bypass_csp=True)
    page.goto(url)
    page.wait_for_function("() => window.__emo3d && window.__emo3d.ready && window.__emo3d.applied > 3",
                           timeout=120_000)
    page.fill("#prompt", prompt)
    page.press("#prompt", "Enter")
    page.wait_for_function("() => window.__emo3d.acks.some(a => a.request === 'text')", timeout=60_000)
    time.sleep(2.0)
    page.screenshot(path=str(out), full_page=full_page)
    page.close()
    print(f"wrote {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--rig", default=str(HERE.parents[2] / "shared" / "rigs" / "ict_facekit_arkit.glb"))
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    loop = AvatarLoop(Engine.create(EngineOptions(model=args.model, device="cpu")), LoopOptions(idle=False))
    loop.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=ARGS)
            with WebServer(loop, WebOptions(port=0)) as server:
                shoot(browser, server.url, "furious scowl", HERE / "default-head.png", 1100, 700)
                shoot(browser, server.url, "a big happy smile", HERE / "phone.png", 390, 844, full_page=True)
            if Path(args.rig).is_file():
                with WebServer(loop, WebOptions(port=0, rig=Path(args.rig))) as server:
                    shoot(browser, server.url, "shocked, mouth wide open", HERE / "ict-facekit.png", 1100, 700)
            else:
                print(f"skipped the external rig: {args.rig} not found")
            browser.close()
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
