"""REST and WebSocket routes (design.md "Hub HTTP"). Every route is behind hub/auth/policy.py's middleware
(login required except /api/health and /api/login); a route's roles are set with ``@requires``. The
operator recorded on an alarm is the logged-in user."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import select, text

from hub import __version__
from hub.alarms.escalation import annotate
from hub.api.deps import (
    BrokerHeadroomDep,
    ClusterDep,
    EngineDep,
    GbDep,
    IngestDep,
    LiveHubDep,
    ResponderServiceDep,
    ServiceDep,
    SettingsDep,
    UserDep,
)
from hub.api.models.routes import AlarmEscalated, AlarmListed, AlarmOut, ClipFrames, EventOut, Health, NodeOut, Outcome
from hub.api.streaming import pump
from hub.auth.policy import requires
from hub.live.fanout import LiveHub
from hub.live.messages import AlarmChanged, EventMessage, Hello
from hub.live.replay import EVENT_COLUMNS, after_cursor
from hub.runtime import metrics
from hub.store.engine import jsonable
from hub.store.schema import clips, events, snapshots

router = APIRouter()
JPEG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/jpeg": {}}}}


class AckBody(BaseModel):
    operator: str | None = Field(default=None, max_length=64, description="Ignored: the logged-in user is recorded")
    note: str | None = Field(default=None, max_length=2000)


class DispatchBody(AckBody):
    to: str = Field(min_length=1, max_length=128, description="Responder or grid team")


class ResolveBody(AckBody):
    outcome: Outcome


@router.get("/api/health", response_model=Health)
def health(engine: EngineDep, ingest: IngestDep, settings: SettingsDep, cluster: ClusterDep,
           gb: GbDep, broker: BrokerHeadroomDep) -> dict[str, Any]:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__,
            "mqtt": None if ingest is None else ("connected" if ingest.connected else "disconnected"),
            "ingest_queue": None if ingest is None else ingest.queue.qsize(),
            "replica": settings.replica, "leader": cluster.is_leader(),
            # city networking (hub/gb28181): None when off
            "gb28181": None if gb is None else gb.health(),
            "broker": None if (room := broker.current()) is None else {
                "open_files_limit": room.open_files_limit, "nodes": room.nodes, "needed": room.needed,
                "enough": room.enough}}


@router.get("/api/nodes", response_model=list[NodeOut], response_model_exclude_unset=True)
def list_nodes(service: ServiceDep) -> list[dict[str, Any]]:
    return service.list_nodes()


@router.get("/api/events", response_model=list[EventOut])
def list_events(engine: EngineDep, node: str | None = None, kind: str | None = None,
                after: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="Only events with cursor > after")]
                = None,
                since: datetime | None = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    q = select(*EVENT_COLUMNS)
    if node:
        q = q.where(events.c.node == node)
    if kind:
        q = q.where(events.c.kind == kind)
    if since is not None and since.tzinfo is not None:
        try:  # the store keeps UTC; 0001-01-01T00:00+00:01 has no UTC value (found by tests/hub/test_openapi_fuzz.py)
            since = since.astimezone(UTC)
        except OverflowError:
            since = None  # before the first representable instant: every event is after it
    if since is not None:
        q = q.where(events.c.received_at >= since)
    q = q.order_by(events.c.seq if after is not None else events.c.seq.desc()).limit(limit)
    with engine.connect() as conn:
        if after is not None:  # late commits of other replicas included (hub/live/replay.py)
            q = q.where(after_cursor(conn, after))
        return [jsonable(r) for r in conn.execute(q).all()]


@router.get("/api/events/{event_id}/snapshot.jpg", response_class=Response,
            responses={**JPEG, 404: {"description": "No snapshot"}})
def snapshot(event_id: str, engine: EngineDep) -> Response:
    with engine.connect() as conn:
        jpeg = conn.execute(select(snapshots.c.jpeg).where(snapshots.c.event_id == event_id)).scalar()
    if jpeg is None:
        raise HTTPException(404, f"no snapshot for event {event_id} (yet)")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/api/events/{event_id}/clips", response_model=ClipFrames)
def clip_frames(event_id: str, engine: EngineDep) -> dict[str, Any]:
    """The frames of an alarm's pre-press burst (oldest first) stored so far."""
    with engine.connect() as conn:
        frames = [n for (n,) in conn.execute(select(clips.c.n).where(clips.c.event_id == event_id)
                                             .order_by(clips.c.n))]
    return {"event_id": event_id, "frames": frames,
            "urls": [f"/api/events/{event_id}/clips/{n}.jpg" for n in frames]}


@router.get("/api/events/{event_id}/clips/{n}.jpg", response_class=Response,
            responses={**JPEG, 404: {"description": "No such frame"}})
def clip_frame(event_id: str, n: int, engine: EngineDep) -> Response:
    if not 0 <= n < 2**31:  # beyond SQLite's INTEGER: no such frame (found by tests/hub/test_openapi_fuzz.py)
        raise HTTPException(404, f"no frame {n} of event {event_id}'s burst")
    with engine.connect() as conn:
        jpeg = conn.execute(select(clips.c.jpeg).where(clips.c.event_id == event_id, clips.c.n == n)).scalar()
    if jpeg is None:
        raise HTTPException(404, f"no frame {n} of event {event_id}'s burst")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


MAX_IDS = 200


@router.get("/api/alarms", response_model=list[AlarmListed], response_model_exclude_unset=True)
def list_alarms(service: ServiceDep,
                state: Annotated[str, Query(pattern="^(open|all|acknowledged|dispatched|on_scene|resolved)$")]
                = "open",
                limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                ids: Annotated[str | None, Query(
                    max_length=MAX_IDS * 37, pattern=r"^[A-Za-z0-9._:-]+(,[A-Za-z0-9._:-]+)*$",
                    description=(f"Comma-separated alarm ids (at most {MAX_IDS}): those alarms in any state, as the "
                                 "queue shows them (a console's patch after a live message); state and limit unused"))]
                = None) -> list[dict[str, Any]]:
    if ids is not None:
        wanted = list(dict.fromkeys(ids.split(",")))
        if len(wanted) > MAX_IDS:
            raise HTTPException(422, f"at most {MAX_IDS} ids at a time")
        return annotate(service.engine, service.list_alarms(ids=wanted))
    return annotate(service.engine, service.list_alarms(state, limit))


@router.get("/api/alarms/{alarm_id}", response_model=AlarmEscalated, response_model_exclude_unset=True)
def get_alarm(alarm_id: str, service: ServiceDep) -> dict[str, Any]:
    return annotate(service.engine, [service.get_alarm(alarm_id)])[0]


def _push(live: LiveHub, alarm: dict[str, Any]) -> dict[str, Any]:
    live.publish([AlarmChanged(alarm=alarm).out()])
    return alarm


@router.post("/api/alarms/{alarm_id}/ack", response_model=AlarmOut, response_model_exclude_unset=True)
@requires("operator", "admin")
def ack_alarm(alarm_id: str, body: AckBody, user: UserDep, live: LiveHubDep, service: ServiceDep) -> dict[str, Any]:
    return _push(live, service.advance(alarm_id, "acknowledged", user.username, note=body.note))


@router.post("/api/alarms/{alarm_id}/dispatch", response_model=AlarmOut, response_model_exclude_unset=True)
@requires("operator", "admin")
def dispatch_alarm(alarm_id: str, body: DispatchBody, user: UserDep, live: LiveHubDep,
                   service: ServiceDep) -> dict[str, Any]:
    return _push(live, service.advance(alarm_id, "dispatched", user.username, to=body.to, note=body.note))


@router.post("/api/alarms/{alarm_id}/on_scene", response_model=AlarmOut, response_model_exclude_unset=True)
@requires("operator", "admin")
def on_scene_alarm(alarm_id: str, body: AckBody, user: UserDep, live: LiveHubDep,
                   service: ServiceDep) -> dict[str, Any]:
    return _push(live, service.advance(alarm_id, "on_scene", user.username, note=body.note))


@router.post("/api/alarms/{alarm_id}/resolve", response_model=AlarmOut, response_model_exclude_unset=True)
@requires("operator", "admin")
def resolve_alarm(alarm_id: str, body: ResolveBody, user: UserDep, live: LiveHubDep,
                  service: ServiceDep, responders: ResponderServiceDep) -> dict[str, Any]:
    alarm = _push(live, service.advance(alarm_id, "resolved", user.username, outcome=body.outcome, note=body.note))
    responders.on_alarm_resolved(alarm_id, user.username)  # the phones of those still on it hear it now
    return alarm


@router.get("/metrics", include_in_schema=False)
def prometheus() -> Response:
    """Needs ``Authorization: Bearer $PINGAN_METRICS_TOKEN`` (checked by hub/auth/policy.py's middleware)."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.websocket("/api/live")
async def live(websocket: WebSocket, fanout: LiveHubDep, engine: EngineDep, since: int | None = None) -> None:
    """New events and alarm changes as JSON; ``?since=<cursor>`` first replays stored events."""
    await websocket.accept()
    queue = fanout.subscribe()  # a LiveClient: alarms first, then the rest in order
    try:
        if since is not None:
            def catch_up() -> list[dict[str, Any]]:
                with engine.connect() as conn:
                    rows = conn.execute(select(*EVENT_COLUMNS).where(after_cursor(conn, since))
                                        .order_by(events.c.seq).limit(5000)).all()
                return [EventMessage(cursor=r.seq, event=jsonable(r), replay=True).out() for r in rows]

            for replayed in await asyncio.to_thread(catch_up):
                await websocket.send_json(replayed)
        await websocket.send_json(Hello(version=__version__).out())
        await pump(websocket, queue.get)
    except WebSocketDisconnect:
        pass
    finally:
        fanout.unsubscribe(queue)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the client may be gone already
            await websocket.close()
