"""SUBSCRIBE to Catalog and Alarm: 200 with Expires, then NOTIFYs on a node's change and on an alarm, ended by
Expires: 0. The platform here is a plain UDP socket (sipp's UAS cannot hold a subscription dialog open)."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path

from hub.gb28181.sip import SipMessage, parse_datagram, response_to
from hub.live.messages import NodeState
from tests.hub.test_gb28181_sipp import HUB_ID, PLATFORM_ID, press, rig, until


class Platform:
    """Answers every request 200 (REGISTER included, no challenge) and keeps what it got."""

    def __init__(self, expires: int = 3600) -> None:
        self.expires = expires
        self.deaf = False  # a platform that stops answering (keepalives, registrations)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.got: list[SipMessage] = []

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data, addr = await loop.sock_recvfrom(self.sock, 65536)
            msg = parse_datagram(data)
            self.got.append(msg)
            if msg.is_request:
                if self.deaf:
                    continue
                resp = response_to(msg, 200)
                if msg.method == "REGISTER":
                    resp.add("Expires", str(self.expires))
                await loop.sock_sendto(self.sock, resp.encode(), addr)

    async def subscribe(self, hub: tuple[str, int], event: str, expires: int, call_id: str, cseq: int) -> SipMessage:
        body = (f'<?xml version="1.0" encoding="GB2312"?><Query><CmdType>{event}</CmdType><SN>9</SN>'
                f"<DeviceID>{HUB_ID}</DeviceID></Query>").encode()
        req = SipMessage(method="SUBSCRIBE", uri=f"sip:{HUB_ID}@{hub[0]}:{hub[1]}")
        for k, v in (("Via", f"SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{time.time_ns()}"),
                     ("From", f"<sip:{PLATFORM_ID}@3402000000>;tag=p1"), ("To", f"<sip:{HUB_ID}@3402000000>"),
                     ("Call-ID", call_id), ("CSeq", f"{cseq} SUBSCRIBE"), ("Event", event),
                     ("Expires", str(expires)), ("Contact", f"<sip:{PLATFORM_ID}@127.0.0.1:{self.port}>"),
                     ("Content-Type", "Application/MANSCDP+xml")):
            req.add(k, v)
        req.body = body
        before = len(self.got)
        await asyncio.get_running_loop().sock_sendto(self.sock, req.encode(), hub)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for m in self.got[before:]:
                if not m.is_request and m.call_id == call_id:
                    return m
            await asyncio.sleep(0.02)
        raise AssertionError("no answer to SUBSCRIBE")


def test_catalog_and_alarm_subscriptions_notify_until_they_expire(tmp_path: Path) -> None:
    async def run() -> None:
        platform = Platform()
        server = asyncio.create_task(platform.serve())
        r = rig(tmp_path, "udp", platform.port)
        await r.adapter.start()
        hub = ("127.0.0.1", r.settings.gb_sip_port)
        try:
            deadline = time.monotonic() + 10
            while r.adapter.registration.status.state != "registered":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            ok = await platform.subscribe(hub, "Catalog", 600, "sub-cat", 1)
            assert ok.status == 200 and ok.get("Expires") == "600"
            ok = await platform.subscribe(hub, "Alarm", 600, "sub-alarm", 1)
            assert ok.status == 200
            bad = await platform.subscribe(hub, "MobilePosition", 600, "sub-pos", 1)
            assert bad.status == 489

            def notifies(call_id: str) -> list[SipMessage]:
                return [m for m in platform.got if m.method == "NOTIFY" and m.call_id == call_id]

            r.live.fanout([NodeState(node="pole-01", state="offline").out()])
            press(r.live)
            deadline = time.monotonic() + 10
            while not (notifies("sub-cat") and notifies("sub-alarm")):
                assert time.monotonic() < deadline, "no NOTIFY"
                await asyncio.sleep(0.05)
            cat = notifies("sub-cat")[0]
            text = cat.body.decode("gb18030")
            assert cat.get("Event") == "Catalog" and "active;expires=" in (cat.get("Subscription-State") or "")
            assert "<Event>OFF</Event>" in text and "<SumNum>3</SumNum>" in text and "p1" in (cat.get("To") or "")
            assert "<CmdType>Alarm</CmdType>" in notifies("sub-alarm")[0].body.decode("gb18030")
            # ended by the platform: no NOTIFY after Expires: 0
            assert (await platform.subscribe(hub, "Catalog", 0, "sub-cat", 2)).status == 200
            count = len(notifies("sub-cat"))
            r.live.fanout([NodeState(node="pole-01", state="online").out()])
            await asyncio.sleep(0.5)
            assert len(notifies("sub-cat")) == count
        finally:
            await r.adapter.stop()
            server.cancel()
            platform.sock.close()

    asyncio.run(run())


def test_a_catalog_subscription_hears_nodes_added_and_removed(tmp_path: Path) -> None:
    """A node registered or removed elsewhere (the CLI, the console: another process) reaches a Catalog
    subscription as ADD with its channels and DEL with the removed node's, from the adapter's comparison."""
    from datetime import UTC, datetime

    from sqlalchemy import update

    from hub.gb28181 import catalog
    from hub.store.schema import nodes

    async def run() -> None:
        platform = Platform()
        server = asyncio.create_task(platform.serve())
        r = rig(tmp_path, "udp", platform.port)
        r.adapter.catalog_diff_s = 0.2
        await r.adapter.start()
        hub = ("127.0.0.1", r.settings.gb_sip_port)
        try:
            await until(lambda: r.adapter.registration.status.state == "registered", 10, "registration")
            assert (await platform.subscribe(hub, "Catalog", 600, "sub-cat", 1)).status == 200
            gone = [c.gb_id for c in catalog.channels(r.engine, "pole-02")]
            assert gone
            with r.engine.begin() as conn:
                conn.execute(nodes.insert().values(id="door-09", kind="rental_door", place="Lane 9", grid="G01",
                                                   state="unknown", created=datetime.now(UTC)))
                conn.execute(update(nodes).where(nodes.c.id == "pole-02").values(state="removed"))

            def notified() -> str:
                return "".join(re.sub(r">\s+<", "><", m.body.decode("gb18030")) for m in platform.got
                               if m.method == "NOTIFY" and m.call_id == "sub-cat")

            await until(lambda: "<Event>ADD</Event>" in notified() and "<Event>DEL</Event>" in notified(), 10,
                        "an ADD and a DEL NOTIFY")
            text = notified()
            added = [c.gb_id for c in catalog.channels(r.engine, "door-09")]
            assert added and all(f"<DeviceID>{g}</DeviceID><Name>Lane 9" in text for g in added), text
            assert all(f"<DeviceID>{g}</DeviceID><Event>DEL</Event>" in text for g in gone), text
            assert text.count("<Event>ADD</Event>") == len(added)  # the others are not announced again
            await asyncio.sleep(0.5)  # nothing changes: nothing more
            assert notified() == text
        finally:
            await r.adapter.stop()
            server.cancel()
            platform.sock.close()

    asyncio.run(run())
