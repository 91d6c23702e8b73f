"""Live-view signalling at the hub: the browser's SDP offer goes to the node as a signed ``live.start``
command and the node's answer comes back in its reply, so nothing new is exposed on the node.

The hub keeps every open session in memory and in the ``live_sessions`` audit table. It ends one
when its console stops sending keep-alives (``live_viewer_timeout_s``: the tab closed, the
laptop slept), when the operator stops it, when the node reports it gone (max time, link lost)
and when the node stops answering. While a console keeps its session alive the hub forwards a
``live.keepalive`` to the node every few seconds; the node ends sessions that stop getting one,
so a hub that dies does not leave a camera or microphone open either.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from edge.protocol import LIVE_START_TTL, LiveKeepaliveReplyData, LiveStartReplyData
from hub.alarms.service import HubService
from hub.errors import Conflict, HubError, NotFound
from hub.store.engine import add_audit, jsonable, now_utc
from hub.store.schema import commands, live_sessions, nodes

log = logging.getLogger(__name__)
KEEPALIVE_EVERY_S = 5.0
NODE_SILENT_AFTER_S = 30.0


class NodeUnavailable(HubError):
    """The node refused, failed or did not answer (502/504 at the API)."""

    def __init__(self, detail: str, status: int = 502) -> None:
        super().__init__(detail)
        self.status = status


@dataclass
class OpenSession:
    id: str
    node: str
    username: str
    kind: str
    started: float
    last_seen: float
    last_node_ack: float


class LiveService:
    def __init__(self, engine: Engine, service: HubService, *, ice_servers: list[dict[str, Any]] | None = None,
                 viewer_timeout_s: float = 15.0, answer_timeout_s: float = 10.0,
                 connected: Callable[[], bool] = lambda: True) -> None:
        self.engine = engine
        self.connected = connected  # is the hub's MQTT client connected (else no command can reach a pole)
        self.service = service
        self.ice_servers = ice_servers or []
        self.viewer_timeout_s = viewer_timeout_s
        self.answer_timeout_s = answer_timeout_s
        self.open: dict[str, OpenSession] = {}
        self._waiters: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future[dict[str, Any]]]] = {}
        self._close_orphans()

    def _close_orphans(self) -> None:
        """Sessions left open by a hub that stopped: the nodes ended them by keepalive timeout."""
        now = now_utc()
        with self.engine.begin() as conn:
            for row in conn.execute(select(live_sessions).where(live_sessions.c.ended.is_(None))).all():
                conn.execute(update(live_sessions).where(live_sessions.c.id == row.id).values(
                    ended=now, duration_s=(now - row.started).total_seconds(), end_reason="hub_restarted"))

    # --- replies from nodes (ingest's writer thread, after its commit) ---------------------------
    def on_reply(self, item: dict[str, Any]) -> None:
        command_id = item["command_id"]
        with self.engine.connect() as conn:
            data = conn.execute(select(commands.c.data).where(commands.c.id == command_id)).scalar() or {}
        reply = {"ok": item.get("ok"), "detail": item.get("detail", ""), "data": data, "node": item.get("node")}
        waiter = self._waiters.pop(command_id, None)
        if waiter is not None:
            loop, fut = waiter
            loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(reply))
        if item.get("name") == "live.keepalive" and item.get("ok"):
            kept = LiveKeepaliveReplyData.model_validate(data)
            for sid in kept.alive:
                if sid in self.open:
                    self.open[sid].last_node_ack = time.monotonic()
            for sid, reason in kept.gone.items():
                self._finish(sid, f"node: {reason}")

    async def _ask(self, node: str, name: str, args: dict[str, Any], operator: str,
                   stored_args: dict[str, Any] | None = None, ttl: timedelta | None = None) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[dict[str, Any]] = loop.create_future()
        holder: dict[str, str | None] = {}

        def send() -> None:
            with self.service.writing() as conn:
                # register before publishing: the reply may come back before we return
                cmd_id = self.service._command(conn, node, name, args, operator, stored_args=stored_args, ttl=ttl,
                                               on_id=lambda i: self._waiters.__setitem__(i, (loop, fut)))
                holder["id"] = cmd_id

        await asyncio.to_thread(send)
        if holder.get("id") is None:
            raise NodeUnavailable(f"node {node} has no command-signing key: register it first", 409)
        try:
            return await asyncio.wait_for(fut, self.answer_timeout_s)
        except TimeoutError:
            self._waiters.pop(holder["id"] or "", None)
            raise NodeUnavailable(f"node {node} did not answer within {self.answer_timeout_s:g} s "
                                  "(offline, or live view not supported by its software)", 504) from None

    # --- the API's operations ----------------------------------------------------------------
    async def start(self, node: str, username: str, sdp: str, *, kind: str = "live") -> dict[str, Any]:
        """Send the offer to the node; returns the session id and the node's SDP answer."""
        row = await asyncio.to_thread(self._node_row, node)
        if row is None:
            raise NotFound(f"no node {node}")
        if row.state != "online":
            raise NodeUnavailable(f"node {node} is {row.state}: live view needs it online", 409)
        if not self.connected():
            raise NodeUnavailable("the hub is not connected to the MQTT broker: it cannot reach any pole now", 409)
        sid = uuid.uuid4().hex
        talk = kind == "talk"
        args = {"session": sid, "sdp": sdp, "talk": talk, "ice_servers": self.ice_servers}
        reply = await self._ask(node, "live.start", args, username, ttl=LIVE_START_TTL,
                                stored_args={"session": sid, "talk": talk})  # the SDP is not kept
        if not reply["ok"] or not reply["data"].get("sdp"):
            await asyncio.to_thread(self._audit_refused, sid, node, username, kind, reply["detail"])
            raise NodeUnavailable(f"node {node}: {reply['detail'] or 'no answer'}")
        now = time.monotonic()
        self.open[sid] = OpenSession(sid, node, username, kind, now, now, now)
        await asyncio.to_thread(self._audit_start, sid, node, username, kind)
        answer = LiveStartReplyData.model_validate(reply["data"])
        return {"session": sid, "node": node, "kind": kind, "sdp": answer.sdp, "type": "answer",
                "keepalive_s": KEEPALIVE_EVERY_S, "viewer_timeout_s": self.viewer_timeout_s,
                "max_session_s": answer.max_session_s}

    def keepalive(self, sid: str, username: str, role: str) -> dict[str, Any]:
        session = self._owned(sid, username, role)
        session.last_seen = time.monotonic()
        return {"session": sid, "alive": True}

    async def stop(self, sid: str, username: str, role: str, reason: str = "stopped") -> dict[str, Any]:
        session = self._owned(sid, username, role)
        why = reason if session.username == username else f"{reason} by {username}"
        await asyncio.to_thread(self._finish, sid, why)
        await asyncio.to_thread(self.service.send_command, session.node, "live.stop", {"session": sid}, username)
        return {"session": sid, "alive": False}

    def _owned(self, sid: str, username: str, role: str) -> OpenSession:
        session = self.open.get(sid)
        if session is None:
            reason = self._end_reason(sid)
            raise NotFound(f"live session {sid} has ended ({reason})" if reason else f"no live session {sid}")
        if session.username != username and role != "admin":
            raise Conflict(f"live session {sid} belongs to {session.username}")
        return session

    # --- housekeeping ------------------------------------------------------------------------
    async def sweep(self) -> None:
        """End sessions whose viewer or node went silent; keep the rest alive on their nodes."""
        now = time.monotonic()
        by_node: dict[str, list[str]] = {}
        for session in list(self.open.values()):
            if now - session.last_seen > self.viewer_timeout_s:  # (an MJPEG relay's frames count as its keep-alive)
                await asyncio.to_thread(self._finish, session.id, "viewer_lost")
                await asyncio.to_thread(self.service.send_command, session.node, "live.stop",
                                        {"session": session.id}, "system")
            elif now - session.last_node_ack > NODE_SILENT_AFTER_S:
                await asyncio.to_thread(self._finish, session.id, "node_silent")
            else:
                by_node.setdefault(session.node, []).append(session.id)
        for node, sids in by_node.items():
            await asyncio.to_thread(self._send_keepalive, node, sids)

    def _send_keepalive(self, node: str, sids: list[str]) -> None:
        with self.service.writing() as conn:
            self.service._command(conn, node, "live.keepalive", {"sessions": sids}, "system")

    # --- audit -------------------------------------------------------------------------------
    def _node_row(self, node: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(select(nodes.c.id, nodes.c.state).where(nodes.c.id == node)).first()

    def _audit_start(self, sid: str, node: str, username: str, kind: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(live_sessions.insert().values(id=sid, node=node, username=username, kind=kind,
                                                       started=now_utc()))
            add_audit(conn, username, f"live.{kind}.start", node, {"session": sid})

    def _audit_refused(self, sid: str, node: str, username: str, kind: str, detail: str) -> None:
        now = now_utc()
        with self.engine.begin() as conn:
            conn.execute(live_sessions.insert().values(id=sid, node=node, username=username, kind=kind, started=now,
                                                       ended=now, duration_s=0.0,
                                                       end_reason=f"refused: {detail}"[:200]))

    def _finish(self, sid: str, reason: str) -> None:
        session = self.open.pop(sid, None)
        if session is None:
            return
        now = now_utc()
        with self.engine.begin() as conn:
            row = conn.execute(select(live_sessions.c.started).where(live_sessions.c.id == sid)).first()
            if row is None:
                return
            duration = round((now - row.started).total_seconds(), 1)
            conn.execute(update(live_sessions).where(live_sessions.c.id == sid, live_sessions.c.ended.is_(None))
                         .values(ended=now, duration_s=duration, end_reason=reason[:200]))
            add_audit(conn, session.username, f"live.{session.kind}.end", session.node,
                      {"session": sid, "reason": reason, "duration_s": duration})
        log.info("live session %s (%s on %s by %s) ended: %s", sid, session.kind, session.node, session.username,
                 reason)

    def _end_reason(self, sid: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(live_sessions.c.end_reason).where(live_sessions.c.id == sid)).scalar()

    def history(self, node: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        q = select(live_sessions).order_by(live_sessions.c.started.desc()).limit(limit)
        if node:
            q = q.where(live_sessions.c.node == node)
        with self.engine.connect() as conn:
            return [jsonable(r) for r in conn.execute(q).all()]
