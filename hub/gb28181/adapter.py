"""The GB/T 28181 adapter: the one object the hub starts (only when PINGAN_GB_UPSTREAM is set) and stops.

It owns the SIP transport, the registration, the alarm uplink and the Play sessions, and routes what
the city platform sends: MESSAGE (MANSCDP Query: Catalog, DeviceInfo, DeviceStatus), SUBSCRIBE
(Catalog, Alarm), INVITE/ACK/BYE/CANCEL (Play), OPTIONS. Everything runs on its own tasks; it reads the
store in worker threads and takes events from the live fan-out as a console does, so nothing here can
block or slow ingest and the alarm path. Requests from any host but the platform's are answered 403.

Answers: a supported query gets 200 and then its Response MESSAGE(s); a query or control the hub does
not support gets 488 with the CmdType named; a body that is not MANSCDP 415, bad XML 400; a known SIP
method we do not serve 405 (with Allow), an unknown one 501.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from hub import __version__
from hub.config import HubSettings
from hub.gb28181 import catalog, ids, manscdp
from hub.gb28181.alarms import AlarmCode, alarm_body, code_for
from hub.gb28181.catalog import Channel
from hub.gb28181.invite import Calls, MediaSessions, SessionAudit
from hub.gb28181.manscdp import Node
from hub.gb28181.registration import Registration
from hub.gb28181.sip import SipMessage, Upstream, parse_upstream, remote_target, response_to, tag_of, user_of
from hub.gb28181.transport import Addr, RateLog, Reply, SipTransport
from hub.gb28181.ua import UserAgent
from hub.gb28181.uplink import FRESH_S, GIVE_UP_AFTER, KINDS, StoredAlarm, UplinkStore
from hub.live.fanout import LiveClient, LiveHub
from hub.runtime import metrics
from hub.store.engine import now_utc

log = logging.getLogger(__name__)
ALLOW = "INVITE, ACK, BYE, CANCEL, MESSAGE, SUBSCRIBE, OPTIONS"
KNOWN_METHODS = {"REGISTER", "INFO", "NOTIFY", "UPDATE", "PRACK", "REFER", "PUBLISH"}
ALARM_QUEUE = 10_000
ALARM_TRIES = 3
ALARM_WAIT_REGISTERED_S = 300.0  # then it is left to the sweep, which sends it once registered
SWEEP_S = 30.0  # how often the store is swept for alarms the live path did not get up (hub/gb28181/uplink.py)
PURGE_EVERY_S = 3600.0
CATALOG_DIFF_S = 30.0  # how often the catalog is compared with the last one: nodes added or removed (ADD/DEL)


@dataclass
class Subscription:
    kind: str  # Catalog | Alarm
    call_id: str
    their: str  # their From (our To)
    ours: str   # their To with our tag (our From)
    uri: str
    expires_at: float
    cseq: int = 0


@dataclass
class PendingAlarm:
    event_id: str
    channel: Channel
    code: AlarmCode
    ts: str
    queued_at: float


class GbAdapter:
    def __init__(self, settings: HubSettings, engine: Engine, live: LiveHub, media: MediaSessions | None = None,
                 *, backoff_base_s: float = 1.0, backoff_cap_s: float = 60.0, answer_timeout_s: float = 8.0,
                 page_size: int | None = None) -> None:
        assert settings.gb_upstream and settings.gb_id and settings.gb_password  # checked by HubSettings
        self.settings = settings
        self.engine = engine
        self.live = live
        self.hub_id = settings.gb_id
        self.upstream: Upstream = parse_upstream(settings.gb_upstream)
        self.prefix = ids.prefix_of(settings.gb_civil_code, self.hub_id)
        self.transport = SipTransport(self.upstream, host=settings.gb_sip_host, port=settings.gb_sip_port,
                                      handler=self.handle)
        self.ua = UserAgent(self.hub_id, self.upstream, self.transport)
        self.registration = Registration(self.ua, password=settings.gb_password, expires_s=settings.gb_expires_s,
                                         keepalive_s=settings.gb_keepalive_s, backoff_base_s=backoff_base_s,
                                         backoff_cap_s=backoff_cap_s, answer_timeout_s=answer_timeout_s)
        self.calls = Calls(media, SessionAudit(engine))
        self.page_size = page_size or (4 if self.upstream.transport == "udp" else 50)
        self.subscriptions: dict[str, Subscription] = {}
        self.alarms: asyncio.Queue[PendingAlarm] = asyncio.Queue(ALARM_QUEUE)
        # sent: taken by the platform; failed: a try not taken (it is tried again unless refused for good);
        # dropped: given up after a day; resent: sent from the store after the live path missed or failed it
        self.counts = {"alarms_sent": 0, "alarms_failed": 0, "alarms_dropped": 0, "alarms_resent": 0}
        self.uplink = UplinkStore(engine)
        self._inflight: set[str] = set()  # queued or being sent: neither path takes it again
        self._sweep_now = asyncio.Event()
        self.catalog_diff_s = CATALOG_DIFF_S
        self.ratelog = RateLog()
        self._tasks: list[asyncio.Task[None]] = []
        self._allowed: set[str] = {self.upstream.host}
        self._client: LiveClient | None = None
        self._node_changes: dict[str, str] = {}
        self._node_changed = asyncio.Event()

    # --- life

    async def start(self) -> None:
        with contextlib.suppress(OSError):
            for info in await asyncio.get_running_loop().getaddrinfo(self.upstream.host, self.upstream.port,
                                                                     type=socket.SOCK_DGRAM):
                self._allowed.add(str(info[4][0]))
        await asyncio.to_thread(catalog.assign_missing, self.engine, self.prefix)
        await asyncio.to_thread(self.uplink.mark, now_utc())  # the first start: no history goes up
        await self.transport.start()
        self._client = self.live.subscribe()
        for coro in (self.registration.run(), self._watch_live(), self._send_alarms(), self._notify_catalog(),
                     self._sweep(), self._watch_catalog()):
            self._tasks.append(asyncio.create_task(self._guard(coro)))
        log.info("GB28181: hub %s joining %s over %s from port %d", self.hub_id, self.upstream.uri,
                 self.upstream.transport.upper(), self.settings.gb_sip_port)

    async def media_ended(self, call_id: str, reason: str) -> None:
        """The media side ended a city stream by itself (the pole's limit, its link, a stalled platform): the
        platform hears a BYE in the dialog and the session is closed in the books like one it ended."""
        call = self.calls.calls.get(call_id)
        if call is None:
            return
        bye = self.ua.request("BYE", call_id=call_id, cseq=2, from_tag=call.to_tag, uri=call.remote_uri or None,
                              to=call.remote or None)
        try:
            answer = await self.transport.request(bye, timeout=4.0)
            if answer is None:
                self.ratelog.warning("bye", "GB28181: no answer to our BYE for %s (%s)", call_id, reason)
        except Exception:  # noqa: BLE001 - the books close whatever the platform did
            log.exception("GB28181: sending BYE for %s failed", call_id)
        await self.calls.end(call_id, reason)

    async def _guard(self, coro: Any) -> None:
        """A task of the adapter that fails is logged; the hub goes on (city networking is an adapter)."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("GB28181: a task of the city networking adapter failed; city networking is degraded")

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._client is not None:
            self.live.unsubscribe(self._client)
            self._client.close()
        await self.calls.close()
        with contextlib.suppress(Exception):
            await self.registration.unregister()
        await self.transport.close()

    def health(self) -> dict[str, Any]:
        st = self.registration.status
        # /api/health answers without login: the state and counts, not where the city platform is
        return {"state": st.state, "since": st.since, "last_error": st.last_error, "transport": self.upstream.transport,
                "registrations": st.registrations, "failures": st.failures,
                "keepalives_sent": st.keepalives_sent, "keepalives_missed": st.keepalives_missed,
                "sessions": len(self.calls.calls), **self.counts}

    # --- incoming requests

    async def handle(self, msg: SipMessage, reply: Reply, addr: Addr) -> None:
        method = msg.method or ""

        def answer(resp: SipMessage) -> None:
            metrics.gb_requests.labels(method if method in KNOWN_METHODS | set(ALLOW.split(", ")) else "other",
                                       str(resp.status)).inc()
            reply(resp)

        if addr[0] not in self._allowed:
            self.ratelog.warning("stranger", "GB28181: %s from %s, not the city platform: 403", method, addr[0])
            if method != "ACK":
                answer(response_to(msg, 403, "Forbidden: not the configured upper platform"))
            return
        if method == "MESSAGE":
            await self._message(msg, answer)
        elif method == "INVITE":
            answer(response_to(msg, 100))
            channel = await asyncio.to_thread(catalog.channel, self.engine, user_of(msg.uri) or "")
            node = channel.node if channel is not None and channel.role == "camera" else None
            final = await self.calls.invite(msg, node, channel.gb_id if channel else "")
            answer(final)
            if final.status == 200:  # the 200 again until the ACK (UDP); no ACK at all: the stream stops
                udp = (msg.get("Via") or "").upper().startswith("SIP/2.0/UDP")
                await self.calls.wait_ack(msg.call_id, lambda: reply(final), udp)
        elif method == "ACK":
            self.calls.ack(msg)
        elif method == "BYE":
            answer(await self.calls.bye(msg))
        elif method == "CANCEL":
            answer(self.calls.cancel(msg))
        elif method == "SUBSCRIBE":
            answer(self._subscribe(msg))
        elif method == "OPTIONS":
            resp = response_to(msg, 200)
            resp.add("Allow", ALLOW)
            answer(resp)
        elif method in KNOWN_METHODS:
            resp = response_to(msg, 405)
            resp.add("Allow", ALLOW)
            answer(resp)
        else:
            answer(response_to(msg, 501))

    async def _message(self, msg: SipMessage, answer: Reply) -> None:
        ctype = (msg.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != manscdp.CONTENT_TYPE.lower():
            answer(response_to(msg, 415, "Unsupported Media Type: Application/MANSCDP+xml expected"))
            return
        try:
            root = manscdp.parse(msg.body)
        except manscdp.ManscdpError as exc:
            self.ratelog.warning("xml", "GB28181: a MESSAGE with a bad body: %s", exc)
            answer(response_to(msg, 400, "Bad Request: " + str(exc)[:80]))
            return
        cmd = manscdp.text_of(root, "CmdType") or ""
        if root.tag in ("Notify", "Response"):  # the platform's own notices and answers: taken, nothing to do
            answer(response_to(msg, 200))
            return
        if root.tag != "Query" or cmd not in ("Catalog", "DeviceInfo", "DeviceStatus"):
            answer(response_to(msg, 488, f"Not Acceptable Here: {root.tag} {cmd or '?'} is not supported"))
            return
        device = manscdp.text_of(root, "DeviceID") or ""
        sn = manscdp.text_of(root, "SN") or "0"
        chans = await asyncio.to_thread(self._channels_for, device)
        if chans is None:
            answer(response_to(msg, 404, f"Not Found: no device {device[:20]}"))
            return
        answer(response_to(msg, 200))
        if cmd == "Catalog":
            await self._send_catalog(device, sn, chans)
        elif cmd == "DeviceInfo":
            await self._send_response(self._device_info(device, sn, chans))
        else:
            await self._send_response(self._device_status(device, sn, chans))

    def _channels_for(self, device: str) -> list[Channel] | None:
        if device == self.hub_id:
            catalog.assign_missing(self.engine, self.prefix)  # nodes added since start
            return catalog.channels(self.engine)
        ch = catalog.channel(self.engine, device)
        return None if ch is None else [ch]

    def _node_channels(self, node: str) -> list[Channel]:
        chans = catalog.channels(self.engine, node)
        if not chans:  # a node heard of since the last assignment: it gets its ID now
            catalog.assign_missing(self.engine, self.prefix)
            chans = catalog.channels(self.engine, node)
        return chans

    def _item(self, ch: Channel, event: str | None = None) -> list[Node]:
        model = {"camera": "Pingan pole camera", "button": "Pingan one-key button", "siren": "Pingan siren",
                 "door": "Pingan door"}[ch.role]
        item: list[Node] = [("DeviceID", ch.gb_id), ("Name", ch.name)]
        if event is not None:
            item.append(("Event", event))
        item += [("Manufacturer", "Pingan"), ("Model", model), ("Owner", "Pingan"),
                 ("CivilCode", ids.civil_code(ch.gb_id)), ("Address", ch.place or ch.node), ("Parental", 0),
                 ("ParentID", self.hub_id), ("SafetyWay", 0), ("RegisterWay", 1), ("Secrecy", 0),
                 ("Status", "ON" if ch.online else "OFF")]
        if ch.lon is not None and ch.lat is not None:
            item += [("Longitude", ch.lon), ("Latitude", ch.lat)]
        return item

    async def _send_catalog(self, device: str, sn: str, chans: list[Channel]) -> None:
        total = len(chans)
        pages = [chans[i:i + self.page_size] for i in range(0, total, self.page_size)] or [[]]
        for page in pages:
            body: list[Node] = [("CmdType", "Catalog"), ("SN", sn), ("DeviceID", device), ("SumNum", total),
                                ("DeviceList", [("Item", self._item(ch)) for ch in page])]
            if not await self._send_response(body):
                return  # the platform stopped answering: it will ask again

    def _device_info(self, device: str, sn: str, chans: list[Channel]) -> list[Node]:
        if device == self.hub_id:
            return [("CmdType", "DeviceInfo"), ("SN", sn), ("DeviceID", device), ("DeviceName", "Pingan hub"),
                    ("Result", "OK"), ("Manufacturer", "Pingan"), ("Model", "pingan-hub"),
                    ("Firmware", __version__), ("Channel", len(chans))]
        ch = chans[0]
        return [("CmdType", "DeviceInfo"), ("SN", sn), ("DeviceID", device), ("DeviceName", ch.name),
                ("Result", "OK"), ("Manufacturer", "Pingan"), ("Model", ch.role), ("Firmware", __version__),
                ("Channel", 1 if ch.role == "camera" else 0)]

    def _device_status(self, device: str, sn: str, chans: list[Channel]) -> list[Node]:
        now = datetime.now().strftime("%Y-%m-%dT%H:%M:%S")
        if device == self.hub_id:
            online = "ONLINE"
            status = "OK"
        else:
            online = "ONLINE" if chans[0].online else "OFFLINE"
            status = "OK" if chans[0].online else "ERROR"
        return [("CmdType", "DeviceStatus"), ("SN", sn), ("DeviceID", device), ("Result", "OK"),
                ("Online", online), ("Status", status), ("Encode", "ON" if device != self.hub_id else None),
                ("Record", "OFF"), ("DeviceTime", now)]

    async def _send_response(self, children: list[Node]) -> bool:
        req = self.ua.request("MESSAGE", body=manscdp.render("Response", children))
        metrics.gb_messages.labels("response").inc()
        resp = await self.transport.request(req, self.registration.answer_timeout_s)
        return resp is not None and 200 <= (resp.status or 0) < 300

    # --- subscriptions

    def _subscribe(self, msg: SipMessage) -> SipMessage:
        try:
            root = manscdp.parse(msg.body)
        except manscdp.ManscdpError as exc:
            return response_to(msg, 400, "Bad Request: " + str(exc)[:80])
        cmd = manscdp.text_of(root, "CmdType") or (msg.get("Event") or "").split(";")[0]
        if cmd not in ("Catalog", "Alarm"):
            return response_to(msg, 489, f"Bad Event: {cmd or '?'} subscriptions are not supported")
        raw = msg.get("Expires") or "3600"
        expires = int(raw) if raw.isdigit() else 3600
        existing = self.subscriptions.get(msg.call_id)  # a refresh keeps the dialog's tag
        resp = response_to(msg, 200, to_tag=tag_of(existing.ours) if existing else None)
        resp.add("Expires", str(expires))
        if expires == 0:
            self.subscriptions.pop(msg.call_id, None)
            return resp
        ours = resp.get("To") or ""
        self.subscriptions[msg.call_id] = Subscription(cmd, msg.call_id, msg.get("From") or "", ours,
                                                       remote_target(msg) or self.upstream.uri,
                                                       time.monotonic() + expires)
        return resp

    async def _notify(self, kind: str, children: list[Node]) -> None:
        now = time.monotonic()
        for sub in list(self.subscriptions.values()):
            if sub.expires_at <= now:
                self.subscriptions.pop(sub.call_id, None)
                continue
            if sub.kind != kind:
                continue
            sub.cseq += 1
            req = self.ua.request("NOTIFY", call_id=sub.call_id, cseq=sub.cseq, uri=sub.uri, to=sub.their,
                                  body=manscdp.render("Notify", children))
            req.set("From", sub.ours)
            req.add("Event", kind)
            req.add("Subscription-State", f"active;expires={int(sub.expires_at - now)}")
            metrics.gb_messages.labels("notify").inc()
            await self.transport.request(req, self.registration.answer_timeout_s)

    # --- the live fan-out: alarms and node states

    async def _watch_live(self) -> None:
        while True:
            client = self._client
            if client is None:
                return
            message = await client.get()
            if message is None:  # dropped as too slow (a huge backlog): take the stream again
                log.warning("GB28181: the live stream dropped the city adapter (too slow); the alarms in that "
                            "backlog go up from the store")
                self._client = self.live.subscribe()
                self._sweep_now.set()
                continue
            try:
                await self._on_live(message)
            except Exception:  # noqa: BLE001 - one odd message never stops the uplink
                log.exception("GB28181: handling a live message failed")

    async def _on_live(self, message: dict[str, Any]) -> None:
        mtype = message.get("type")
        if mtype == "node" and any(s.kind == "Catalog" for s in self.subscriptions.values()):
            # to the catalog notifier's own task: a district coming back online (2,000 births) must not hold
            # the alarms behind 2,000 NOTIFYs; a node's changes meanwhile fold into its latest state
            self._node_changes[str(message.get("node"))] = str(message.get("state"))
            self._node_changed.set()
            return
        if mtype != "event" or message.get("replay"):
            return
        event = message.get("event") or {}
        if str(event.get("kind", "")) not in KINDS or str(event.get("id")) in self._inflight:
            return
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        stored = StoredAlarm(str(event.get("id")), str(event.get("node")), str(event.get("kind")),
                             str(event.get("ts")), data or {}, now_utc())
        alarm = await asyncio.to_thread(self._pending, stored, True)
        if alarm is not None:
            self._queue(alarm)

    def _pending(self, event: StoredAlarm, check_settled: bool) -> PendingAlarm | None:
        """The alarm to send for a stored event; None when it does not go to the city or is settled already
        (the sweep may have sent it before its live message came). Runs in a worker thread: it reads the store."""
        if event.kind == "detection.person" and not event.data.get("zone"):
            return None  # the frequent kind that never goes up: no store read for it
        if check_settled and self.uplink.is_settled(event.id):
            return None
        chans = self._node_channels(event.node)
        node_kind = "rental_door" if any(c.role == "door" for c in chans) else "alarm_post"
        code = code_for(event.kind, event.data, node_kind)
        if code is None:
            return None
        ch = next((c for c in chans if c.role == code.role), None)
        if ch is None:
            self.ratelog.warning("no-id", "GB28181: node %s has no GB ID for its %s; it did not go up",
                                 event.node, event.kind)
            return None
        return PendingAlarm(event.id, ch, code, event.ts, time.monotonic())

    def _queue(self, alarm: PendingAlarm) -> bool:
        if alarm.event_id in self._inflight:
            return True
        try:
            self.alarms.put_nowait(alarm)
        except asyncio.QueueFull:  # the sweep sends it once the queue has room
            self.ratelog.warning("alarm-queue", "GB28181: %d alarms wait for the city platform; the next ones go "
                                 "up from the store", ALARM_QUEUE)
            return False
        self._inflight.add(alarm.event_id)
        return True

    async def _sweep(self) -> None:
        """Alarms in the store the platform has not settled go up (hub/gb28181/uplink.py): after a restart, a
        full queue, a dropped live stream, a registration that came late or tries that were not answered."""
        last_purge = 0.0
        while True:
            await self.registration.registered.wait()
            try:
                await self._sweep_once()
                if time.monotonic() - last_purge > PURGE_EVERY_S:
                    await asyncio.to_thread(self.uplink.purge, now_utc())
                    last_purge = time.monotonic()
            except Exception:  # noqa: BLE001 - a store hiccup: the next sweep tries again
                log.exception("GB28181: sweeping the store for alarms failed")
            self._sweep_now.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sweep_now.wait(), SWEEP_S)

    async def _sweep_once(self) -> None:
        now = now_utc()
        since = await asyncio.to_thread(self.uplink.mark, now)
        rows = await asyncio.to_thread(self.uplink.unsettled, since, now - timedelta(seconds=FRESH_S))
        owed: list[datetime] = []
        for row in rows:
            if row.id in self._inflight:
                owed.append(row.received_at)
                continue
            if row.received_at < now - GIVE_UP_AFTER:
                await asyncio.to_thread(self.uplink.settle, row.id, "expired", now)
                self.counts["alarms_dropped"] += 1
                self.ratelog.warning("alarm-expired", "GB28181: an alarm of %s (%s) could not go up for a day; "
                                     "given up", row.node, row.kind)
                continue
            alarm = await asyncio.to_thread(self._pending, row, False)
            if alarm is None:
                continue
            owed.append(row.received_at)
            if not self._queue(alarm):
                break
            self.counts["alarms_resent"] += 1
        await asyncio.to_thread(self.uplink.advance, min(owed) if owed else None, now)

    async def _notify_catalog(self) -> None:
        """Catalog subscriptions: each node's ON/OFF as it changes, several nodes to a NOTIFY."""
        while True:
            await self._node_changed.wait()
            self._node_changed.clear()
            changes, self._node_changes = self._node_changes, {}
            items: list[Node] = []
            for node, state in changes.items():
                chans = await asyncio.to_thread(catalog.channels, self.engine, node)
                items += [("Item", self._item(c, "ON" if state == "online" else "OFF")) for c in chans]
            await self._notify_items(items)

    async def _notify_items(self, items: list[Node]) -> None:
        for i in range(0, len(items), self.page_size):
            page = items[i:i + self.page_size]
            await self._notify("Catalog", [("CmdType", "Catalog"), ("SN", self.ua.sn()),
                                           ("DeviceID", self.hub_id), ("SumNum", len(items)),
                                           ("DeviceList", page)])

    def _catalog_now(self) -> dict[str, Channel]:
        catalog.assign_missing(self.engine, self.prefix)  # a node registered since: its ID now
        return {c.gb_id: c for c in catalog.channels(self.engine)}

    async def _watch_catalog(self) -> None:
        """Nodes registered or removed (by the CLI or the console, in any process): a Catalog subscription hears
        ADD with the new channels and DEL with the ones gone, from a comparison with the last catalog."""
        known: set[str] | None = None
        while True:
            try:
                now = await asyncio.to_thread(self._catalog_now)
                if known is not None and any(s.kind == "Catalog" for s in self.subscriptions.values()):
                    items: list[Node] = [("Item", self._item(c, "ADD")) for g, c in now.items() if g not in known]
                    items += [("Item", [("DeviceID", g), ("Event", "DEL")]) for g in sorted(known - now.keys())]
                    if items:
                        await self._notify_items(items)
                known = set(now)
            except Exception:  # noqa: BLE001 - a store hiccup: the next comparison tries again
                log.exception("GB28181: comparing the catalog failed")
            await asyncio.sleep(self.catalog_diff_s)

    async def _send_alarms(self) -> None:
        """Alarms up, several at once (one slow answer does not hold the next alarm)."""
        slots = asyncio.Semaphore(8)
        pending: set[asyncio.Task[None]] = set()
        while True:
            alarm = await self.alarms.get()
            await slots.acquire()
            task = asyncio.create_task(self._send_alarm(alarm))
            pending.add(task)

            def done(t: asyncio.Task[None]) -> None:
                pending.discard(t)
                slots.release()

            task.add_done_callback(done)

    async def _send_alarm(self, alarm: PendingAlarm) -> None:
        try:
            outcome = await self._deliver(alarm)
            if outcome is not None:
                await asyncio.to_thread(self.uplink.settle, alarm.event_id, outcome, now_utc())
        finally:
            self._inflight.discard(alarm.event_id)

    async def _deliver(self, alarm: PendingAlarm) -> str | None:
        """'sent' or 'refused' (settled), or None: not taken this time, the sweep brings it again."""
        if not self.registration.registered.is_set():
            try:
                await asyncio.wait_for(self.registration.registered.wait(), ALARM_WAIT_REGISTERED_S)
            except TimeoutError:
                self.ratelog.warning("alarm-unregistered", "GB28181: an alarm of %s waits for the city platform's "
                                     "registration; it goes up once registered", alarm.channel.node)
                return None
        children = alarm_body(alarm.channel, alarm.code, sn=self.ua.sn(), ts=alarm.ts, tz=self.settings.timezone)
        body = manscdp.render("Notify", children)
        status = None
        for attempt in range(ALARM_TRIES):
            req = self.ua.request("MESSAGE", body=body)
            metrics.gb_messages.labels("alarm").inc()
            resp = await self.transport.request(req, self.registration.answer_timeout_s)
            status = None if resp is None else resp.status
            if status is not None and 200 <= status < 300:
                self.counts["alarms_sent"] += 1
                metrics.gb_alarm_seconds.observe(time.monotonic() - alarm.queued_at)
                if any(s.kind == "Alarm" for s in self.subscriptions.values()):
                    await self._notify("Alarm", children)
                return "sent"
            if status is not None and 400 <= status < 500 and status not in (408, 480):
                break  # the platform refuses this one; sending it again changes nothing
            await asyncio.sleep(0.5 * 2 ** attempt)
        self.counts["alarms_failed"] += 1
        metrics.gb_failures.labels("alarm").inc()
        refused = status is not None and 400 <= status < 500 and status not in (408, 480)
        self.ratelog.warning("alarm-failed", "GB28181: the city platform did not take an alarm of %s (%s)%s",
                             alarm.channel.node, status or "no answer",
                             "" if refused else "; it is tried again from the store")
        return "refused" if refused else None
