"""Live view in a real browser: Chromium (headless, fake microphone) against a real broker, hub and pole.
A pressed alarm opens the pole's live picture by itself; the <video> plays (its time advances, the
picture is not blank); Talk turns on the pole's "talking" LED and plays the pole's microphone; Close
ends the session on the node; the map opens live view on any pole."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from hub.transport.broker import Broker
from tests.conftest import ensure_user, wait_for
from tests.edge.test_live_node import scene
from tests.web.test_browser import OPERATOR, launched_chromium, login

MEDIA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


@pytest.fixture()
def media_browser():
    yield from launched_chromium(tuple(MEDIA_ARGS))


def video_plays(page, seconds: float = 1.0) -> None:
    page.wait_for_function(f"""() => {{ const v = document.getElementById('live-video');
        return v && v.videoWidth === 320 && v.currentTime > {seconds}; }}""", timeout=20000)


def not_blank(png: bytes) -> bool:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    return img is not None and float(img.std()) > 20  # the scene's two halves and its text


def test_live_and_talk_in_the_console(broker: Broker, hub_factory, node_factory, media_browser,
                                      tmp_path: Path) -> None:
    hub = hub_factory(broker.url)
    node = node_factory("pole-51", broker.url, hub.register("pole-51"),
                        camera={"source": str(scene(tmp_path / "scene.png")), "width": 320, "height": 240},
                        live={"audio_in": "tone:440", "audio_out": "analyse"})
    hub.wait_online("pole-51")
    ensure_user(hub.data_dir, *OPERATOR, "operator")
    page = media_browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text)  # the CSP (hub/app.py) blocked something
            if m.type == "error" and "Content Security Policy" in m.text else None)
    login(page, hub.url, *OPERATOR)

    node.control(cmd="press")
    page.wait_for_selector('.alarm[data-kind="alarm.pressed"] [data-act="live"]', timeout=20000)
    assert page.is_visible("#live-panel")  # opened by itself on the new alarm
    video_plays(page)
    t0 = page.evaluate("document.getElementById('live-video').currentTime")
    page.wait_for_function(f"() => document.getElementById('live-video').currentTime > {t0 + 1}")  # frames advance
    assert not_blank(page.locator("#live-video").screenshot())
    assert page.text_content("#live-status") == "直播中"
    assert node.control(cmd="state")["state"]["live"]["viewers"] == 1

    page.click("#live-talk")  # a new session with the operator's (fake) microphone
    page.wait_for_selector("#live-ptt", state="visible")
    page.wait_for_function("() => document.getElementById('live-audio').currentTime > 1", timeout=20000)
    video_plays(page)
    wait_for(lambda: node.control(cmd="state")["state"]["led"] == "talking", message="pole shows talking")
    sessions = node.control(cmd="state")["state"]["live"]["sessions"]
    assert len(sessions) == 1 and sessions[0]["talk"] and sessions[0]["operator"] == "wang"
    page.click("#live-openline")
    assert page.evaluate("pingan.live.mic.getAudioTracks()[0].enabled")
    page.screenshot(path=str(tmp_path / "console-live-talk.png"))

    page.click("#live-close")
    page.wait_for_selector("#live-panel", state="hidden")
    wait_for(lambda: node.control(cmd="state")["state"]["live"]["sessions"] == [], message="node ended it")
    state = node.control(cmd="state")["state"]
    assert not state["live"]["encoder_running"] and state["led"] in ("sending", "received")  # the alarm's again

    page.click('.tab[data-tab="map"]')
    page.click('#tab-map [data-node="pole-51"] a')  # no coordinates: listed beside the map (issue 17)
    page.click('#node-page [data-act="live"]')  # its page offers the live view
    video_plays(page, 0.5)
    page.click("header .lang")
    assert page.text_content("#live-close") == "Close"
    page.click("#live-close")
    history = hub.get("/api/live/sessions", node="pole-51")
    assert [h["kind"] for h in history] == ["live", "talk", "live"] and all(h["username"] == "wang" for h in history)
    wait_for(lambda: all(h["ended"] for h in hub.get("/api/live/sessions", node="pole-51")), message="all audited")

    node.stop()  # a pole that is not there: the panel says so instead of spinning
    wait_for(lambda: any(n["id"] == "pole-51" and n["state"] == "offline" for n in hub.get("/api/nodes")),
             message="pole-51 offline")
    # the page learns it from the live stream, a moment after the API: click once it knows
    page.wait_for_function("() => pingan.nodes.some((n) => n.id === 'pole-51' && n.state !== 'online')")
    page.click('.tab[data-tab="map"]')
    page.click('#tab-map [data-node="pole-51"] a')
    page.click('#node-page [data-act="live"]')  # an offline node is not asked for a picture (issue 17)
    page.wait_for_selector('#live-status[data-state="lv_offline"]')
    assert "offline" in page.text_content("#live-status")
    assert not errors, errors
