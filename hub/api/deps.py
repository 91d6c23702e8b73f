"""The typed dependencies every route takes: the one place that reads ``app.state.hub``.

A route names what it needs (``service: ServiceDep``, ``user: UserDep``) and gets it typed, so a
route never reaches into ``request.app.state`` and a test can see from its signature what it uses.
Each provider takes an ``HTTPConnection``, so the same dependency serves HTTP routes and the
``/api/live`` WebSocket. The hub's parts are built once per process by ``hub.app.HubState``; this
module does not import it (``hub.app`` imports the routers), it names each part's own type instead.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException
from sqlalchemy.engine import Engine
from starlette.requests import HTTPConnection

from hub.alarms.service import HubService
from hub.auth.service import Auth, User
from hub.config import HubSettings
from hub.doors.service import DoorService
from hub.gb28181.adapter import GbAdapter
from hub.ingest.writer import Ingest
from hub.live.fanout import LiveHub
from hub.live.video.mjpeg import MjpegRelays
from hub.live.video.service import LiveService
from hub.nodes.broker_headroom import HeadroomCheck
from hub.nodes.health import NodeHealthHistory
from hub.notify.service import Notifier
from hub.patrols.service import Patrols
from hub.patrols.tokens import PatrolKeys
from hub.reports.service import Reports
from hub.responders.live import TaskStreams
from hub.responders.service import Responders
from hub.runtime.cluster import Cluster
from hub.sensitive.periods import Periods
from hub.sensitive.scheduler import Scheduler as SensitiveScheduler


def _service(conn: HTTPConnection) -> HubService:
    service: HubService = conn.app.state.hub.service
    return service


def _doors(conn: HTTPConnection) -> DoorService:
    doors: DoorService = conn.app.state.hub.doors
    return doors


def _liveview(conn: HTTPConnection) -> LiveService:
    live: LiveService = conn.app.state.hub.liveview
    return live


def _mjpeg(conn: HTTPConnection) -> MjpegRelays:
    relays: MjpegRelays = conn.app.state.hub.mjpeg
    return relays


def _live_hub(conn: HTTPConnection) -> LiveHub:
    fanout: LiveHub = conn.app.state.hub.live
    return fanout


def _auth(conn: HTTPConnection) -> Auth:
    auth: Auth = conn.app.state.hub.auth
    return auth


def _engine(conn: HTTPConnection) -> Engine:
    engine: Engine = conn.app.state.hub.engine
    return engine


def _settings(conn: HTTPConnection) -> HubSettings:
    settings: HubSettings = conn.app.state.hub.settings
    return settings


def _broker_headroom(conn: HTTPConnection) -> HeadroomCheck:
    check: HeadroomCheck = conn.app.state.hub.broker_headroom
    return check


def _gb(conn: HTTPConnection) -> GbAdapter | None:
    """None when city networking is off (PINGAN_GB_UPSTREAM unset) or did not start."""
    gb: GbAdapter | None = conn.app.state.hub.gb
    return gb


def _ingest(conn: HTTPConnection) -> Ingest | None:
    """None when the hub runs without MQTT (``mqtt_enabled=False``: tests, a read-only replica)."""
    ingest: Ingest | None = conn.app.state.hub.ingest
    return ingest


def _cluster(conn: HTTPConnection) -> Cluster:
    cluster: Cluster = conn.app.state.hub.cluster
    return cluster


def _reports(conn: HTTPConnection) -> Reports:
    """A Reports over the hub's store in the centre's zone (cheap: it holds no state between requests)."""
    state = conn.app.state.hub
    return Reports(state.engine, state.settings.timezone)


def _notifier(conn: HTTPConnection) -> Notifier:
    notifier: Notifier = conn.app.state.hub.notifier
    return notifier


def _node_health(conn: HTTPConnection) -> NodeHealthHistory:
    history: NodeHealthHistory = conn.app.state.hub.node_health
    return history


def _periods(conn: HTTPConnection) -> Periods:
    periods: Periods = conn.app.state.hub.periods
    return periods


def _sensitive(conn: HTTPConnection) -> SensitiveScheduler:
    scheduler: SensitiveScheduler = conn.app.state.hub.sensitive
    return scheduler


def _patrols(conn: HTTPConnection) -> Patrols:
    """Patrols over the hub's store, its sticker keys and the centre's zone and night (holds no state)."""
    state = conn.app.state.hub
    s = state.settings
    return Patrols(state.engine, PatrolKeys(s.data_dir), s.timezone, max_age_days=s.patrol_token_max_age_days,
                   night=s.patrol_night)


def _zone(conn: HTTPConnection) -> ZoneInfo:
    """The district's zone (PINGAN_TIMEZONE): a date given without a time is that day there."""
    return ZoneInfo(_settings(conn).timezone)


def _responders(conn: HTTPConnection) -> Responders:
    responders: Responders = conn.app.state.hub.responders
    return responders


def _task_streams(conn: HTTPConnection) -> TaskStreams:
    """Each responder's own live streams (their phones' WebSockets)."""
    streams: TaskStreams = conn.app.state.hub.task_streams
    return streams


def current_user(conn: HTTPConnection) -> User:
    """The logged-in staff member, set by hub/auth/policy.py's middleware before any route runs."""
    user: User | None = conn.scope.get("state", {}).get("user")
    if user is None:  # only reachable if the middleware is missing
        raise HTTPException(401, "login required")
    return user


ServiceDep = Annotated[HubService, Depends(_service)]
DoorsDep = Annotated[DoorService, Depends(_doors)]
LiveDep = Annotated[LiveService, Depends(_liveview)]
MjpegDep = Annotated[MjpegRelays, Depends(_mjpeg)]
LiveHubDep = Annotated[LiveHub, Depends(_live_hub)]
AuthDep = Annotated[Auth, Depends(_auth)]
EngineDep = Annotated[Engine, Depends(_engine)]
SettingsDep = Annotated[HubSettings, Depends(_settings)]
IngestDep = Annotated[Ingest | None, Depends(_ingest)]
GbDep = Annotated[GbAdapter | None, Depends(_gb)]
BrokerHeadroomDep = Annotated[HeadroomCheck, Depends(_broker_headroom)]
ClusterDep = Annotated[Cluster, Depends(_cluster)]
ReportsDep = Annotated[Reports, Depends(_reports)]
UserDep = Annotated[User, Depends(current_user)]
NotifierDep = Annotated[Notifier, Depends(_notifier)]
PatrolsDep = Annotated[Patrols, Depends(_patrols)]
ZoneDep = Annotated[ZoneInfo, Depends(_zone)]
ResponderServiceDep = Annotated[Responders, Depends(_responders)]
TaskStreamsDep = Annotated[TaskStreams, Depends(_task_streams)]
PeriodsDep = Annotated[Periods, Depends(_periods)]
NodeHealthDep = Annotated[NodeHealthHistory, Depends(_node_health)]
SensitiveDep = Annotated[SensitiveScheduler, Depends(_sensitive)]
