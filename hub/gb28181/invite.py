"""Live video for the city: INVITE (Play) with an SDP offer, answered by a media session (``media/``).

The SIP side only: parse the offer (``s=Play``, ``m=video <port> RTP/AVP 96`` or ``TCP/RTP/AVP`` with
``a=setup:active|passive``, ``a=rtpmap:96 PS/90000``, ``y=<SSRC>``), start the pole's stream through
:class:`MediaSessions`, answer 200 with our SDP (``a=sendonly``, the ``y=`` echoed), then ACK; BYE
stops it. Refusals: an unknown channel or an offline pole 404, past the per-pole limit 486, the pole
unreachable 503, ``s=Playback``/``s=Download`` 488 with ``Warning: 399 ... "the node does not record"``
(a pole keeps no recordings), an offer without PS/90000 488.

TCP roles: the platform's ``a=setup:passive`` means it listens and we connect (``tcp-active``); its
``a=setup:active`` means we listen (``tcp-passive``) and our port goes in the answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from hub.errors import HubError, NotFound
from hub.gb28181.media.types import MediaStarted, StreamLimit, Transport
from hub.gb28181.sip import SipMessage, remote_target, response_to, user_of
from hub.live.video.service import NodeUnavailable
from hub.store.engine import add_audit, now_utc
from hub.store.schema import live_sessions

log = logging.getLogger(__name__)
MediaTransport = Transport
# one definition of what the two sides exchange: the media side's (hub/gb28181/media/types.py); a pole that did
# not start its stream raises the live path's own NodeUnavailable (SIP 503)
__all__ = ["MediaStarted", "MediaTransport", "NodeUnavailable", "StreamLimit"]


class MediaSessions(Protocol):
    limit_per_node: int

    async def start(self, node_id: str, *, call_id: str, dest_host: str, dest_port: int,
                    transport: MediaTransport, ssrc: int) -> MediaStarted:
        """Start sending the node's H.264 as PS over RTP; raises NotFound (404), StreamLimit (486),
        NodeUnavailable (503)."""
        ...

    async def stop(self, call_id: str, reason: str) -> None: ...


class SdpRefused(HubError):
    def __init__(self, status: int, reason: str, warning: str | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.warning = status, reason, warning


@dataclass(frozen=True)
class Offer:
    session: str
    host: str
    port: int
    transport: MediaTransport
    ssrc: str
    payload: str


def parse_offer(body: bytes) -> Offer:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpRefused(400, "Bad Request: SDP is not UTF-8") from None
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").split("\n") if ln.strip()]
    get = {ln[0]: ln[2:] for ln in reversed(lines) if len(ln) > 2 and ln[1] == "="}
    session = get.get("s", "").strip()
    if session in ("Playback", "Download"):
        raise SdpRefused(488, "Not Acceptable Here: the node does not record", "the node does not record")
    if session != "Play":
        raise SdpRefused(488, f"Not Acceptable Here: session {session!r} not supported (only Play)")
    conn = get.get("c", "").split()
    media = get.get("m", "").split()
    if len(conn) != 3 or len(media) < 4 or media[0] != "video" or not media[1].isdigit():
        raise SdpRefused(400, "Bad Request: SDP needs c= and m=video <port> <proto> <formats>")
    rtpmaps = {a.split()[0].split(":", 1)[1]: a.split()[1] for a in
               (ln[2:] for ln in lines if ln.startswith("a=rtpmap:")) if len(a.split()) == 2}
    ps = [pt for pt in media[3:] if rtpmaps.get(pt, "").upper() == "PS/90000"]
    if not ps:
        raise SdpRefused(488, "Not Acceptable Here: only PS/90000 (MPEG-PS) is sent")
    proto = media[2].upper()
    setup = next((ln[len("a=setup:"):] for ln in lines if ln.startswith("a=setup:")), "")
    transport: MediaTransport
    if proto == "RTP/AVP":
        transport = "udp"
    elif proto == "TCP/RTP/AVP":
        transport = "tcp-passive" if setup == "active" else "tcp-active"
    else:
        raise SdpRefused(488, f"Not Acceptable Here: media protocol {media[2]!r}")
    ssrc = get.get("y", "").strip()
    if ssrc and (not ssrc.isdigit() or len(ssrc) != 10):
        raise SdpRefused(400, "Bad Request: y= must be a 10-digit SSRC")
    return Offer(session, conn[2], int(media[1]), transport, ssrc or "0" + f"{secrets.randbelow(10**9):09d}", ps[0])


def answer_sdp(offer: Offer, channel_id: str, started: MediaStarted) -> bytes:
    proto = "RTP/AVP" if offer.transport == "udp" else "TCP/RTP/AVP"
    lines = ["v=0", f"o={channel_id} 0 0 IN IP4 {started.local_host}", "s=Play",
             f"c=IN IP4 {started.local_host}", "t=0 0", f"m=video {started.local_port} {proto} {offer.payload}",
             "a=sendonly", f"a=rtpmap:{offer.payload} PS/90000"]
    if offer.transport != "udp":
        lines += [f"a=setup:{'active' if offer.transport == 'tcp-active' else 'passive'}", "a=connection:new"]
    lines += [f"y={offer.ssrc}", "f="]
    return ("\r\n".join(lines) + "\r\n").encode()


@dataclass
class Call:
    call_id: str
    node: str
    channel: str
    to_tag: str
    acked: asyncio.Event
    started: float = field(default_factory=time.monotonic)
    remote: str = ""  # the platform's From (with its tag): the To of a BYE we send
    remote_uri: str = ""  # where that BYE goes: the INVITE's Contact (else its From URI)


class SessionAudit:
    """City viewers in the same ``live_sessions`` table and audit log as console viewers (kind ``gb28181``,
    user ``city:<platform ID>``), refusals included, so "who watched pole 7" has one answer."""

    KIND = "gb28181"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @staticmethod
    def session_id(call_id: str) -> str:
        return "gb-" + hashlib.sha256(call_id.encode()).hexdigest()[:40]

    def start(self, call_id: str, node: str, who: str) -> None:
        sid = self.session_id(call_id)
        with self.engine.begin() as conn:
            conn.execute(live_sessions.insert().values(id=sid, node=node, username=who, kind=self.KIND,
                                                       started=now_utc()))
            add_audit(conn, who, "live.gb28181.start", node, {"session": sid, "call_id": call_id[:200]})

    def refused(self, call_id: str, node: str, who: str, why: str) -> None:
        now = now_utc()
        with self.engine.begin() as conn:
            conn.execute(live_sessions.insert().values(id=self.session_id(call_id) + "-r" + secrets.token_hex(3),
                                                       node=node, username=who, kind=self.KIND, started=now,
                                                       ended=now, duration_s=0.0, end_reason=f"refused: {why}"[:200]))

    def end(self, call_id: str, node: str, who: str, reason: str, duration_s: float) -> None:
        sid = self.session_id(call_id)
        with self.engine.begin() as conn:
            conn.execute(update(live_sessions).where(live_sessions.c.id == sid, live_sessions.c.ended.is_(None))
                         .values(ended=now_utc(), duration_s=round(duration_s, 1), end_reason=reason[:200]))
            add_audit(conn, who, "live.gb28181.end", node, {"session": sid, "reason": reason,
                                                             "duration_s": round(duration_s, 1)})

    def open_sessions(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r.id for r in conn.execute(select(live_sessions.c.id).where(
                live_sessions.c.kind == self.KIND, live_sessions.c.ended.is_(None)))]


def who_asked(req: SipMessage) -> str:
    return ("city:" + (user_of(req.get("From")) or "unknown"))[:64]


class Calls:
    """The Play dialogs in progress: INVITE starts one, ACK confirms it, BYE (or CANCEL) ends it."""

    ack_wait_s = 32.0  # RFC 3261 timer H (64*T1)

    def __init__(self, media: MediaSessions | None, audit: SessionAudit | None = None) -> None:
        self.media = media
        self.audit = audit
        self.calls: dict[str, Call] = {}
        self.who: dict[str, str] = {}
        self.starting: set[str] = set()  # INVITEs whose stream is starting (a CANCEL may still stop them)
        self.cancelled: set[str] = set()

    async def _audit(self, step: str, *args: object) -> None:
        if self.audit is None:
            return
        try:
            await asyncio.to_thread(getattr(self.audit, step), *args)
        except Exception:  # noqa: BLE001 - the audit never breaks a session
            log.exception("GB28181: auditing a live session failed")

    async def invite(self, req: SipMessage, node: str | None, channel_id: str) -> SipMessage:
        """The final response to an INVITE for ``channel_id`` (``node`` None: no such camera channel)."""
        if req.call_id in self.calls:  # a re-INVITE: not supported, the session stays as it is
            return response_to(req, 488, "Not Acceptable Here: re-INVITE not supported",
                               to_tag=self.calls[req.call_id].to_tag)
        who = who_asked(req)
        if node is None:
            return response_to(req, 404, "Not Found: no such camera channel")
        if self.media is None:
            return response_to(req, 503, "Service Unavailable: live video is not available on this hub")
        try:
            offer = parse_offer(req.body)
        except SdpRefused as exc:
            await self._audit("refused", req.call_id, node, who, exc.reason)
            resp = response_to(req, exc.status, exc.reason)
            if exc.warning:
                resp.add("Warning", f'399 pingan "{exc.warning}"')
            return resp
        to_tag = secrets.token_hex(6)
        self.starting.add(req.call_id)
        try:
            started = await self.media.start(node, call_id=req.call_id, dest_host=offer.host, dest_port=offer.port,
                                             transport=offer.transport, ssrc=int(offer.ssrc))
            if req.call_id in self.cancelled:  # the platform gave up while the stream was starting
                await self.media.stop(req.call_id, "cancelled")
                await self._audit("refused", req.call_id, node, who, "cancelled by the platform")
                return response_to(req, 487)
        except (NotFound, StreamLimit, NodeUnavailable) as exc:
            if isinstance(exc, StreamLimit):
                status, reason = 486, f"Busy Here: the pole already sends {self.media.limit_per_node} streams"
            else:
                status, reason = (404, "Not Found") if isinstance(exc, NotFound) else (503, "Service Unavailable")
                reason = f"{reason}: {exc}"[:120]
            await self._audit("refused", req.call_id, node, who, reason)
            return response_to(req, status, reason)
        finally:
            self.starting.discard(req.call_id)
            self.cancelled.discard(req.call_id)
        self.calls[req.call_id] = Call(req.call_id, node, channel_id, to_tag, asyncio.Event(),
                                       remote=req.get("From") or "", remote_uri=remote_target(req) or "")
        self.who[req.call_id] = who
        await self._audit("start", req.call_id, node, who)
        resp = response_to(req, 200, to_tag=to_tag)
        resp.add("Content-Type", "application/sdp")
        resp.body = answer_sdp(offer, channel_id, started)
        return resp

    def cancel(self, req: SipMessage) -> SipMessage:
        """CANCEL: stops an INVITE whose stream is still starting (it is answered 487); after the final answer
        it changes nothing (RFC 3261 9.2: 200 all the same); an unknown call 481."""
        if req.call_id in self.starting:
            self.cancelled.add(req.call_id)
            return response_to(req, 200)
        if req.call_id in self.calls:
            return response_to(req, 200, to_tag=self.calls[req.call_id].to_tag)
        return response_to(req, 481)

    def ack(self, req: SipMessage) -> None:
        call = self.calls.get(req.call_id)
        if call is not None:
            call.acked.set()

    async def bye(self, req: SipMessage, reason: str = "bye") -> SipMessage:
        if req.call_id not in self.calls:
            return response_to(req, 481)
        await self.end(req.call_id, reason)
        return response_to(req, 200)

    async def end(self, call_id: str, reason: str) -> None:
        """Stop the media and close the audit record (BYE, no ACK, shutdown)."""
        call = self.calls.pop(call_id, None)
        if call is None:
            return
        who = self.who.pop(call_id, "city:unknown")
        try:
            if self.media is not None:
                await self.media.stop(call_id, reason)
        except Exception:  # noqa: BLE001 - the session ends in the books whatever the media side did
            log.exception("GB28181: stopping media session %s failed", call_id)
        await self._audit("end", call_id, call.node, who, reason,
                          time.monotonic() - call.started)

    async def wait_ack(self, call_id: str, resend: Callable[[], None], udp: bool) -> None:
        """RFC 3261 13.3.1.4: the 200 is sent again (0.5 s doubling to 4 s) until the ACK; none in 32 s ends it."""
        call = self.calls.get(call_id)
        if call is None:
            return
        deadline = time.monotonic() + self.ack_wait_s
        interval = 0.5
        while time.monotonic() < deadline:
            try:
                await asyncio.wait_for(call.acked.wait(), interval)
                return
            except TimeoutError:
                if udp:
                    resend()
                interval = min(interval * 2, 4.0)
        log.warning("GB28181: no ACK for the 200 to INVITE %s; the stream is stopped", call_id)
        await self.end(call_id, "no ACK")

    async def close(self) -> None:
        for call_id in list(self.calls):
            await self.end(call_id, "hub stopping")
