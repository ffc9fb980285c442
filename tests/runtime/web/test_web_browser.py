"""The viewer in a real browser: headless Chromium (Debian's package) with software WebGL (SwiftShader),
driven by Playwright, against a WebServer on 127.0.0.1 fed by a real AvatarLoop and a tiny model (fixtures in
conftest.py, the page driver in support/browser.py).

Skips only when Chromium, Playwright or the built viewer is absent (each named)."""
from __future__ import annotations

import time
from urllib.parse import urlparse

import numpy as np
from support.browser import LOOPBACK, Page

from runtime.web import WebOptions, WebServer


def _settle(loop, weights=None):
    loop.set_weights(np.zeros(52, np.float32) if weights is None else weights, transition_ms=0)
    time.sleep(0.3)


def test_page_draws_the_face_from_loopback_only(browser, server, loop):
    _settle(loop)
    p = Page(browser, server.url)
    try:
        img = p.canvas()
        h, w, _ = img.shape
        centre = img[h // 3: 2 * h // 3, w // 3: 2 * w // 3]
        assert centre.std() > 10, "the centre of the canvas is uniform: no face drawn"
        assert np.abs(centre - img[2, 2]).sum(axis=2).mean() > 30, "the centre looks like the background"
        s = p.stats()
        from emo3d.avatar.default import default_rig
        n = len(default_rig().target_names)     # the 51 ARKit shapes and tongueOut
        assert s["rig"]["shapes"] == n and s["rig"]["morphBindings"] == n and "tongueOut" in s["rig"]["driven"]
        hosts = {urlparse(u).hostname for u in p.requests if urlparse(u).scheme in ("http", "https", "ws", "wss")}
        assert hosts and hosts <= LOOPBACK, f"requests to non-loopback hosts: {hosts - LOOPBACK}"
        assert {urlparse(u).path for u in p.requests} >= {"/", "/app.js", "/style.css", "/config.json", "/rig.glb",
                                                          "/ws"}
        assert p.errors == []
        # the orbit camera: a drag turns the view
        box = p.page.locator("#view").bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        p.page.mouse.move(cx, cy)
        p.page.mouse.down()
        p.page.mouse.move(cx + 150, cy, steps=8)
        p.page.mouse.up()
        time.sleep(0.5)   # damping settles
        turned = p.canvas()
        assert (np.abs(turned[h // 4: 3 * h // 4, w // 4: 3 * w // 4] - img[h // 4: 3 * h // 4, w // 4: 3 * w // 4])
                .sum(axis=2) > 30).mean() > 0.05, "dragging on the canvas did not turn the view"
    finally:
        p.close()


def test_a_prompt_changes_the_mouth_and_brows(browser, server, loop):
    _settle(loop)
    p = Page(browser, server.url)
    try:
        a, b = p.canvas(), p.canvas()
        h, w, _ = a.shape
        # the whole head is framed (hair to the neck's base): brows at about a third of the height, the
        # mouth at about a half
        brow = (slice(int(h * .25), int(h * .4)), slice(int(w * .3), int(w * .7)))
        mouth = (slice(int(h * .42), int(h * .6)), slice(int(w * .3), int(w * .7)))
        face = (slice(int(h * .1), int(h * .9)), slice(int(w * .1), int(w * .9)))   # the HUD lines stay out
        assert np.abs(a[face] - b[face]).max() <= 2, "a still face must draw the same twice (the comparison below needs it)"
        p.page.fill("#prompt", "furious angry scowl")
        p.page.press("#prompt", "Enter")
        p.wait("s => s.acks.some(a => a.request === 'text')")
        time.sleep(0.6)   # the 150 ms transition
        c = p.canvas()
        for name, region in (("brow", brow), ("mouth", mouth)):
            diff = np.abs(c[region] - a[region]).sum(axis=2)
            assert (diff > 30).mean() > 0.02, f"the {name} region did not change ({(diff > 30).mean():.4f})"
        ack = next(x for x in p.stats()["acks"] if x["request"] == "text")
        assert set(ack["emotions"]) == {"neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                                        "contempt"}
        assert loop.options.idle is False and not p.page.is_checked("#idle")
        p.page.check("#idle")   # the idle toggle is a protocol request
        p.wait("s => s.acks.some(a => a.request === 'idle' && a.idle === true)")
        assert loop.options.idle is True
        p.page.uncheck("#idle")
        p.wait("s => s.acks.filter(a => a.request === 'idle' && a.idle === false).length >= 2")
        assert loop.options.idle is False
        bars = p.page.locator("#emotions .val").all_text_contents()
        assert len(bars) == 8 and any(float(v) > 0 for v in bars)
        assert p.page.locator("#shapes .name").first.text_content() != ""
    finally:
        p.close()


def test_frames_arrive_at_60_hz_and_are_drawn_within_one_animation_frame(browser, server, loop):
    p = Page(browser, server.url)
    try:
        s0, t0 = p.stats(), time.perf_counter()
        time.sleep(3.0)
        s1, t1 = p.stats(), time.perf_counter()
        rate = (s1["framesReceived"] - s0["framesReceived"]) / (t1 - t0)
        draws = (s1["animationFrames"] - s0["animationFrames"]) / (t1 - t0)
        delays = np.array(s1["delayMs"])
        late = max(s1["delayFrames"])
        print(f"\nweb viewer: {rate:.1f} frames/s over the WebSocket, {draws:.1f} animation frames/s drawn; "
              f"{s1['applied']} frames drawn, {s1['superseded']} superseded before a draw; arrival -> drawn median {np.median(delays):.1f} ms, "
              f"p95 {np.percentile(delays, 95):.1f} ms, max {delays.max():.1f} ms; at most {late} animation frame(s)")
        assert rate >= 50.0, f"{rate:.1f} frames/s arrived"
        assert s1["maxDelayFrames"] <= 1, "a frame waited more than one animation frame to be drawn"
    finally:
        p.close()


def test_malformed_messages_get_errors_and_other_pages_keep_going(browser, server):
    a, b = Page(browser, server.url), Page(browser, server.url)
    try:
        replies = a.page.evaluate("""async () => {
            const ws = new WebSocket(`ws://${location.host}/ws`);
            const got = [];
            await new Promise((ok) => ws.onopen = ok);
            const done = new Promise((ok) => ws.onmessage = (e) => {
                const m = JSON.parse(e.data);
                if (m.type !== 'frame') got.push(m);
                if (got.length === 4) ok();
            });
            ws.send('{"type": "text", "text": ');
            ws.send('[]');
            ws.send(JSON.stringify({type: 'text', text: 'x', bogus: 1}));
            ws.send(JSON.stringify({type: 'ping', id: 'after'}));
            await done;
            ws.close();
            return got;
        }""")
        assert [r["type"] for r in replies] == ["error", "error", "error", "pong"]
        assert [r.get("code") for r in replies[:3]] == ["bad_json", "bad_request", "invalid_input"]
        assert "bogus" in replies[2]["message"] and replies[3]["id"] == "after"
        n = b.stats()["framesReceived"]
        b.wait(f"s => s.framesReceived > {n + 30}")
        assert a.stats()["connected"] and b.stats()["connected"]
    finally:
        a.close()
        b.close()


def test_page_reconnects_after_the_server_restarts(browser, loop):
    first = WebServer(loop, WebOptions(port=0)).start()
    port = first.address[1]
    p = Page(browser, first.url)
    try:
        assert p.stats()["connects"] == 1
        first.close()
        p.wait("s => !s.connected")
        assert "reconnecting" in p.page.locator("#conn-text").text_content()
        with WebServer(loop, WebOptions(port=port)) as second:
            p.wait("s => s.connected && s.connects === 2", 30)
            n = p.stats()["framesReceived"]
            p.wait(f"s => s.framesReceived > {n + 10}")
            assert p.page.locator("#conn-text").text_content() == "live"
            assert second.stats.connections >= 1
    finally:
        p.close()


def test_phone_width_layout_and_webm_share(browser, server):
    p = Page(browser, server.url, width=390, height=844)
    try:
        view = p.page.locator("#view").bounding_box()
        panel = p.page.locator("#panel").bounding_box()
        assert view["width"] >= 380 and panel["y"] >= view["y"] + view["height"] - 1, (view, panel)
        assert p.page.evaluate("() => document.scrollingElement.scrollWidth") <= 390, "the page scrolls sideways"
        assert p.canvas().std() > 10
        p.page.click("#share")
        time.sleep(1.5)
        with p.page.expect_download() as dl:
            p.page.click("#share")
        rec = p.stats()["recording"]
        assert rec["bytes"] > 1000 and rec["type"].startswith("video/webm")
        assert dl.value.suggested_filename.endswith(".webm")
    finally:
        p.close()
