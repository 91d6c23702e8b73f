"""The city's live-video sessions, one per accepted INVITE (its Call-ID), as the SIP side sees them.

``start`` opens (or joins) the pole's shared source (source.py), binds the sending side (senders.py) and
returns where the stream comes from for the SDP answer; ``stop`` ends one session (BYE, or the SIP side gave
up). A session also ends by itself when the pole's live session ends, when its receiver stalls or closes, or
when a passive receiver never connects: then ``on_end(call_id, reason)`` tells the SIP side, so it can send
BYE. Each city session is audited like a console one: a ``live_sessions`` row (kind ``gb28181``, username
``gb28181:<platform host>``) and ``audit`` entries with the Call-ID, destination and transport. The pole's own
session (username ``gb28181``) is audited by LiveService as every live session is.

Nothing here is on the alarm path: it runs on the hub's event loop and only reads the store, and every failure
ends one session with a reason.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from hub.errors import Conflict, HubError, NotFound
from hub.gb28181.media.senders import RtpSender
from hub.gb28181.media.source import KIND, USERNAME, PoleSource
from hub.gb28181.media.types import MediaStarted, StreamLimit, Transport
from hub.live.video.service import LiveService
from hub.store.engine import add_audit, now_utc
from hub.store.schema import live_sessions, nodes

log = logging.getLogger(__name__)
TRANSPORTS = ("udp", "tcp-active", "tcp-passive")


@dataclass
class CitySession:
    call_id: str
    node: str
    audit_id: str
    dest: str
    transport: Transport
    ssrc: int
    sender: RtpSender
    started: float = field(default_factory=time.monotonic)


class GbMediaSessions:
    def __init__(self, live: LiveService, engine: Engine, *, limit_per_node: int = 2, bind_host: str = "0.0.0.0",
                 advertise_host: str | None = None, accept_timeout_s: float = 20.0, stall_s: float = 10.0,
                 on_end: Callable[[str, str], Any] | None = None) -> None:
        """``live``/``engine``: the hub's LiveService and store (HubState.liveview, HubState.engine).
        ``limit_per_node``: city streams per pole (past it: StreamLimit, SIP 486). ``bind_host``: where the RTP
        sockets bind. ``advertise_host``: the address put in the SDP answer (default: the local address the
        kernel would use toward the platform). ``accept_timeout_s``: how long a tcp-passive session waits for
        the platform. ``stall_s``: no progress this long ends a session (receiver) or a source (pole).
        ``on_end(call_id, reason)``: a session ended by itself (not by ``stop``); the SIP side sends BYE."""
        if limit_per_node < 1:
            raise ValueError("limit_per_node must be at least 1")
        self.live, self.engine = live, engine
        self.limit_per_node = limit_per_node
        self.bind_host, self.advertise_host = bind_host, advertise_host
        self.accept_timeout_s, self.stall_s = accept_timeout_s, stall_s
        self.on_end = on_end
        self.sessions: dict[str, CitySession] = {}
        self.sources: dict[str, PoleSource] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._ending: set[asyncio.Task[None]] = set()

    # --- the SIP side's calls ------------------------------------------------------------------
    async def start(self, node_id: str, *, call_id: str, dest_host: str, dest_port: int, transport: Transport,
                    ssrc: int) -> MediaStarted:
        if transport not in TRANSPORTS:
            raise HubError(f"unsupported media transport {transport!r} (udp, tcp-active or tcp-passive)")
        if not 0 <= ssrc <= 0xFFFFFFFF:
            raise HubError(f"SSRC {ssrc} is not a 32-bit number")
        if transport != "tcp-passive" and not 0 < dest_port < 65536:
            raise HubError(f"destination port {dest_port} is not a port")
        if call_id in self.sessions:
            raise Conflict(f"call {call_id} already has a stream")
        lock = self._locks.setdefault(node_id, asyncio.Lock())
        async with lock:  # one start per pole at a time: the limit counts, and the source opens once
            if call_id in self.sessions:  # the same INVITE twice, the first one won while we waited
                raise Conflict(f"call {call_id} already has a stream")
            row = await asyncio.to_thread(self._node_row, node_id)
            if row is None:
                raise NotFound(f"no pole {node_id}")
            if row.state != "online":
                raise NotFound(f"pole {node_id} is {row.state}: no live video")
            open_here = sum(1 for s in self.sessions.values() if s.node == node_id)
            if open_here >= self.limit_per_node:
                raise StreamLimit(f"pole {node_id} already sends {open_here} city stream(s) "
                                  f"(limit {self.limit_per_node})")
            source = self.sources.get(node_id)
            if source is None or source.closed or source.end_reason:
                source = PoleSource(self.live, node_id, stall_s=self.stall_s, on_end=self._source_ended)
                await source.start()  # NotFound / NodeUnavailable from LiveService
                self.sources[node_id] = source
            sender = RtpSender(transport, ssrc=ssrc, dest_host=dest_host, dest_port=dest_port,
                               bind_host=self.bind_host, accept_timeout_s=self.accept_timeout_s, stall_s=self.stall_s,
                               on_ready=lambda: source.subscribe(call_id, sender.push),
                               on_end=lambda reason: self._ended(call_id, reason))
            try:
                port = await sender.open()
            except OSError as exc:
                await sender.close()
                if not any(s.node == node_id for s in self.sessions.values()):
                    self.sources.pop(node_id, None)
                    await source.close("no city viewers")
                raise HubError(f"cannot open a {transport} socket on {self.bind_host}: {exc}") from None
            session = CitySession(call_id, node_id, uuid.uuid4().hex, f"{dest_host}:{dest_port}", transport, ssrc,
                                  sender)
            self.sessions[call_id] = session
            await asyncio.to_thread(self._audit_start, session)
        log.info("GB/T 28181 stream %s: pole %s to %s over %s (SSRC %d), from port %d", call_id, node_id,
                 session.dest, transport, ssrc, port)
        return MediaStarted(self._advertise(dest_host), port)

    async def stop(self, call_id: str, reason: str) -> None:
        """End one session (idempotent: an unknown or ended Call-ID is nothing to do)."""
        session = self.sessions.pop(call_id, None)
        if session is None:
            return
        await session.sender.close()
        source = self.sources.get(session.node)
        if source is not None:
            source.unsubscribe(call_id)
        await asyncio.to_thread(self._audit_end, session, reason)
        if source is not None and not any(s.node == session.node for s in self.sessions.values()):
            if self.sources.get(session.node) is source:
                del self.sources[session.node]
            await source.close("city viewers gone" if not source.end_reason else source.end_reason)

    async def close(self) -> None:
        """Hub shutdown: every session and source ends."""
        for call_id in list(self.sessions):
            await self.stop(call_id, "hub stopping")
        for source in list(self.sources.values()):
            await source.close("hub stopping")
        self.sources.clear()
        for task in list(self._ending):
            task.cancel()

    # --- ends from below ------------------------------------------------------------------------
    def _ended(self, call_id: str, reason: str) -> None:
        if call_id not in self.sessions:
            return
        self._spawn_end(call_id, reason)

    def _source_ended(self, source: PoleSource, reason: str) -> None:
        for call_id, session in list(self.sessions.items()):
            if session.node == source.node:
                self._spawn_end(call_id, reason)
        if not any(s.node == source.node for s in self.sessions.values()):
            if self.sources.get(source.node) is source:
                del self.sources[source.node]
            self._track(asyncio.get_running_loop().create_task(source.close(reason)))

    def _spawn_end(self, call_id: str, reason: str) -> None:
        async def end() -> None:
            await self.stop(call_id, reason)
            if self.on_end is not None:
                try:
                    result = self.on_end(call_id, reason)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:  # noqa: BLE001 - the SIP side's failure never stops the media side
                    log.exception("on_end for call %s failed", call_id)

        self._track(asyncio.get_running_loop().create_task(end()))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    # --- helpers --------------------------------------------------------------------------------
    def count(self, node_id: str) -> int:
        return sum(1 for s in self.sessions.values() if s.node == node_id)

    def _advertise(self, dest_host: str) -> str:
        if self.advertise_host:
            return self.advertise_host
        if self.bind_host not in ("0.0.0.0", "::", ""):
            return self.bind_host
        family = socket.AF_INET6 if ":" in dest_host else socket.AF_INET
        try:  # the address the kernel routes toward the platform from (a UDP connect sends nothing)
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((dest_host, 9))
                return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1" if family == socket.AF_INET else "::1"

    def _node_row(self, node: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(nodes.c.id, nodes.c.state).where(nodes.c.id == node)).first()

    def _detail(self, session: CitySession) -> dict[str, Any]:
        return {"session": session.audit_id, "call_id": session.call_id, "dest": session.dest,
                "transport": session.transport, "ssrc": session.ssrc}

    def _audit_start(self, session: CitySession) -> None:
        with self.engine.begin() as conn:
            conn.execute(live_sessions.insert().values(
                id=session.audit_id, node=session.node, username=self._who(session), kind=KIND, started=now_utc()))
            add_audit(conn, USERNAME, f"live.{KIND}.start", session.node, self._detail(session))

    def _audit_end(self, session: CitySession, reason: str) -> None:
        now = now_utc()
        with self.engine.begin() as conn:
            row = conn.execute(select(live_sessions.c.started).where(live_sessions.c.id == session.audit_id)).first()
            duration = round((now - row.started).total_seconds(), 1) if row is not None else 0.0
            conn.execute(update(live_sessions).where(live_sessions.c.id == session.audit_id,
                                                     live_sessions.c.ended.is_(None))
                         .values(ended=now, duration_s=duration, end_reason=reason[:200]))
            add_audit(conn, USERNAME, f"live.{KIND}.end", session.node,
                      {**self._detail(session), "reason": reason, "duration_s": duration,
                       "frames_sent": session.sender.frames_sent, "frames_dropped": session.sender.frames_dropped})
        log.info("GB/T 28181 stream %s (pole %s to %s) ended: %s", session.call_id, session.node, session.dest,
                 reason)

    @staticmethod
    def _who(session: CitySession) -> str:
        return f"{USERNAME}:{session.dest.rsplit(':', 1)[0]}"[:64]
