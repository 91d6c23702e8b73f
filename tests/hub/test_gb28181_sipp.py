"""The hub's GB/T 28181 side against sipp (Debian's sip-tester) playing the city platform, over UDP and TCP.

The adapter runs in this process on a real SQLite store and the real live fan-out; media is a fake
(tests/hub/test_gb28181_sipp.py's FakeMedia: the SIP logic is what is tested here; RTP is the media side's).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from hub.config import load_settings
from hub.errors import NotFound
from hub.gb28181.adapter import GbAdapter
from hub.gb28181.invite import MediaStarted, StreamLimit
from hub.live.fanout import LiveHub
from hub.live.messages import EventMessage
from hub.store.engine import init_db, make_engine
from hub.store.schema import audit, live_sessions, nodes
from hub.transport.broker import free_port
from tests import sipp

pytestmark = pytest.mark.skipif(sipp.SIPP is None, reason="sipp (Debian sip-tester) is not installed")

HUB_ID = "34020000002000000001"
PLATFORM_ID = "34020000002000000002"
REALM = "3402000000"
PASSWORD = "12345678"
CAMERA_1 = "34020000001320000001"  # pole-01's camera: made from the hub's prefix, serial 1 (hub/gb28181/ids.py)
BUTTON_1 = "34020000001340000001"
CAMERA_OFF = "34020000001320000002"  # pole-02, offline


class FakeMedia:
    """MediaSessions for the SIP tests: records starts and stops, refuses like the real one would."""

    def __init__(self, limit: int = 2, delay_s: float = 0.0) -> None:
        self.limit_per_node = limit
        self.delay_s = delay_s  # a cold encoder takes a while
        self.active: dict[str, str] = {}
        self.started: list[dict[str, Any]] = []
        self.stopped: list[tuple[str, str]] = []

    async def start(self, node_id: str, *, call_id: str, dest_host: str, dest_port: int, transport: str,
                    ssrc: int) -> MediaStarted:
        await asyncio.sleep(self.delay_s)
        if node_id == "pole-02":
            raise NotFound("pole-02 is offline")
        if sum(1 for n in self.active.values() if n == node_id) >= self.limit_per_node:
            raise StreamLimit("limit")
        self.active[call_id] = node_id
        self.started.append({"node": node_id, "call_id": call_id, "dest": (dest_host, dest_port),
                             "transport": transport, "ssrc": ssrc})
        return MediaStarted("127.0.0.1", 41000)

    async def stop(self, call_id: str, reason: str) -> None:
        self.active.pop(call_id, None)
        self.stopped.append((call_id, reason))


def make_store(tmp: Path) -> Any:
    engine = make_engine(f"sqlite:///{tmp / 'hub.db'}")
    init_db(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(nodes.insert(), [
            {"id": "pole-01", "kind": "alarm_post", "place": "文屏路 12号", "grid": "G01", "lat": 24.4872,
             "lon": 118.1121, "state": "online", "created": now},
            {"id": "pole-02", "kind": "alarm_post", "place": "Huli Rd 3", "grid": "G01", "lat": 24.49,
             "lon": 118.12, "state": "offline", "created": now},
        ])
    return engine


async def until(cond: Any, timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def rig(tmp: Path, transport: str, upstream_port: int, media: FakeMedia | None = None,
        **kw: Any) -> SimpleNamespace:
    settings = load_settings(data_dir=tmp, mqtt_enabled=False, gb_id=HUB_ID, gb_password=kw.pop("password", PASSWORD),
                             gb_upstream=f"sip:{PLATFORM_ID}@127.0.0.1:{upstream_port};transport={transport}",
                             gb_sip_port=free_port(), gb_sip_host="127.0.0.1", gb_keepalive_s=1)
    engine = make_store(tmp)
    live = LiveHub()
    live.bind(asyncio.get_running_loop())
    adapter = GbAdapter(settings, engine, live, media, backoff_base_s=kw.pop("backoff_base_s", 0.2),
                        backoff_cap_s=kw.pop("backoff_cap_s", 1.0), answer_timeout_s=kw.pop("answer_timeout_s", 2.0))
    return SimpleNamespace(settings=settings, engine=engine, live=live, adapter=adapter,
                           hub=f"127.0.0.1:{settings.gb_sip_port}")


def platform(tmp: Path, transport: str, password: str = PASSWORD) -> sipp.SippRun:
    return sipp.start("upper_platform.xml", tmp, transport=transport, fields=[[REALM, password, HUB_ID]],
                      timeout_s=60)


def press(live: LiveHub, node: str = "pole-01", kind: str = "alarm.pressed",
          data: dict[str, Any] | None = None) -> None:
    """An event as the ingest writer fans it out after its commit."""
    now = datetime.now(UTC).isoformat()
    live.fanout([EventMessage(cursor=1, event={"id": f"ev-{time.monotonic_ns()}", "node": node, "kind": kind,
                                               "ts": now, "received_at": now, "data": data or {}},
                              alarm={"id": "a1"}).out()])


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_registers_with_digest_keeps_alive_sends_alarms_and_unregisters(tmp_path: Path, transport: str) -> None:
    up = platform(tmp_path, transport)

    async def run() -> SimpleNamespace:
        r = rig(tmp_path, transport, up.port)
        await r.adapter.start()
        try:
            await until(lambda: r.adapter.registration.status.state == "registered", what="registration")
            press(r.live)
            press(r.live, kind="detection.loitering", data={"zone": "gate", "dwell_s": 40})
            press(r.live, kind="detection.person", data={})  # no zone: not an intrusion, stays in the district
            await until(lambda: r.adapter.counts["alarms_sent"] == 2, what="two alarms acknowledged")
            await until(lambda: r.adapter.registration.status.keepalives_sent >= 2, what="keepalives")
            health = r.adapter.health()
        finally:
            await r.adapter.stop()
        return SimpleNamespace(health=health, after=r.adapter.health())

    out = asyncio.run(run())
    up.stop()
    assert out.health["state"] == "registered" and out.health["registrations"] == 1
    assert out.health["keepalives_missed"] == 0 and out.health["alarms_failed"] == 0
    assert out.after["state"] == "unregistered"
    registers = up.received("REGISTER ")
    assert "Authorization: Digest" not in registers[0] and 'username="34020000002000000001"' in registers[1]
    assert "qop=auth" in registers[1] and "X-GB-Ver: 3.0" in registers[0]
    assert "Expires: 0" in registers[-1]  # unregistered at shutdown, with the digest: sipp answered 200
    assert up.sent("SIP/2.0 403") == []
    messages = up.received("MESSAGE ")
    keepalives = [m for m in messages if "<CmdType>Keepalive</CmdType>" in m]
    alarms = [m for m in messages if "<CmdType>Alarm</CmdType>" in m]
    assert keepalives and f"<DeviceID>{HUB_ID}</DeviceID>" in keepalives[0]
    assert len(alarms) == 2
    pressed = next(a for a in alarms if "一键报警" in a)  # decoded from GB2312
    assert 'encoding="GB2312"' in pressed and "Content-Type: Application/MANSCDP+xml" in pressed
    assert f"<DeviceID>{BUTTON_1}</DeviceID>" in pressed
    assert "<AlarmPriority>1</AlarmPriority>" in pressed and "<AlarmMethod>2</AlarmMethod>" in pressed
    assert "<Longitude>118.112100</Longitude>" in pressed and "<Latitude>24.487200</Latitude>" in pressed
    assert "<AlarmType>" not in pressed  # no code in the standard fits a one-key button
    loiter = next(a for a in alarms if "徘徊" in a)
    assert f"<DeviceID>{CAMERA_1}</DeviceID>" in loiter and "<AlarmMethod>5</AlarmMethod>" in loiter
    assert "<AlarmType>8</AlarmType>" in loiter
    assert "Failed regexp" not in up.errors()  # sipp's own checks of every body


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_platform_queries_catalog_and_plays_a_camera(tmp_path: Path, transport: str) -> None:
    up = platform(tmp_path, transport)
    media = FakeMedia()
    fields = [[HUB_ID, CAMERA_1, PLATFORM_ID, REALM, "Play", "RTP/AVP" if transport == "udp" else "TCP/RTP/AVP",
               "passive"]]

    async def uac(scenario: str, row: list[str], name: str, hold_ms: int = 200) -> sipp.SippRun:
        run = sipp.start(scenario, tmp_path, transport=transport, fields=[row], remote=r.hub, calls=1,
                         timeout_s=20, extra=("-d", str(hold_ms)), name=name)
        await asyncio.to_thread(run.proc.wait, 30)
        return run

    async def run() -> dict[str, sipp.SippRun]:
        nonlocal r
        r = rig(tmp_path, transport, up.port, media)
        await r.adapter.start()
        runs: dict[str, sipp.SippRun] = {}
        try:
            await until(lambda: r.adapter.registration.status.state == "registered", what="registration")
            runs["queries"] = await uac("platform_queries.xml", fields[0], "queries")
            runs["play"] = await uac("platform_play.xml", fields[0], "play")
            runs["unknown"] = await uac("platform_play.xml", [*fields[0][:1], "34020000001329999999", *fields[0][2:]],
                                        "unknown")
            runs["offline"] = await uac("platform_play.xml", [*fields[0][:1], CAMERA_OFF, *fields[0][2:]], "offline")
            runs["button"] = await uac("platform_play.xml", [*fields[0][:1], BUTTON_1, *fields[0][2:]], "button")
            runs["playback"] = await uac("platform_play.xml", [*fields[0][:4], "Playback", *fields[0][5:]], "playback")
            await until(lambda: len(up.received("MESSAGE ")) >= 6, what="the query answers at the platform")
        finally:
            await r.adapter.stop()
        return runs

    r: Any = None
    runs = asyncio.run(run())
    up.stop()
    for name, run_ in runs.items():
        assert run_.proc.returncode == 0, (name, run_.errors()[-2000:])
    answers = up.received("MESSAGE ")
    catalog = [m for m in answers if "<Response>" in m and "<CmdType>Catalog</CmdType>" in m]
    items = [i for m in catalog for i in re.findall(r"<Item>.*?</Item>", m, re.S)]
    assert all("<SumNum>6</SumNum>" in m and "<SN>11</SN>" in m for m in catalog)
    assert len(items) == 6  # two poles: camera, button, siren each
    by_id = {re.search(r"<DeviceID>(\d{20})</DeviceID>", i).group(1): i for i in items}  # type: ignore[union-attr]
    assert set(by_id) == {CAMERA_1, BUTTON_1, "34020000001350000001", CAMERA_OFF, "34020000001340000002",
                          "34020000001350000002"}
    assert "<Status>ON</Status>" in by_id[CAMERA_1] and "<Status>OFF</Status>" in by_id[CAMERA_OFF]
    assert "<Name>文屏路 12号 摄像机</Name>" in by_id[CAMERA_1] and "<CivilCode>34020000</CivilCode>" in by_id[CAMERA_1]
    assert f"<ParentID>{HUB_ID}</ParentID>" in by_id[CAMERA_1]
    assert "<Longitude>118.112100</Longitude>" in by_id[CAMERA_1]
    for tag in ("Manufacturer", "Model", "Owner", "Address", "Parental", "SafetyWay", "RegisterWay", "Secrecy"):
        assert f"<{tag}>" in by_id[BUTTON_1]
    info = next(m for m in answers if "<CmdType>DeviceInfo</CmdType>" in m)
    assert "<Result>OK</Result>" in info and "<Channel>6</Channel>" in info
    statuses = [m for m in answers if "<CmdType>DeviceStatus</CmdType>" in m]
    assert any(f"<DeviceID>{CAMERA_1}</DeviceID>" in m and "<Online>ONLINE</Online>" in m for m in statuses)
    refused = runs["queries"].received("SIP/2.0 488")
    assert len(refused) == 2 and "RecordInfo" in refused[0]
    assert runs["queries"].received("SIP/2.0 415")
    # the play: 200 with our SDP, the fake media saw the offer, BYE stopped it
    ok = runs["play"].received("SIP/2.0 200")[0]
    assert "y=0100000001" in ok and "a=sendonly" in ok and "m=video 41000 " in ok and "PS/90000" in ok
    want = "udp" if transport == "udp" else "tcp-active"  # the platform's a=setup:passive: we connect
    assert media.started == [{"node": "pole-01", "call_id": media.started[0]["call_id"], "dest": ("127.0.0.1", 30000),
                              "transport": want, "ssrc": 100000001}]
    assert media.stopped == [(media.started[0]["call_id"], "bye")] and media.active == {}
    assert runs["unknown"].received("SIP/2.0 404") and runs["offline"].received("SIP/2.0 404")
    assert runs["button"].received("SIP/2.0 404")  # not a video channel
    playback = runs["playback"].received("SIP/2.0 488")[0]
    assert "does not record" in playback and "Warning: 399" in playback
    # audited beside the console's live sessions: who (the platform), which pole, how it ended
    with r.engine.connect() as conn:
        rows = {(s.node, s.username, s.end_reason) for s in conn.execute(
            select(live_sessions).where(live_sessions.c.kind == "gb28181"))}
        actions = [a.action for a in conn.execute(select(audit).where(audit.c.action.like("live.gb28181.%")))]
    assert rows == {("pole-01", f"city:{PLATFORM_ID}", "bye"),
                    ("pole-02", f"city:{PLATFORM_ID}", "refused: Not Found: pole-02 is offline"),
                    ("pole-01", f"city:{PLATFORM_ID}", "refused: Not Acceptable Here: the node does not record")}
    assert actions == ["live.gb28181.start", "live.gb28181.end"]


def test_a_200_without_ack_is_sent_again_then_the_stream_stops(tmp_path: Path) -> None:
    up = platform(tmp_path, "udp")
    media = FakeMedia()

    async def run() -> list[bytes]:
        r = rig(tmp_path, "udp", up.port, media)
        r.adapter.calls.ack_wait_s = 2.5
        await r.adapter.start()
        got: list[bytes] = []
        try:
            await until(lambda: r.adapter.registration.status.state == "registered", what="registration")
            invite = play_invite()

            def listen() -> None:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.settimeout(0.5)
                    s.sendto(invite, ("127.0.0.1", r.settings.gb_sip_port))
                    end = time.monotonic() + 4
                    while time.monotonic() < end:
                        try:
                            got.append(s.recv(65536))
                        except TimeoutError:
                            pass

            await asyncio.to_thread(listen)
        finally:
            await r.adapter.stop()
        return got

    got = asyncio.run(run())
    up.stop()
    oks = [g for g in got if g.startswith(b"SIP/2.0 200")]
    assert len(oks) >= 3  # 0.5 s, 1 s, 2 s ... until timer H
    assert media.stopped and media.stopped[0][1] == "no ACK" and media.active == {}


def test_one_stream_past_the_limit_is_busy_here(tmp_path: Path) -> None:
    up = platform(tmp_path, "udp")
    media = FakeMedia(limit=1)
    row = [HUB_ID, CAMERA_1, PLATFORM_ID, REALM, "Play", "RTP/AVP", "passive"]

    async def run() -> tuple[sipp.SippRun, sipp.SippRun]:
        r = rig(tmp_path, "udp", up.port, media)
        await r.adapter.start()
        try:
            await until(lambda: r.adapter.registration.status.state == "registered", what="registration")
            held = sipp.start("platform_play.xml", tmp_path, transport="udp", fields=[row], remote=r.hub, calls=1,
                              timeout_s=20, extra=("-d", "3000"), name="held")
            await until(lambda: len(media.active) == 1, what="the first stream")
            second = sipp.start("platform_play.xml", tmp_path, transport="udp", fields=[row], remote=r.hub,
                                calls=1, timeout_s=20, name="second")
            await asyncio.to_thread(second.proc.wait, 30)
            await asyncio.to_thread(held.proc.wait, 30)
        finally:
            await r.adapter.stop()
        return held, second

    held, second = asyncio.run(run())
    up.stop()
    assert held.received("SIP/2.0 200") and held.proc.returncode == 0
    busy = second.received("SIP/2.0 486")
    assert busy and "Busy Here" in busy[0] and second.proc.returncode == 0
    assert len(media.started) == 1 and media.active == {}


def test_wrong_password_is_refused_retried_with_backoff_and_logged_once(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    up = platform(tmp_path, "udp", password="the-city-has-another")
    caplog.set_level(logging.INFO, logger="hub.gb28181")

    async def run() -> dict[str, Any]:
        r = rig(tmp_path, "udp", up.port, backoff_base_s=0.05, backoff_cap_s=0.3)
        await r.adapter.start()
        try:
            await until(lambda: r.adapter.registration.status.failures >= 4, what="four refused registrations")
            press(r.live)  # an alarm while refused waits for a registration, it is not lost at once nor blocking
            await asyncio.sleep(0.3)
            return r.adapter.health()
        finally:
            await r.adapter.stop()

    health = asyncio.run(run())
    up.stop()
    assert health["state"] == "refused"
    assert "the city platform refused our credentials" in (health["last_error"] or "")
    assert "403" in (health["last_error"] or "")
    assert len(up.sent("SIP/2.0 403")) >= 4  # sipp's verifyauth said no each time
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("hub.gb28181")]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # not one per try
    assert health["alarms_sent"] == 0


def play_invite(ssrc: str = "0100000009") -> bytes:
    """A bare UDP Play INVITE for pole-01's camera (stream asked at 127.0.0.1:30000), as a platform sends it."""
    sdp = (b"v=0\r\no=x 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           b"m=video 30000 RTP/AVP 96\r\na=rtpmap:96 PS/90000\r\ny=" + ssrc.encode() + b"\r\n")
    return _sip("INVITE", body=sdp, extra="Content-Type: application/sdp\r\n").replace(
        f"INVITE sip:{HUB_ID}@".encode(), f"INVITE sip:{CAMERA_1}@".encode())


def _sip(method: str, *, body: bytes = b"", length: int | None = None, extra: str = "") -> bytes:
    head = (f"{method} sip:{HUB_ID}@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{time.time_ns()}\r\n"
            f"From: <sip:{PLATFORM_ID}@{REALM}>;tag=a\r\nTo: <sip:{HUB_ID}@{REALM}>\r\nCall-ID: {time.time_ns()}@x\r\n"
            f"CSeq: 1 {method}\r\n{extra}Content-Length: {len(body) if length is None else length}\r\n\r\n")
    return head.encode() + body


def test_malformed_oversized_and_unsupported_input_is_answered_and_the_loop_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    up = platform(tmp_path, "udp")
    caplog.set_level(logging.INFO, logger="hub.gb28181")

    def udp_ask(port: int, data: bytes, times: int = 1) -> bytes | None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1.0)
            for _ in range(times):
                s.sendto(data, ("127.0.0.1", port))
            try:
                return s.recv(65536)
            except TimeoutError:
                return None

    def tcp_ask(port: int, data: bytes) -> tuple[bytes, bool]:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(data)
            got = b""
            closed = False
            try:
                while b"\r\n\r\n" not in got:
                    chunk = s.recv(65536)
                    if not chunk:
                        closed = True
                        break
                    got += chunk
                s.settimeout(0.5)
                closed = closed or s.recv(1) == b""
            except (TimeoutError, ConnectionError):
                pass
            return got, closed

    async def run() -> dict[str, Any]:
        r = rig(tmp_path, "udp", up.port)
        await r.adapter.start()
        port = r.settings.gb_sip_port
        out: dict[str, Any] = {}
        try:
            await until(lambda: r.adapter.registration.status.state == "registered", what="registration")
            ask = asyncio.to_thread
            out["garbage"] = await ask(udp_ask, port, b"\x00\xffnot sip at all\r\n\r\n", 20)
            out["bad_cseq"] = await ask(udp_ask, port, _sip("MESSAGE").replace(b"CSeq: 1 MESSAGE", b"CSeq: x"))
            out["foo"] = await ask(udp_ask, port, _sip("FOO"))
            out["info"] = await ask(udp_ask, port, _sip("INFO"))
            out["big_udp"] = await ask(udp_ask, port, _sip("MESSAGE", body=b"x" * 40_000))
            out["bad_xml"] = await ask(udp_ask, port, _sip("MESSAGE", body=b"<Query><CmdType>",
                                                           extra="Content-Type: Application/MANSCDP+xml\r\n"))
            out["big_tcp"] = await ask(tcp_ask, port, _sip("MESSAGE", length=10_000_000))
            out["short_tcp"] = await ask(tcp_ask, port, b"GARBAGE\r\n\r\n")
            out["options"] = await ask(udp_ask, port, _sip("OPTIONS"))

            def stranger() -> bytes | None:  # loopback's 127.0.0.2: not the configured platform's address
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind(("127.0.0.2", 0))
                    s.settimeout(1.0)
                    s.sendto(_sip("MESSAGE", body=b"<Query><CmdType>Catalog</CmdType></Query>",
                                  extra="Content-Type: Application/MANSCDP+xml\r\n"), ("127.0.0.1", port))
                    return s.recv(65536)

            out["stranger"] = await ask(stranger)
            out["health"] = r.adapter.health()
            press(r.live)  # the alarm uplink still works
            await until(lambda: r.adapter.counts["alarms_sent"] == 1, what="the alarm after the bad input")
        finally:
            await r.adapter.stop()
        return out

    out = asyncio.run(run())
    up.stop()
    assert out["garbage"] is None  # not a request: dropped
    assert out["bad_cseq"] is not None and out["bad_cseq"].startswith(b"SIP/2.0 400")
    assert out["foo"].startswith(b"SIP/2.0 501")
    assert out["info"].startswith(b"SIP/2.0 405") and b"Allow: INVITE" in out["info"]
    assert out["big_udp"] is None  # over 32 KiB: dropped on UDP
    assert out["bad_xml"].startswith(b"SIP/2.0 400")
    assert out["big_tcp"][0].startswith(b"SIP/2.0 413") and out["big_tcp"][1]  # answered, connection closed
    assert out["short_tcp"][1]  # closed: a stream cannot be resynchronised
    assert out["options"].startswith(b"SIP/2.0 200")
    assert out["stranger"].startswith(b"SIP/2.0 403")
    assert out["health"]["state"] == "registered"
    malformed = [r for r in caplog.records if "malformed SIP" in r.getMessage()]
    assert len(malformed) == 1  # 22 malformed inputs, one line a minute at most


def test_cancel_while_the_stream_starts_is_487_and_stops_it(tmp_path: Path) -> None:
    up = platform(tmp_path, "udp")
    media = FakeMedia(delay_s=1.0)

    async def run() -> list[bytes]:
        r = rig(tmp_path, "udp", up.port, media)
        await r.adapter.start()
        got: list[bytes] = []
        try:
            await until(lambda: r.adapter.registration.status.state == "registered", what="registration")
            invite = play_invite()
            head = invite.split(b"\r\n\r\n")[0].decode()
            lines = {ln.split(":", 1)[0]: ln for ln in head.split("\r\n")[1:]}
            cancel = (f"CANCEL sip:{CAMERA_1}@127.0.0.1 SIP/2.0\r\n{lines['Via']}\r\n{lines['From']}\r\n"
                      f"{lines['To']}\r\n{lines['Call-ID']}\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n").encode()

            def talk() -> None:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.settimeout(0.5)
                    s.sendto(invite, ("127.0.0.1", r.settings.gb_sip_port))
                    time.sleep(0.3)
                    s.sendto(cancel, ("127.0.0.1", r.settings.gb_sip_port))
                    end = time.monotonic() + 2.5
                    while time.monotonic() < end:
                        try:
                            got.append(s.recv(65536))
                        except TimeoutError:
                            pass

            await asyncio.to_thread(talk)
        finally:
            await r.adapter.stop()
        return got

    got = asyncio.run(run())
    up.stop()
    firsts = [g.split(b"\r\n")[0] + b" " + next(ln for ln in g.split(b"\r\n") if ln.startswith(b"CSeq"))
              for g in got]
    assert b"SIP/2.0 200 OK CSeq: 1 CANCEL" in firsts
    assert b"SIP/2.0 487 Request Terminated CSeq: 1 INVITE" in firsts
    assert not any(f.startswith(b"SIP/2.0 200") and f.endswith(b"INVITE") for f in firsts)
    assert media.stopped and media.stopped[0][1] == "cancelled" and media.active == {}
