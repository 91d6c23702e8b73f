"""GB/T 28181 live video end to end: a real mosquitto, a pole process with its file camera and H.264 live path, and
the hub (in this process, so the test holds its LiveService as the SIP side will). GbMediaSessions streams the
pole to a receiver written here from the RFCs, over UDP, TCP active and TCP passive; the captured RTP is unwrapped
and Debian's ffprobe must decode H.264 from the MPEG-PS. Also: one pole session shared by the city sessions, the
per-pole limit, unknown and offline poles, stop, a platform that never connects, the pole ending its session, and
the audit."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from hub.app import create_app
from hub.config import load_settings
from hub.errors import NotFound
from hub.gb28181.media import GbMediaSessions, StreamLimit
from hub.live.video.service import NodeUnavailable
from hub.store.schema import audit, live_sessions, nodes
from hub.transport.broker import Broker
from tests.edge.test_live_node import scene
from tests.gb_rtp import Capture, probe, tcp_connect, tcp_listener, udp_receiver

POLE = "pole-51"


def register(data_dir: Path, broker_url: str, node: str) -> str:
    env = {**os.environ, "PINGAN_DATA_DIR": str(data_dir), "PINGAN_MQTT_URL": broker_url}
    out = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "add", node, "--grid", "G01", "--place",
                          "Test street", "--out", str(data_dir.parent / "bundles")],
                         env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture()
def pole(broker: Broker, node_factory, tmp_path: Path):
    """Registered and running; the hub is started inside each test's event loop (``city_hub``)."""
    def make(node: str = POLE, **live: Any) -> SimpleNamespace:
        data_dir = tmp_path / "hub"
        key = register(data_dir, broker.url, node)
        proc = node_factory(node, broker.url, key,
                            camera={"source": str(scene(tmp_path / "scene.png")), "width": 320, "height": 240},
                            live=live)
        return SimpleNamespace(node=node, proc=proc, data_dir=data_dir, broker=broker)
    return make


@asynccontextmanager
async def city_hub(p: SimpleNamespace, settings: dict[str, Any] | None = None,
                   **media: Any) -> AsyncIterator[SimpleNamespace]:
    app = create_app(load_settings(data_dir=p.data_dir, mqtt_url=p.broker.url, offline_grace_s=0, **(settings or {})))
    state = app.state.hub
    async with app.router.lifespan_context(app):
        deadline = time.monotonic() + 30
        while await asyncio.to_thread(node_state, state.engine, p.node) != "online":
            assert time.monotonic() < deadline, f"{p.node} not online at the hub"
            await asyncio.sleep(0.1)
        ended: list[tuple[str, str]] = []
        sessions = GbMediaSessions(state.liveview, state.engine, bind_host="127.0.0.1",
                                   on_end=lambda call_id, reason: ended.append((call_id, reason)), **media)
        try:
            yield SimpleNamespace(state=state, media=sessions, ended=ended, live=state.liveview)
        finally:
            await sessions.close()


def node_state(engine: Any, node: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(nodes.c.state).where(nodes.c.id == node)).scalar()


def rows(engine: Any, table: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(table)).all())


def node_live(p: SimpleNamespace) -> dict[str, Any]:
    return p.proc.control(cmd="state")["state"]["live"]


async def until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


def decodable(capture: Capture, ssrc: int, path: Path, at_least: int = 25) -> dict[str, Any]:
    capture.check_headers(ssrc)
    info = probe(capture.ps(), path)
    assert info["codec_name"] == "h264" and (info["width"], info["height"]) == (320, 240), info
    assert int(str(info["nb_read_frames"])) >= at_least, info
    assert not info["errors"], info  # it starts at an IDR: nothing the decoder could not place
    return info


def test_udp_stream_decodes_as_h264_in_mpeg_ps_and_is_audited(pole, tmp_path: Path) -> None:
    p = pole()

    async def main() -> None:
        async with city_hub(p) as hub:
            capture = Capture()
            transport, port = await udp_receiver(capture)
            started = await hub.media.start(p.node, call_id="call-udp@city", dest_host="127.0.0.1", dest_port=port,
                                            transport="udp", ssrc=110000001)
            assert started.local_host == "127.0.0.1" and started.local_port > 0
            await capture.wait_frames(40, timeout=40)
            assert {pk.ssrc for pk in capture.packets} == {110000001}
            await hub.media.stop("call-udp@city", "bye")
            count = len(capture.packets)
            await asyncio.sleep(1.0)
            assert len(capture.packets) == count, "stop ends the stream"
            transport.close()
            decodable(capture, 110000001, tmp_path / "udp.ps")
            await until(lambda: not hub.live.open, 10, "the pole's session ends with the last city session")
            await until(lambda: node_live(p)["sessions"] == [], 20, "the node ended it too")
            lives = {r.username: r for r in rows(hub.state.engine, live_sessions)}
            assert set(lives) == {"gb28181", "gb28181:127.0.0.1"}
            assert all(r.kind == "gb28181" and r.ended is not None for r in lives.values())
            assert lives["gb28181:127.0.0.1"].end_reason == "bye"
            actions = [(a.action, a.detail.get("call_id")) for a in rows(hub.state.engine, audit)
                       if a.action.startswith("live.gb28181")]
            assert {("live.gb28181.start", "call-udp@city"), ("live.gb28181.end", "call-udp@city")} <= set(actions)
            assert hub.ended == []  # stopped by the SIP side: no BYE to send back

    asyncio.run(asyncio.wait_for(main(), 120))


def test_tcp_active_and_passive_share_one_pole_session_and_the_limit_holds(pole, tmp_path: Path) -> None:
    p = pole()

    async def main() -> None:
        async with city_hub(p, limit_per_node=2) as hub:
            active, passive = Capture(), Capture()
            server, port = await tcp_listener(active)
            await hub.media.start(p.node, call_id="call-active", dest_host="127.0.0.1", dest_port=port,
                                  transport="tcp-active", ssrc=1)
            started = await hub.media.start(p.node, call_id="call-passive", dest_host="127.0.0.1", dest_port=9,
                                            transport="tcp-passive", ssrc=2)
            writer = await tcp_connect(started.local_port, passive)
            assert len(hub.live.open) == 1, "one pole session for both city sessions"
            assert node_live(p)["viewers"] == 1
            with pytest.raises(StreamLimit):
                await hub.media.start(p.node, call_id="call-third", dest_host="127.0.0.1", dest_port=port,
                                      transport="udp", ssrc=3)
            with pytest.raises(NotFound):
                await hub.media.start("pole-nobody", call_id="call-nobody", dest_host="127.0.0.1", dest_port=port,
                                      transport="udp", ssrc=4)
            await asyncio.gather(active.wait_frames(40, 40), passive.wait_frames(40, 40))
            await hub.media.stop("call-active", "bye")
            await asyncio.wait_for(active.closed.wait(), 5)  # our end of the TCP connection closed
            assert len(hub.live.open) == 1  # the passive session still runs on it
            await hub.media.stop("call-passive", "bye")
            await asyncio.wait_for(passive.closed.wait(), 5)
            writer.close()
            server.close()
            decodable(active, 1, tmp_path / "active.ps")
            decodable(passive, 2, tmp_path / "passive.ps")
            await until(lambda: not hub.live.open, 10, "the pole's session ended")

    asyncio.run(asyncio.wait_for(main(), 120))


def test_platform_never_connects_and_pole_ends_its_session(pole, tmp_path: Path) -> None:
    p = pole(max_session_s=10)

    async def main() -> None:
        async with city_hub(p, accept_timeout_s=2.0) as hub:
            await hub.media.start(p.node, call_id="call-ghost", dest_host="127.0.0.1", dest_port=9,
                                  transport="tcp-passive", ssrc=5)
            await until(lambda: hub.ended, 10, "the passive session timed out")
            assert hub.ended[0][0] == "call-ghost" and "did not connect" in hub.ended[0][1]
            assert "call-ghost" not in hub.media.sessions
            await until(lambda: not hub.live.open, 10, "no city session left: the pole's session ends")

            capture = Capture()
            transport, port = await udp_receiver(capture)
            await hub.media.start(p.node, call_id="call-long", dest_host="127.0.0.1", dest_port=port,
                                  transport="udp", ssrc=6)
            await capture.wait_frames(10, 20)
            await until(lambda: len(hub.ended) == 2, 30, "the pole's max session time ends the city session")
            assert hub.ended[1][0] == "call-long" and "max_session" in hub.ended[1][1], hub.ended
            assert not hub.media.sessions and not hub.media.sources
            transport.close()
            ends = {r.id: r.end_reason for r in rows(hub.state.engine, live_sessions)}
            assert any("did not connect" in (r or "") for r in ends.values())

    asyncio.run(asyncio.wait_for(main(), 120))


def test_a_pole_that_does_not_answer_and_an_offline_pole(pole, tmp_path: Path) -> None:
    """A frozen pole (still online at the hub) does not answer live.start: NodeUnavailable, nothing left open,
    and the hub's other work (here: the same pole answering again) goes on. An offline pole is NotFound."""
    p = pole()

    async def main() -> None:
        async with city_hub(p, {"live_answer_timeout_s": 2}) as hub:
            os.kill(p.proc.proc.pid, signal.SIGSTOP)
            try:
                with pytest.raises(NodeUnavailable, match="did not answer"):
                    await hub.media.start(p.node, call_id="call-frozen", dest_host="127.0.0.1", dest_port=9,
                                          transport="udp", ssrc=8)
            finally:
                os.kill(p.proc.proc.pid, signal.SIGCONT)
            assert not hub.media.sessions and not hub.media.sources and not hub.live.open
            lives = rows(hub.state.engine, live_sessions)
            assert all(r.ended is not None for r in lives)  # the pole's refused try, if any, is closed
            capture = Capture()
            transport, port = await udp_receiver(capture)
            await hub.media.start(p.node, call_id="call-thawed", dest_host="127.0.0.1", dest_port=port,
                                  transport="udp", ssrc=9)
            await capture.wait_frames(5, 20)
            await hub.media.stop("call-thawed", "bye")
            transport.close()
            p.proc.stop()
            await until(lambda: node_state(hub.state.engine, p.node) == "offline", 30, "pole offline at the hub")
            with pytest.raises(NotFound, match="offline"):
                await hub.media.start(p.node, call_id="call-off", dest_host="127.0.0.1", dest_port=9,
                                      transport="udp", ssrc=7)
            assert not hub.media.sessions

    asyncio.run(asyncio.wait_for(main(), 90))
