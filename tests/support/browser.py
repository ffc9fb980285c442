"""Headless Chromium (Debian's package, SwiftShader software WebGL) driven by Playwright for the viewer's
browser tests: the launch arguments and :class:`Page`, a page on the viewer that records every request."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--use-angle=swiftshader", "--use-gl=angle", "--enable-unsafe-swiftshader", "--no-sandbox",
        "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
        "--disable-backgrounding-occluded-windows", "--autoplay-policy=no-user-gesture-required"]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

__all__ = ["CHROMIUM", "ARGS", "LOOPBACK", "Page", "chromium_present"]


def chromium_present() -> bool:
    return Path(CHROMIUM).is_file()


class Page:
    """A page on the viewer with every request it made."""

    def __init__(self, browser, url: str, width: int = 900, height: int = 600):
        # bypass_csp: lets Playwright evaluate its own scripts; the page's requests are still all recorded
        self.ctx = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True,
                                       accept_downloads=True)
        self.page = self.ctx.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("websocket", lambda ws: self.requests.append(ws.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)
        self.wait("s => s.ready && s.applied > 3", 60)

    def stats(self) -> dict:
        return self.page.evaluate("() => { const s = window.__emo3d; return JSON.parse(JSON.stringify(s)); }")

    def wait(self, predicate: str, timeout_s: float = 20) -> None:
        self.page.wait_for_function(f"() => window.__emo3d && ({predicate})(window.__emo3d)", timeout=timeout_s * 1e3)

    def canvas(self) -> np.ndarray:
        """The canvas as RGB, after two more drawn frames."""
        n = self.stats()["animationFrames"]
        self.wait(f"s => s.animationFrames >= {n + 2}")
        png = self.page.locator("#view").screenshot()
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), np.int16)

    def close(self):
        self.ctx.close()
