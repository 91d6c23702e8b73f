"""The city plays a pole through the whole hub (issue 19): sipp as the city platform registers the hub (digest),
then sends a Play INVITE for the pole's camera channel; the hub answers with its SDP and streams the pole's own
H.264 (a real pole process with its file camera, over the hub's live path) as MPEG-PS over RTP to the port the
offer named, over UDP and over TCP (the platform's a=setup:passive: the hub connects); the test captures it and
Debian's ffprobe must decode at least 25 frames; the platform's BYE ends it, and the session is in the books
beside the console's."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.app import create_app
from hub.config import load_settings
from hub.store.schema import gb_ids, live_sessions
from hub.transport.broker import free_port
from tests import sipp
from tests.gb_rtp import Capture, probe, tcp_listener, udp_receiver
from tests.hub.test_gb28181_media import node_state, pole  # noqa: F401 - the pole fixture
from tests.hub.test_gb28181_sipp import HUB_ID, PASSWORD, PLATFORM_ID, REALM, platform

pytestmark = pytest.mark.skipif(sipp.SIPP is None, reason="sipp (Debian sip-tester) is not installed")
OFFER_PORT = 30000  # where tests/peers/sipp/platform_play.xml's offer asks for the stream


async def until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_the_city_plays_a_pole_through_the_hub(pole, tmp_path: Path, transport: str) -> None:  # noqa: F811
    p = pole()
    up = platform(tmp_path, transport)
    capture = Capture()

    async def main() -> sipp.SippRun:
        settings = load_settings(
            data_dir=p.data_dir, mqtt_url=p.broker.url, offline_grace_s=0, gb_id=HUB_ID, gb_password=PASSWORD,
            gb_upstream=f"sip:{PLATFORM_ID}@127.0.0.1:{up.port};transport={transport}", gb_sip_port=free_port(),
            gb_sip_host="127.0.0.1", gb_keepalive_s=5)
        app = create_app(settings)
        state = app.state.hub
        async with app.router.lifespan_context(app):
            await until(lambda: node_state(state.engine, p.node) == "online", 30, "the pole online at the hub")
            await until(lambda: state.gb is not None and state.gb.registration.status.state == "registered", 30,
                        "the hub registered with the platform")
            with state.engine.connect() as conn:
                camera = conn.execute(select(gb_ids.c.gb_id).where(gb_ids.c.node == p.node)).scalar()
            assert camera is not None and camera[10:13] == "132"
            if transport == "udp":
                receiver, _ = await udp_receiver(capture, OFFER_PORT)
            else:
                receiver, _ = await tcp_listener(capture, OFFER_PORT)
            try:
                hub_sip = f"127.0.0.1:{settings.gb_sip_port}"
                play = sipp.start("platform_play.xml", tmp_path, transport=transport, remote=hub_sip,
                                  fields=[[HUB_ID, camera, PLATFORM_ID, REALM, "Play",
                                           "RTP/AVP" if transport == "udp" else "TCP/RTP/AVP", "passive"]],
                                  calls=1, timeout_s=40, extra=("-d", "6000"), name="play")
                await asyncio.to_thread(play.proc.wait, 60)
                await capture.wait_frames(25, timeout=10)
            finally:
                receiver.close()
            await until(lambda: _ended(state.engine), 10, "the session closed in the books")
        return play

    play = asyncio.run(main())
    up.stop()
    assert play.proc.returncode == 0, play.errors()[-2000:]
    answer = play.received("SIP/2.0 200")[0]
    assert "y=0100000001" in answer and "a=sendonly" in answer and "PS/90000" in answer
    capture.check_headers(100000001)  # the offer's y= SSRC, numbered and marked per frame
    info = probe(capture.ps(), tmp_path / "city.ps")
    assert info["codec_name"] == "h264" and int(str(info["nb_read_frames"])) >= 25, info
    assert not info["errors"], info


def _ended(engine: Any) -> bool:
    with engine.connect() as conn:
        rows = conn.execute(select(live_sessions).where(live_sessions.c.kind == "gb28181",
                                                        live_sessions.c.username.like("city:%"))).all()
    return len(rows) == 1 and rows[0].ended is not None and rows[0].end_reason == "bye"


def test_a_stream_the_media_side_ends_sends_bye_to_the_platform(tmp_path: Path) -> None:
    """The pole's max session, its link, or a stalled receiver end a city stream from below: the platform hears
    a BYE in the dialog (its From tag as our To tag, our 200's tag as our From tag), and the books close."""
    import socket

    from sqlalchemy import select as sel

    from tests.hub.test_gb28181_sipp import FakeMedia, _sip, play_invite, rig

    media = FakeMedia()
    got: list[bytes] = []

    async def run() -> Any:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plat:  # the platform, as simple as it gets
            plat.bind(("127.0.0.1", 0))
            plat.settimeout(0.2)
            r = rig(tmp_path, "udp", plat.getsockname()[1], media)
            await r.adapter.start()
            try:
                invite = play_invite("0100000007")
                call_id = next(line.split(b": ", 1)[1] for line in invite.split(b"\r\n")
                               if line.startswith(b"Call-ID")).decode()

                def talk() -> None:
                    plat.sendto(invite, ("127.0.0.1", r.settings.gb_sip_port))
                    end = time.monotonic() + 10
                    while time.monotonic() < end:
                        try:
                            data, addr = plat.recvfrom(65536)
                        except TimeoutError:
                            continue
                        got.append(data)
                        if data.startswith(b"SIP/2.0 200") and b"INVITE" in data.split(b"CSeq:")[1][:20]:
                            ack = _sip("ACK").replace(b"Call-ID: ", b"X-Old: ", 1)
                            plat.sendto(ack.replace(b"X-Old: ", b"Call-ID: " + call_id.encode() + b"\r\nX-Old: ", 1),
                                        addr)
                            asyncio.run_coroutine_threadsafe(r.adapter.media_ended(call_id, "max session"), loop)
                        if data.startswith(b"BYE "):
                            head = data.split(b"\r\n\r\n")[0].decode()
                            lines = [ln for ln in head.split("\r\n") if ln.split(":")[0] in ("Via", "From", "To",
                                                                                            "Call-ID", "CSeq")]
                            ok = "SIP/2.0 200 OK\r\n" + "\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n"
                            plat.sendto(ok.encode(), addr)
                            return

                loop = asyncio.get_running_loop()
                await asyncio.to_thread(talk)
                await until(lambda: not r.adapter.calls.calls, 5, "the call closed")
            finally:
                await r.adapter.stop()
            return r, call_id

    r, call_id = asyncio.run(run())
    bye = next(g for g in got if g.startswith(b"BYE ")).decode()
    assert f"Call-ID: {call_id}" in bye and "To: <sip:" in bye and ";tag=a" in bye.split("To:")[1].split("\r\n")[0]
    assert media.stopped == [(call_id, "max session")]
    with r.engine.connect() as conn:
        [row] = conn.execute(sel(live_sessions).where(live_sessions.c.kind == "gb28181")).all()
    assert row.end_reason == "max session" and row.ended is not None
