"""Fixtures of the viewer's browser tests: one headless Chromium, one AvatarLoop on a tiny model and one
WebServer on 127.0.0.1 per module. The browser fixture skips only when Chromium, Playwright or the built
viewer is absent (each named)."""
from __future__ import annotations

import pytest
from support.assets import missing_asset, require_module
from support.browser import ARGS, CHROMIUM, chromium_present
from support.tiny import make_tiny_model

from runtime.engine import Engine, EngineOptions
from runtime.loop import AvatarLoop, LoopOptions
from runtime.web import BUILD_COMMAND, STATIC_DIR, WebOptions, WebServer


@pytest.fixture(scope="module")
def browser():
    if not chromium_present():
        missing_asset(f"Chromium ({CHROMIUM})", "apt-get install chromium; .ci/run does")
    if not (STATIC_DIR / "index.html").is_file():
        missing_asset(f"the built viewer {STATIC_DIR}/index.html", BUILD_COMMAND)
    sync_playwright = require_module("playwright.sync_api", "pip install playwright; no browser download").sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    model = make_tiny_model(tmp_path_factory.mktemp("tiny_web") / "model", emotions=True)
    engine = Engine.create(EngineOptions(model=model, device="cpu"))
    lp = AvatarLoop(engine, LoopOptions(idle=False, transition_ms=150))
    lp.start()
    yield lp
    lp.close()


@pytest.fixture(scope="module")
def server(browser, loop):
    s = WebServer(loop, WebOptions(port=0)).start()
    yield s
    s.close()
