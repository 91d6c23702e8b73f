"""REST and WebSocket routes (design.md "Hub HTTP"). Every route is behind hub/auth/policy.py's middleware
(login required except /api/health and /api/login); a route's roles are set with ``@requires``. The
operator recorded on an alarm is the logged-in user."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import select, text

from hub import __version__
from hub.alarms.escalation import annotate
from hub.alarms.service import OUTCOMES, HubService
from hub.api.auth import current_user
from hub.auth.policy import requires
from hub.live.replay import EVENT_COLUMNS, after_cursor
from hub.runtime import metrics
from hub.store.engine import jsonable
from hub.store.schema import clips, events, snapshots

router = APIRouter()
WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def _state(request: Request) -> Any:
    return request.app.state.hub


def _service(request: Request) -> HubService:
    return request.app.state.hub.service


ServiceDep = Annotated[HubService, Depends(_service)]
StateDep = Annotated[Any, Depends(_state)]


class AckBody(BaseModel):
    operator: str | None = Field(default=None, max_length=64, description="Ignored: the logged-in user is recorded")
    note: str | None = Field(default=None, max_length=2000)


class DispatchBody(AckBody):
    to: str = Field(min_length=1, max_length=128, description="Responder or grid team")


class ResolveBody(AckBody):
    outcome: Literal[OUTCOMES]  # type: ignore[valid-type]


@router.get("/api/health")
def health(state: StateDep) -> dict[str, Any]:
    with state.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    ingest = state.ingest
    return {"status": "ok", "version": __version__,
            "mqtt": None if ingest is None else ("connected" if ingest.connected else "disconnected"),
            "ingest_queue": None if ingest is None else ingest.queue.qsize(),
            "replica": state.settings.replica, "leader": state.cluster.is_leader()}


@router.get("/api/nodes")
def list_nodes(service: ServiceDep) -> list[dict[str, Any]]:
    return service.list_nodes()


@router.get("/api/events")
def list_events(state: StateDep, node: str | None = None, kind: str | None = None,
                after: Annotated[int | None, Query(description="Only events with cursor > after")] = None,
                since: datetime | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    q = select(*EVENT_COLUMNS)
    if node:
        q = q.where(events.c.node == node)
    if kind:
        q = q.where(events.c.kind == kind)
    if since is not None:
        q = q.where(events.c.received_at >= since)
    q = q.order_by(events.c.seq if after is not None else events.c.seq.desc()).limit(limit)
    with state.engine.connect() as conn:
        if after is not None:  # late commits of other replicas included (hub/live/replay.py)
            q = q.where(after_cursor(conn, after))
        return [jsonable(r) for r in conn.execute(q).all()]


@router.get("/api/events/{event_id}/snapshot.jpg", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "No snapshot"}})
def snapshot(event_id: str, state: StateDep) -> Response:
    with state.engine.connect() as conn:
        jpeg = conn.execute(select(snapshots.c.jpeg).where(snapshots.c.event_id == event_id)).scalar()
    if jpeg is None:
        raise HTTPException(404, f"no snapshot for event {event_id} (yet)")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/api/events/{event_id}/clips")
def clip_frames(event_id: str, state: StateDep) -> dict[str, Any]:
    """The frames of an alarm's pre-press burst (oldest first) stored so far."""
    with state.engine.connect() as conn:
        frames = [n for (n,) in conn.execute(select(clips.c.n).where(clips.c.event_id == event_id)
                                             .order_by(clips.c.n))]
    return {"event_id": event_id, "frames": frames,
            "urls": [f"/api/events/{event_id}/clips/{n}.jpg" for n in frames]}


@router.get("/api/events/{event_id}/clips/{n}.jpg", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "No such frame"}})
def clip_frame(event_id: str, n: int, state: StateDep) -> Response:
    if not 0 <= n < 2**31:  # beyond SQLite's INTEGER: no such frame (found by tests/test_openapi_fuzz.py)
        raise HTTPException(404, f"no frame {n} of event {event_id}'s burst")
    with state.engine.connect() as conn:
        jpeg = conn.execute(select(clips.c.jpeg).where(clips.c.event_id == event_id, clips.c.n == n)).scalar()
    if jpeg is None:
        raise HTTPException(404, f"no frame {n} of event {event_id}'s burst")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/api/alarms")
def list_alarms(service: ServiceDep,
                state: Annotated[str, Query(pattern="^(open|all|acknowledged|dispatched|on_scene|resolved)$")]
                = "open",
                limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
    return annotate(service.engine, service.list_alarms(state, limit))


@router.get("/api/alarms/{alarm_id}")
def get_alarm(alarm_id: str, service: ServiceDep) -> dict[str, Any]:
    return annotate(service.engine, [service.get_alarm(alarm_id)])[0]


def _push(request: Request, alarm: dict[str, Any]) -> dict[str, Any]:
    request.app.state.hub.live.publish([{"type": "alarm", "alarm": alarm}])
    return alarm


def _operator(request: Request) -> str:
    return current_user(request).username


@router.post("/api/alarms/{alarm_id}/ack")
@requires("operator", "admin")
def ack_alarm(alarm_id: str, body: AckBody, request: Request, service: ServiceDep) -> dict[str, Any]:
    return _push(request, service.advance(alarm_id, "acknowledged", _operator(request), note=body.note))


@router.post("/api/alarms/{alarm_id}/dispatch")
@requires("operator", "admin")
def dispatch_alarm(alarm_id: str, body: DispatchBody, request: Request, service: ServiceDep) -> dict[str, Any]:
    return _push(request, service.advance(alarm_id, "dispatched", _operator(request), to=body.to, note=body.note))


@router.post("/api/alarms/{alarm_id}/on_scene")
@requires("operator", "admin")
def on_scene_alarm(alarm_id: str, body: AckBody, request: Request, service: ServiceDep) -> dict[str, Any]:
    return _push(request, service.advance(alarm_id, "on_scene", _operator(request), note=body.note))


@router.post("/api/alarms/{alarm_id}/resolve")
@requires("operator", "admin")
def resolve_alarm(alarm_id: str, body: ResolveBody, request: Request, service: ServiceDep) -> dict[str, Any]:
    return _push(request, service.advance(alarm_id, "resolved", _operator(request), outcome=body.outcome,
                                          note=body.note))


@router.get("/metrics", include_in_schema=False)
def prometheus() -> Response:
    """Needs ``Authorization: Bearer $PINGAN_METRICS_TOKEN`` (checked by hub/auth/policy.py's middleware)."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
def dashboard() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html")


@router.websocket("/api/live")
async def live(websocket: WebSocket, since: int | None = None) -> None:
    """New events and alarm changes as JSON; ``?since=<cursor>`` first replays stored events."""
    state = websocket.app.state.hub
    await websocket.accept()
    queue = state.live.subscribe()  # a LiveClient: alarms first, then the rest in order
    try:
        if since is not None:
            def catch_up() -> list[dict[str, Any]]:
                with state.engine.connect() as conn:
                    rows = conn.execute(select(*EVENT_COLUMNS).where(after_cursor(conn, since))
                                        .order_by(events.c.seq).limit(5000)).all()
                return [{"type": "event", "cursor": r.seq, "event": jsonable(r), "replay": True} for r in rows]

            for message in await asyncio.to_thread(catch_up):
                await websocket.send_json(message)
        await websocket.send_json({"type": "hello", "version": __version__})
        receiver = asyncio.create_task(_drain_client(websocket))
        try:
            while True:
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if receiver in done:
                    getter.cancel()
                    break
                message = getter.result()
                if message is None:
                    break
                await websocket.send_json(message)
        finally:
            receiver.cancel()
    except WebSocketDisconnect:
        pass
    finally:
        state.live.unsubscribe(queue)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the client may be gone already
            await websocket.close()


async def _drain_client(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a closed socket is noticed at once."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()
