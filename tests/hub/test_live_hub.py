"""Live view end to end: a real mosquitto, hub and pole process (file camera); an aiortc viewer signals
through the hub's authenticated API (the offer travels as a signed command, the answer in the node's
reply), decodes the pole's video, hears its microphone, and every session is audited. Roles, the
MJPEG fallback, and sessions that end when the viewer vanishes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from hub.live.video.viewer import Viewer
from hub.transport.broker import Broker
from tests.conftest import ensure_user, wait_for
from tests.edge.test_live_node import scene

OPERATOR = ("wang", "operator-pass-1")
INSTALLER = ("li", "installer-pass-1")


@pytest.fixture()
def street(broker: Broker, hub_factory, node_factory, tmp_path: Path):
    hub = hub_factory(broker.url, live_viewer_timeout_s="3")
    node = node_factory("pole-41", broker.url, hub.register("pole-41"),
                        camera={"source": str(scene(tmp_path / "scene.png")), "width": 320, "height": 240},
                        live={"audio_in": "tone:440", "audio_out": "analyse"})
    hub.wait_online("pole-41")
    ensure_user(hub.data_dir, *OPERATOR, "operator")
    ensure_user(hub.data_dir, *INSTALLER, "installer")
    return hub, node


def auth(hub, user: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {hub.login(*user)}"}


async def watch(hub, headers: dict[str, str], path: str = "/api/nodes/pole-41/live", talk: bool = False):
    viewer = Viewer(talk=talk)
    offer = await viewer.offer()
    async with httpx.AsyncClient(base_url=hub.url, headers=headers, timeout=20) as client:
        r = await client.post(path, json={"sdp": offer})
    if r.status_code != 200:
        await viewer.close()
        return None, r
    await viewer.accept(r.json()["sdp"])
    return viewer, r


def test_operator_watches_and_talks_through_the_hub_and_it_is_audited(street) -> None:
    hub, node = street
    headers = auth(hub, OPERATOR)

    async def main() -> None:
        viewer, r = await watch(hub, headers)
        assert r.status_code == 200, r.text
        session = r.json()["session"]
        await viewer.wait_frames(5, timeout=15)
        img = viewer.latest.to_ndarray(format="bgr24")
        assert img.shape == (240, 320, 3) and img[:, 180:300].mean() > 40  # the file camera's picture
        async with httpx.AsyncClient(base_url=hub.url, headers=headers, timeout=10) as client:
            assert (await client.post(f"/api/live/{session}/keepalive")).status_code == 200
            assert node.control(cmd="state")["state"]["live"]["viewers"] == 1

            talker, r = await watch(hub, headers, "/api/nodes/pole-41/talk", talk=True)
            assert r.status_code == 200, r.text
            await talker.wait_frames(2)
            for _ in range(100):
                if talker.heard.frames > 60:
                    break
                await asyncio.sleep(0.1)
            hz = talker.heard.dominant_hz(1.0)
            assert hz is not None and abs(hz - 440) < 10, hz  # the pole's microphone, heard at the centre
            state = node.control(cmd="state")["state"]
            assert state["led"] == "talking" and state["live"]["viewers"] == 2
            # ... and still one encoder on the node for both viewers
            assert state["live"]["encoder_running"]

            for sid in (session, talker_session := r.json()["session"]):
                assert (await client.delete(f"/api/live/{sid}")).status_code == 200
            assert (await client.post(f"/api/live/{session}/keepalive")).status_code == 404
        await asyncio.gather(viewer.close(), talker.close())
        wait_for(lambda: node.control(cmd="state")["state"]["live"]["sessions"] == [], message="node ended both")
        state = node.control(cmd="state")["state"]
        assert not state["live"]["encoder_running"] and state["led"] == "idle"
        history = {h["id"]: h for h in hub.get("/api/live/sessions", node="pole-41")}
        assert history[session]["username"] == "wang" and history[session]["kind"] == "live"
        assert history[talker_session]["kind"] == "talk"
        assert history[session]["ended"] and history[session]["duration_s"] >= 0
        assert history[session]["end_reason"] == "stopped"

    asyncio.run(asyncio.wait_for(main(), 90))


def test_a_vanished_viewer_ends_the_session_on_hub_and_node(street) -> None:
    hub, node = street

    async def main() -> str:
        viewer, r = await watch(hub, auth(hub, OPERATOR))
        assert r.status_code == 200, r.text
        await viewer.wait_frames(2)
        await viewer.close()  # no keep-alive, no stop: the laptop went to sleep
        return r.json()["session"]

    session = asyncio.run(asyncio.wait_for(main(), 60))
    wait_for(lambda: node.control(cmd="state")["state"]["live"]["sessions"] == [], 30, 0.2, "node ended it")
    wait_for(lambda: any(h["id"] == session and h["ended"] for h in hub.get("/api/live/sessions")), 30, 0.2,
             "hub audited the end")
    assert not node.control(cmd="state")["state"]["live"]["encoder_running"]


def test_roles_and_unauthenticated_signalling(street) -> None:
    hub, _ = street
    installer = auth(hub, INSTALLER)

    async def main() -> None:
        viewer, r = await watch(hub, {})
        assert r.status_code == 401
        viewer, r = await watch(hub, installer, "/api/nodes/pole-41/talk", talk=True)
        assert r.status_code == 403  # installers may watch, not talk
        viewer, r = await watch(hub, installer)
        assert r.status_code == 200, r.text  # ... and watch they may
        await viewer.wait_frames(2)
        async with httpx.AsyncClient(base_url=hub.url, timeout=10) as client:
            sid = r.json()["session"]
            assert (await client.post(f"/api/live/{sid}/keepalive")).status_code == 401
            other = await client.delete(f"/api/live/{sid}", headers=auth(hub, OPERATOR))
            assert other.status_code == 409  # not theirs to stop
            assert (await client.delete(f"/api/live/{sid}", headers=installer)).status_code == 200
            assert (await client.get("/api/live/sessions", headers=installer)).status_code == 403
            bad = await client.post("/api/nodes/no-such-pole/live", json={"sdp": "v=0 m=video"}, headers=installer)
            assert bad.status_code == 404
        await viewer.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_mjpeg_fallback_serves_decodable_jpegs(street) -> None:
    hub, node = street
    parts: list[bytes] = []
    with httpx.stream("GET", f"{hub.url}/api/nodes/pole-41/live.mjpeg", headers=auth(hub, OPERATOR),
                      timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("multipart/x-mixed-replace")
        buf = b""
        for chunk in r.iter_bytes():
            buf += chunk
            while b"\r\n\r\n" in buf and b"Content-Length: " in buf:
                head, _, rest = buf.partition(b"\r\n\r\n")
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                if len(rest) < length + 2:
                    break
                parts.append(rest[:length])
                buf = rest[length + 2:]
            if len(parts) >= 3:
                break
    img = cv2.imdecode(np.frombuffer(parts[-1], np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape == (240, 320, 3)
    wait_for(lambda: node.control(cmd="state")["state"]["live"]["sessions"] == [], 30, 0.2,
             "the hub's relay session ends with its last client")
    assert any(h["kind"] == "mjpeg" and h["ended"] for h in hub.get("/api/live/sessions"))
    assert httpx.get(f"{hub.url}/api/nodes/pole-41/live.mjpeg", timeout=10).status_code == 401


def test_max_session_time_ends_it_on_the_node_and_in_the_audit(broker: Broker, hub_factory, node_factory,
                                                               tmp_path: Path) -> None:
    hub = hub_factory(broker.url)
    node = node_factory("pole-42", broker.url, hub.register("pole-42"),
                        camera={"source": str(scene(tmp_path / "scene.png")), "width": 320, "height": 240},
                        live={"max_session_s": 10})
    hub.wait_online("pole-42")

    async def main() -> None:
        viewer, r = await watch(hub, hub.headers, "/api/nodes/pole-42/live")
        assert r.status_code == 200, r.text
        assert r.json()["max_session_s"] == 10
        sid = r.json()["session"]
        async with httpx.AsyncClient(base_url=hub.url, headers=hub.headers, timeout=10) as client:
            for _ in range(60):  # the console keeps it alive, yet the node's limit ends it
                if (await client.post(f"/api/live/{sid}/keepalive")).status_code == 404:
                    break
                await asyncio.sleep(0.5)
            else:
                raise AssertionError("session still alive after 30 s")
        await viewer.close()
        return sid

    sid = asyncio.run(asyncio.wait_for(main(), 60))
    row = next(h for h in hub.get("/api/live/sessions") if h["id"] == sid)
    assert row["end_reason"] == "node: max_session" and 9 <= row["duration_s"] <= 20, row
    assert node.control(cmd="state")["state"]["live"]["sessions"] == []
